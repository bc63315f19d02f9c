"""The http probe: one page must answer with an expected status and the expected texts."""

from __future__ import annotations

import httpx

from watchdog.probes.errors import ProbeFailure, Trace, guarded
from watchdog.probes.fetch import Browser, Page
from watchdog.result import FailureKind, ProbeResult
from watchdog.targets import Endpoint, Expect, ProbeSettings


async def probe_http(
    client: httpx.AsyncClient, endpoint: Endpoint, timeout: float, settings: ProbeSettings
) -> ProbeResult:
    """GET ``endpoint.url`` (redirects on the same host followed) and judge it by ``endpoint.expect``."""

    async def check(trace: Trace) -> None:
        page = await Browser(client, endpoint, settings, trace).fetch("GET", endpoint.url)
        check_page(page, endpoint.expect)

    return await guarded(timeout, check)


def check_page(page: Page, expect: Expect) -> None:
    """Raise ``ProbeFailure`` unless ``page`` is what ``expect`` describes.

    Maintenance text is checked first: a maintenance page is reported as such whatever its status.
    """
    found = next((text for text in expect.not_contains if text in page.text), None)
    if found is not None:
        raise ProbeFailure(FailureKind.MAINTENANCE, f"maintenance text {quote(found)} found")
    if page.status not in expect.status:
        raise ProbeFailure(FailureKind.HTTP_STATUS, f"HTTP {page.status}")
    missing = next((text for text in expect.contains if text not in page.text), None)
    if missing is not None:
        raise ProbeFailure(FailureKind.CONTENT, f"missing text {quote(missing)}")


def quote(text: str, limit: int = 40) -> str:
    """A configured text for a detail: quoted, and cut so details stay short."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
