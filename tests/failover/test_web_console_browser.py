"""The office manager on a phone, in real Chromium (Debian's, via Playwright): the overview during an
outage, then "start the fallback" with a reason — what will happen is shown and confirmed — and back
to automatic; each step's result read from the store the service reads. Screenshots for the README."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.async_api import async_playwright, expect
from prometheus_client import CollectorRegistry

from failover.metrics import FailoverMetrics
from failover.store import ActionRow, AsyncStore
from failover.web import create_app
from tests.failover.browser_support import served
from tests.failover.test_web_browser import (
    ARTIFACTS,
    BROWSER_TESTS,
    README_SHOTS,
    STAFF_BASIC,
    assert_fits_the_phone,
    phone_context,
)
from tests.failover.test_web_console import ADS
from tests.failover.test_web_support import BASE_CONFIG, PORTAL, make_settings

pytestmark = BROWSER_TESTS


async def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        await page.screenshot(path=str(README_SHOTS / name), full_page=True)


@pytest.mark.parametrize("device", ["phone", "desktop"])
async def test_the_office_manager_starts_the_fallback_and_keeps_a_maintenance_window(
    tmp_path: Path, device: str
) -> None:
    phone = device == "phone"
    portal = BASE_CONFIG["portals"][PORTAL] | {"actions": ["page", "ads"], "name": "EPARK 渋谷院"}
    settings = make_settings(
        tmp_path, actions={"page": {"type": "fallback_page"}, "ads": ADS}, portals={PORTAL: portal}
    )
    store = AsyncStore(settings.store, data_key=settings.sealing_key())
    sync = store.sync
    sync.set_verdict(PORTAL, "down", sync.clock() - 420)
    sync.put_action(ActionRow(PORTAL, "ads", "off", "off", "Google Ads: quota exceeded", False, 2, 0.0, None, None))
    registry = CollectorRegistry()
    app = create_app(settings, store, FailoverMetrics(registry), registry)
    try:
        async with served(app) as base, async_playwright() as p:
            context = await phone_context(p, tmp_path, authorization=STAFF_BASIC, desktop=not phone)
            try:
                page = await context.new_page()
                await page.goto(f"{base}/staff/overview")
                card = page.locator("section.portal-card")
                await expect(card.locator(".verdict")).to_contain_text("停止中")
                await expect(card.locator("table.measures")).to_contain_text("Google Ads: quota exceeded")
                if phone:
                    await assert_fits_the_phone(page)
                    await shot(page, "console-overview-ja.png")

                await page.get_by_role("link", name="切り替え・メンテナンスを操作する").click()
                on = page.locator("section.decision").filter(has_text="フォールバックを開始")
                await on.get_by_label("理由").fill("予約サイトが表示されない（患者さんから電話）")
                await on.get_by_role("button", name="内容を確認する").click()
                await expect(page.locator("ul.consequences")).to_contain_text("Google 広告の配信が始まります")
                if phone:
                    await assert_fits_the_phone(page)
                    await shot(page, "console-confirm-ja.png")
                assert sync.override(PORTAL) is None, "the confirmation page decides nothing"

                await page.get_by_role("button", name="実行する").click()
                await expect(page.get_by_role("status")).to_contain_text(
                    "フォールバック（代替受付）の開始を記録しました"
                )
                override = sync.override(PORTAL)
                assert override is not None and override.mode == "on"
                assert override.reason == "予約サイトが表示されない（患者さんから電話）"
                await expect(page.locator(".override")).to_contain_text("手動で代替受付中")

                await page.get_by_role("link", name="切り替え・メンテナンスを操作する").click()
                auto = page.locator("section.decision").filter(has_text="自動に戻す")
                await auto.get_by_role("button", name="内容を確認する").click()
                await page.get_by_role("button", name="実行する").click()
                await expect(page.get_by_role("status")).to_contain_text("自動に戻しました")
                assert sync.override(PORTAL) is None

                await page.get_by_role("link", name="切り替え・メンテナンスを操作する").click()
                window = page.locator("section.decision").filter(has_text="メンテナンス枠を追加")
                await window.get_by_label("期間").fill("2h")
                await window.get_by_label("理由").fill("予約サイトの定期メンテナンス")
                await window.get_by_role("button", name="内容を確認する").click()
                await page.get_by_role("button", name="実行する").click()
                await expect(page.get_by_role("status")).to_contain_text("メンテナンス枠を登録しました")
                (added,) = sync.maintenance(PORTAL)
                assert added.mode == "suppress" and round(added.end - added.start) == 7200

                await page.get_by_role("link", name="切り替え・メンテナンスを操作する").click()
                await page.locator("ul.windows").get_by_role("button", name="削除する").click()
                await page.get_by_role("button", name="実行する").click()
                await expect(page.get_by_role("status")).to_contain_text("メンテナンス枠を削除しました")
                assert sync.maintenance(PORTAL) == []
            finally:
                await context.close()
    finally:
        await store.close()
