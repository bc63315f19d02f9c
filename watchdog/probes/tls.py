"""TLS certificate expiry, read from the connection a probe already made (no extra handshake)."""

from __future__ import annotations

import ssl

import httpx


def cert_expiry(response: httpx.Response) -> float | None:
    """Unix time the server certificate behind ``response`` expires; None for plain http.

    Call it while the response is open: the connection closes with it (no keep-alive).
    Verification is on, so ``getpeercert()`` returns the parsed certificate.
    """
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    if ssl_object is None:
        return None
    not_after = (ssl_object.getpeercert() or {}).get("notAfter")
    return float(ssl.cert_time_to_seconds(not_after)) if isinstance(not_after, str) else None
