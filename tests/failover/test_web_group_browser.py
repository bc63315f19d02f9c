"""A patient of a dental group on a phone, in real Chromium (Debian's, via Playwright): ``/book``
lists the group's clinics, each with its phone and whether its online booking works now; the
clinic whose portal is down leads to its own fallback page and phone."""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.async_api import async_playwright, expect
from prometheus_client import CollectorRegistry

from failover.metrics import FailoverMetrics
from failover.store import AsyncStore
from failover.web import create_app
from tests.failover.browser_support import served
from tests.failover.test_group import group
from tests.failover.test_web_browser import (
    ARTIFACTS,
    BROWSER_TESTS,
    README_SHOTS,
    assert_fits_the_phone,
    phone_context,
)
from tests.failover.test_web_support import make_settings

pytestmark = BROWSER_TESTS


async def test_the_group_on_a_phone(tmp_path: Path) -> None:
    raw = group()
    settings = make_settings(
        tmp_path, clinic=None, clinics=raw["clinics"], portals=raw["portals"], group_name="医療法人 さくら会"
    )
    store = AsyncStore(settings.store, data_key=settings.sealing_key())
    store.sync.set_page("epark-shinjuku", True)  # Shinjuku's portal is down: its fallback page is on
    registry = CollectorRegistry()
    app = create_app(settings, store, FailoverMetrics(registry), registry)
    try:
        async with served(app) as base, async_playwright() as p:
            context = await phone_context(p, tmp_path)
            try:
                page = await context.new_page()
                await page.goto(f"{base}/book")
                clinics = page.locator("ul.clinics > li")
                await expect(clinics).to_have_count(2)
                await expect(page.get_by_role("banner")).to_contain_text("医療法人 さくら会")
                await expect(clinics.nth(0).locator("a.tel")).to_have_attribute("href", "tel:03-1234-5678")
                await expect(clinics.nth(1).locator(".availability.down")).to_be_visible()
                await assert_fits_the_phone(page)
                ARTIFACTS.mkdir(exist_ok=True)
                await page.screenshot(path=str(ARTIFACTS / "group-book-ja.png"), full_page=True)
                if os.environ.get("UPDATE_SCREENSHOTS") == "1":
                    await page.screenshot(path=str(README_SHOTS / "group-book-ja.png"), full_page=True)

                await clinics.nth(1).locator("a").first.click()
                await expect(page).to_have_url(re.compile(re.escape(f"{base}/book/epark-shinjuku") + r"(\?lang=ja)?$"))
                await expect(page.locator("a.tel").first).to_have_attribute("href", "tel:03-2345-6789")
                await expect(page.get_by_role("banner")).to_contain_text("さくら歯科 新宿院")
                await expect(page.get_by_role("button", name="送信する")).to_be_visible()  # its form
            finally:
                await context.close()
    finally:
        await store.close()
