"""A simulated patient: opens ``/book`` like a browser would and, while the fallback page is on,
fills in the booking form and sends it (CSRF cookie and token included, like a real visit)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from failover.demo.loopback import ensure_loopback

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Visit:
    status: int
    location: str | None  # where a redirect sends the patient


def _client() -> httpx.AsyncClient:
    # trust_env=False: a proxy from the environment must not see (or break) loopback traffic.
    return httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, trust_env=False)


async def open_book(url: str) -> Visit:
    """What a patient's browser gets first on ``url``: a redirect to the portal, or the page."""
    async with _client() as client:
        resp = await client.get(ensure_loopback("patient visit", url))
    return Visit(resp.status_code, resp.headers.get("location"))


async def request_booking(book_url: str, timezone: str, name: str = "山田 花子") -> int:
    """Send one booking request through the fallback form; returns the HTTP status of the answer."""
    async with _client() as client:
        page = await client.get(ensure_loopback("patient visit", book_url), params={"lang": "ja"})
        match = _CSRF.search(page.text)
        if page.status_code != 200 or match is None:
            return page.status_code
        tomorrow = (datetime.now(ZoneInfo(timezone)) + timedelta(days=1)).date().isoformat()
        form = {
            "csrf": match.group(1),
            "lang": "ja",
            "name": name,
            "phone": "090-1234-5678",
            "email": "",
            "date1": tomorrow,
            "time1": "morning",
            "visit": "returning",
            "reason": "定期検診（デモ）",
            "consent": "yes",
            "homepage": "",
        }
        # A stored request is a 303 to its confirmation (Post/Redirect/Get): follow it like a browser.
        resp = await client.post(f"{book_url}/request", data=form, follow_redirects=True)
        return resp.status_code
