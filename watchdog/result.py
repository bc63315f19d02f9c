"""What one probe of one URL found. Probes never raise on a target failure: they return this."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FailureKind(StrEnum):
    """The fixed set of reasons a probe fails (also the ``reason`` metric label)."""

    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    TIMEOUT = "timeout"
    HTTP_STATUS = "http_status"
    CONTENT = "content"
    MAINTENANCE = "maintenance"
    LOGIN = "login"
    REDIRECT = "redirect"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    duration: float  # seconds, wall time of the whole probe
    status: int | None = None  # last HTTP status seen, None if no response
    error_kind: FailureKind | None = None  # None exactly when ok
    detail: str = ""  # short human text; never a secret, never a response body
    tls_expiry: float | None = None  # unix time the server certificate expires (https only)

    def __post_init__(self) -> None:
        if self.ok != (self.error_kind is None):
            raise ValueError("a ProbeResult has an error_kind exactly when it is not ok")

    @classmethod
    def success(cls, duration: float, status: int | None = None, tls_expiry: float | None = None) -> ProbeResult:
        return cls(True, duration, status, None, "", tls_expiry)

    @classmethod
    def failure(
        cls,
        kind: FailureKind,
        duration: float,
        detail: str,
        status: int | None = None,
        tls_expiry: float | None = None,
    ) -> ProbeResult:
        return cls(False, duration, status, kind, detail, tls_expiry)
