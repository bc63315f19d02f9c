"""The links portalguard hands out and checks: our own ``/book`` pages, as patients reach them and
as the service reaches itself, and the ``Location`` a redirect to the portal carries.
"""

from __future__ import annotations

from urllib.parse import quote


def fallback_url(public_url: str | None, portal: str) -> str | None:
    """Where patients book while the portal is down (``server.public_url`` + ``/book/{portal}``);
    None without a public URL: a loopback address would only mislead staff and receivers."""
    return f"{public_url.rstrip('/')}/book/{portal}" if public_url else None


def own_base_url(listen: str) -> str:
    """The loopback URL of our own web server, for self-checks (0.0.0.0 listens, 127.0.0.1 asks)."""
    host, _, port = listen.rpartition(":")
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host in ("[::]", "::"):
        host = "[::1]"
    return f"http://{host}:{port}"


def location_header(url: str) -> str:
    # Header values are latin-1: percent-encode anything else, leave every ASCII URL exactly as configured
    # (the fallback_page action compares Location with book_url).
    return quote(url, safe="".join(chr(c) for c in range(0x21, 0x7F)))
