"""The front desk's view of ``/staff/appointments`` in real Chromium (Debian's, via Playwright): the
day on a counter screen, and printed on A4 without the navigation."""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import async_playwright
from prometheus_client import CollectorRegistry
from test_web_browser import ARTIFACTS, BROWSER_TESTS, CHROMIUM, FLAGS, JAPANESE_ENV, README_SHOTS
from test_web_support import PORTAL, STAFF_PASSWORD, STAFF_USER, make_settings

from failover.metrics import FailoverMetrics
from failover.mirror.model import DayListing, Listed
from failover.store import AsyncStore
from failover.web import create_app
from tests.failover.browser_support import served

pytestmark = BROWSER_TESTS
TZ = ZoneInfo("Asia/Tokyo")
TODAY = dt.datetime.now(TZ).date()
FAMILY = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤"]
GIVEN = ["花子", "太郎", "一郎", "美咲", "健太", "陽菜"]
MENUS = ["定期検診", "クリーニング", "虫歯治療", "ホワイトニング相談"]
BOOKED = 30


def listing() -> DayListing:
    rows = []
    for n in range(BOOKED):
        start = dt.datetime.combine(TODAY, dt.time(9, 0), tzinfo=TZ) + dt.timedelta(minutes=15 * n)
        rows.append(
            Listed(
                f"R{n:03d}",
                start,
                start + dt.timedelta(minutes=30),
                f"{FAMILY[n % 10]} {GIVEN[n % 6]}",
                f"090-0000-{1000 + n}",
                MENUS[n % 4],
                "キャンセル" if n % 11 == 5 else "予約確定",
                cancelled=n % 11 == 5,
            )
        )
    return DayListing(TODAY, tuple(rows))


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[str]:
    portal: dict[str, Any] = {
        "endpoints": {"public": {"url": "https://portal.example.jp/clinic/12345"}},
        "book_url": "https://portal.example.jp/clinic/12345/booking",
        "mirror": {"source": {"type": "ics", "url": "https://portal.example.jp/feed.ics"}},
    }
    settings = make_settings(tmp_path, portals={PORTAL: portal})
    store = AsyncStore(settings.store, data_key=settings.sealing_key())
    now = dt.datetime.now(TZ).timestamp()
    await store.apply_mirror_day(PORTAL, listing(), "ics", now)
    await store.record_mirror_sync(PORTAL, now, None, None)
    registry = CollectorRegistry()
    app = create_app(settings, store, FailoverMetrics(registry), registry)
    try:
        async with served(app) as base:
            yield base
    finally:
        await store.close()


async def test_the_day_on_screen_and_on_a4(site: str, tmp_path: Path) -> None:
    async with async_playwright() as p:
        context = await p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            args=FLAGS,
            viewport={"width": 1280, "height": 900},  # the reception PC
            locale="ja-JP",
            env={**os.environ, **JAPANESE_ENV},
            timezone_id="Asia/Tokyo",
            # Sent with every request: a browser without it is sent to the login form, and no challenge comes.
            extra_http_headers={
                "authorization": "Basic " + base64.b64encode(f"{STAFF_USER}:{STAFF_PASSWORD}".encode()).decode(),
            },
        )
        try:
            page = await context.new_page()
            await page.goto(f"{site}/staff/appointments")
            rows = page.locator("table.appointments tbody tr")
            assert await rows.count() == BOOKED
            assert (await rows.first.locator("td.time").inner_text()) == "09:00–09:30"
            assert await page.locator("nav.days").is_visible()
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "appointments-ja.png"), full_page=True)
            if os.environ.get("UPDATE_SCREENSHOTS"):
                await page.screenshot(path=str(README_SHOTS / "appointments-ja.png"), full_page=False)

            await page.emulate_media(media="print")
            assert not await page.locator("nav.days").is_visible()  # no navigation on paper
            assert await page.locator("p.printed").is_visible()
            pdf = await page.pdf(format="A4", print_background=False)
            (ARTIFACTS / "appointments-a4.pdf").write_bytes(pdf)
            pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
            assert 1 <= pages <= 2, f"{BOOKED} appointments took {pages} A4 pages"
        finally:
            await context.close()
