"""The canary probe: a URL that should always answer; tells our own outage from the portal's."""

from __future__ import annotations

import httpx

from watchdog.probes.errors import ProbeFailure, Trace, guarded
from watchdog.result import FailureKind, ProbeResult
from watchdog.targets import ProbeSettings


async def probe_canary(client: httpx.AsyncClient, url: str, timeout: float, settings: ProbeSettings) -> ProbeResult:
    """A plain GET; any answer below 500 (typically a 204) proves our network works.

    Redirects are not followed and the body is not read: reaching a server is the whole point.
    """

    async def check(trace: Trace) -> None:
        async with client.stream("GET", url) as response:
            trace.status = response.status_code
        if response.status_code >= 500:
            raise ProbeFailure(FailureKind.HTTP_STATUS, f"HTTP {response.status_code}")

    return await guarded(timeout, check)
