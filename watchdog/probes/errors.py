"""How a probe fails: network exceptions mapped to a ``FailureKind``, and the guard that turns a
probe's check into a ``ProbeResult`` (bounded in time, never raising on a target failure)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import httpx

from watchdog.result import FailureKind, ProbeResult


class ProbeFailure(Exception):
    """A target failure found by a check (wrong status, missing text, ...), carried to the guard."""

    def __init__(self, kind: FailureKind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass(slots=True)
class Trace:
    """What a probe has seen so far: reported even when the probe fails halfway."""

    status: int | None = None
    tls_expiry: float | None = None


Check = Callable[[Trace], Awaitable[None]]


async def guarded(timeout: float, check: Check) -> ProbeResult:
    """Run ``check`` bounded by ``timeout`` as a whole and report what it found.

    ``check`` returns on success and raises ``ProbeFailure`` or a network exception otherwise.
    Any other exception is a bug in the probe, not a target failure, and propagates.
    """
    trace = Trace()
    start = time.perf_counter()
    try:
        # One deadline around everything: a server trickling bytes cannot stretch the probe.
        async with asyncio.timeout(timeout):
            await check(trace)
    except ProbeFailure as failure:
        kind, detail = failure.kind, failure.detail
    except Exception as exc:
        mapped = classify(exc, timeout)
        if mapped is None:
            raise
        kind, detail = mapped
    else:
        return ProbeResult.success(time.perf_counter() - start, trace.status, trace.tls_expiry)
    return ProbeResult.failure(kind, time.perf_counter() - start, detail, trace.status, trace.tls_expiry)


def classify(exc: BaseException, timeout: float) -> tuple[FailureKind, str] | None:
    """The failure kind and a short detail for a network exception; None if ``exc`` is not one.

    Details are written here, never copied from exception messages: those can carry addresses.
    """
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return FailureKind.TIMEOUT, f"timed out after {timeout:g}s"
    for cause in _causes(exc):
        found = _classify_cause(cause)
        if found is not None:
            return found
    if isinstance(exc, httpx.RemoteProtocolError):
        return FailureKind.CONNECT, "connection closed without a valid HTTP response"
    if isinstance(exc, httpx.DecodingError):
        return FailureKind.CONTENT, "response body could not be decoded"
    if isinstance(exc, httpx.TransportError | OSError):
        return FailureKind.CONNECT, f"network error ({type(exc).__name__})"
    return None


def _classify_cause(cause: BaseException) -> tuple[FailureKind, str] | None:
    if isinstance(cause, socket.gaierror):
        return FailureKind.DNS, "DNS lookup failed"
    if isinstance(cause, ssl.SSLCertVerificationError):
        return FailureKind.TLS, f"certificate not trusted: {cause.verify_message}"
    if isinstance(cause, ssl.SSLError):
        return FailureKind.TLS, f"TLS handshake failed ({cause.reason or type(cause).__name__})"
    if isinstance(cause, ConnectionRefusedError):
        return FailureKind.CONNECT, "connection refused"
    if isinstance(cause, ConnectionResetError | BrokenPipeError):
        return FailureKind.CONNECT, "connection reset"
    return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    # httpx wraps httpcore's error, which wraps the OSError or SSLError that says what happened.
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
