"""A patient on a phone: real uvicorn on 127.0.0.1, real Chromium (Debian's, driven by Playwright).

Screenshots go to ``test-artifacts/``; with ``UPDATE_SCREENSHOTS=1`` the README's PNGs in
``docs/screenshots/`` are regenerated too (they are committed, so a normal run leaves them alone).
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import BrowserContext, Page, Playwright, async_playwright, expect
from prometheus_client import CollectorRegistry

from failover.metrics import FailoverMetrics
from failover.store import AsyncStore
from failover.web import create_app
from tests.failover.test_web_support import PORTAL, STAFF_PASSWORD, STAFF_USER, make_settings

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
README_SHOTS = ROOT / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--lang=ja-JP",
]
# A Japanese phone's browser: Chromium takes the format of its own date-field hint (年/月/日, not
# mm/dd/yyyy) from the process's language, not from the page's locale (Debian's chromium-l10n).
JAPANESE_ENV = {"LANG": "ja_JP.UTF-8", "LANGUAGE": "ja"}
XSS = "<script>window.__pwned = 1</script>"

# Every Chromium test module's marks (pytestmark = BROWSER_TESTS).
BROWSER_TESTS = [
    pytest.mark.browser,
    pytest.mark.anyio,
    # make test installs chromium; only outside CI may a machine without it skip these.
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not os.environ.get("CI"),
        reason=f"{CHROMIUM} missing (apt-get install chromium)",
    ),
]
pytestmark = BROWSER_TESTS


class Site:
    def __init__(self, base: str, store: AsyncStore) -> None:
        self.base = base
        self.store = store


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    settings = make_settings(tmp_path)
    store = AsyncStore(settings.store)
    store.sync.set_page(PORTAL, True)
    registry = CollectorRegistry()
    app = create_app(settings, store, FailoverMetrics(registry), registry)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Site(f"http://127.0.0.1:{port}", store)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        await store.close()


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    async with async_playwright() as p:
        context = await phone_context(p, tmp_path, authorization=STAFF_BASIC)
        try:
            yield context
        finally:
            await context.close()


async def screenshot(page: Page, name: str, *, readme: bool = False, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    await page.screenshot(path=str(path), full_page=full_page)
    if readme and os.environ.get("UPDATE_SCREENSHOTS") == "1":
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, README_SHOTS / name)


STAFF_BASIC = "Basic " + base64.b64encode(f"{STAFF_USER}:{STAFF_PASSWORD}".encode()).decode()


DESKTOP = {"width": 1280, "height": 800}


async def phone_context(
    p: Playwright, tmp_path: Path, authorization: str | None = None, *, desktop: bool = False
) -> BrowserContext:
    """Debian's Chromium as a patient's (or the office manager's) phone, in Japanese and Tokyo time
    (``desktop``: the front desk's computer instead). ``authorization`` is sent with every request: a
    browser without a session is sent to the staff login form, which never challenges, so
    Playwright's ``http_credentials`` would never answer."""
    context = await p.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"),
        executable_path=CHROMIUM,
        args=FLAGS,
        viewport=DESKTOP if desktop else PHONE,
        device_scale_factor=1 if desktop else 2,
        is_mobile=not desktop,
        has_touch=not desktop,
        locale="ja-JP",
        env={**os.environ, **JAPANESE_ENV},
        timezone_id="Asia/Tokyo",
        extra_http_headers={"authorization": authorization} if authorization else {},
    )
    context.set_default_timeout(10_000)
    return context


async def assert_fits_the_phone(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} scrolls sideways on a phone ({width}px)"


def in_days(n: int) -> str:
    return (date.today() + timedelta(days=n)).isoformat()


async def fill_valid(page: Page, name: str = "山田 花子") -> None:
    await page.get_by_role("textbox", name="お名前").fill(name)
    await page.get_by_role("textbox", name="電話番号").fill("090-1234-5678")
    await page.get_by_role("textbox", name="メールアドレス").fill("hanako@example.jp")
    await page.locator("#f-date1").fill(in_days(3))
    await page.locator("#f-time1").select_option("morning")
    await page.locator("#f-date2").fill(in_days(4))
    await page.locator("#f-time2").select_option("afternoon")
    await page.get_by_label("初めて（初診）").check()
    await page.get_by_role("textbox", name="ご来院の理由・症状").fill("左下の奥歯がしみます。")
    await page.locator("#f-consent").check()


async def test_a_patient_books_on_a_phone(site: Site, browser: BrowserContext) -> None:
    page = await browser.new_page()
    requested: list[str] = []
    page.on("request", lambda req: requested.append(req.url))
    response = await page.goto(f"{site.base}/book")
    assert response is not None and response.status == 200
    await expect(page.get_by_role("heading", name="ただいまWeb予約がご利用いただけません")).to_be_visible()
    call = page.get_by_role("link", name="電話で予約する")
    await expect(call).to_have_attribute("href", "tel:03-1234-5678")
    box = await call.bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"], "the call button is below the fold"
    assert box["height"] >= 48, "the call button is too small to tap"
    await assert_fits_the_phone(page)
    await screenshot(page, "fallback-page-ja.png", readme=True, full_page=False)
    await screenshot(page, "fallback-page-ja-full.png")

    await fill_valid(page)
    await page.get_by_role("button", name="送信する").click()
    await expect(page.get_by_role("heading", name="ご予約のご希望を受け付けました")).to_be_visible()
    number = int(await page.locator("#request-number").inner_text())
    await assert_fits_the_phone(page)
    await screenshot(page, "fallback-confirmation-ja.png", readme=True, full_page=False)

    row = site.store.sync.request(number)
    assert row is not None and row.portal == PORTAL
    assert row.data["name"] == "山田 花子" and row.data["phone_digits"] == "09012345678"
    assert row.data["preferred"] == [
        {"date": in_days(3), "time": "morning"},
        {"date": in_days(4), "time": "afternoon"},
    ]
    assert all(url.startswith(site.base) for url in requested), "the page loaded something from elsewhere"


async def test_reloading_the_confirmation_stores_one_request(site: Site, browser: BrowserContext) -> None:
    """Chromium's reload of a POST result would post again; after Post/Redirect/Get it is a GET of the
    number. (A replayed form token is test_web_request's: Back loads a fresh form, the page is no-store.)"""
    page = await browser.new_page()
    await page.goto(f"{site.base}/book/{PORTAL}")
    await fill_valid(page)
    await page.get_by_role("button", name="送信する").click()
    await expect(page.get_by_role("heading", name="ご予約のご希望を受け付けました")).to_be_visible()
    number = await page.locator("#request-number").inner_text()
    assert f"/book/{PORTAL}/done/{number}?" in page.url and "090" not in page.url and "hanako" not in page.url
    for _ in range(2):
        response = await page.reload()
        assert response is not None and response.status == 200 and response.request.method == "GET"
        await expect(page.locator("#request-number")).to_have_text(number)
    assert site.store.sync.count_requests() == 1


async def test_an_invalid_form_shows_the_errors_next_to_the_fields(site: Site, browser: BrowserContext) -> None:
    page = await browser.new_page()
    await page.goto(f"{site.base}/book/{PORTAL}")
    await page.get_by_role("textbox", name="電話番号").fill("123")
    await page.get_by_role("textbox", name="メールアドレス").fill("hanako@")
    await page.get_by_role("button", name="送信する").click()
    await expect(page.get_by_role("alert").first).to_contain_text("入力内容をご確認ください")
    # The page comes back scrolled to the focused error summary, not at its top (no script).
    assert page.url.endswith("#errors")
    assert await page.evaluate("document.activeElement.id") == "errors"
    summary = await page.locator("#errors").bounding_box()
    assert summary is not None and 0 <= summary["y"] < PHONE["height"] / 2, "the error summary is out of sight"
    await expect(page.locator("#errors a").first).to_have_attribute("href", "#f-name")
    await expect(page.locator("#e-name")).to_have_text("お名前を入力してください")
    await expect(page.locator("#e-phone")).to_contain_text("電話番号の形式が正しくありません")
    await expect(page.locator("#e-email")).to_contain_text("メールアドレスの形式が正しくありません")
    await expect(page.locator("#e-consent")).to_be_visible()
    await expect(page.get_by_role("textbox", name="電話番号")).to_have_value("123")  # what was typed stays
    await expect(page.get_by_role("textbox", name="電話番号")).to_have_attribute("aria-invalid", "true")
    await page.locator("#f-phone").scroll_into_view_if_needed()
    await screenshot(page, "fallback-errors-ja.png", full_page=False)
    await page.locator("#f-date1").scroll_into_view_if_needed()
    await screenshot(page, "fallback-dates-ja.png", full_page=False)
    assert site.store.sync.count_requests() == 0


async def test_a_script_payload_is_shown_as_text(site: Site, browser: BrowserContext) -> None:
    page = await browser.new_page()
    await page.goto(f"{site.base}/book/{PORTAL}")
    await fill_valid(page, name=XSS)
    await page.get_by_role("textbox", name="電話番号").fill("not a phone")
    await page.get_by_role("button", name="送信する").click()
    await expect(page.get_by_role("textbox", name="お名前")).to_have_value(XSS)
    await page.get_by_role("textbox", name="電話番号").fill("090-1234-5678")
    await page.get_by_role("button", name="送信する").click()
    await expect(page.locator("#request-number")).to_be_visible()

    staff = await browser.new_page()
    await staff.goto(f"{site.base}/staff")
    await expect(staff.get_by_text(XSS, exact=True)).to_be_visible()
    await assert_fits_the_phone(staff)
    assert await staff.evaluate("window.__pwned") is None
    assert await page.evaluate("window.__pwned") is None
    await screenshot(staff, "staff-ja.png")


async def test_english_page(site: Site, browser: BrowserContext) -> None:
    page = await browser.new_page()
    await page.goto(f"{site.base}/book?lang=en")
    await expect(page.get_by_role("heading", name="Online booking is temporarily unavailable")).to_be_visible()
    await expect(page.get_by_text("Sakura Dental Shibuya")).to_be_visible()
    await screenshot(page, "fallback-page-en.png", readme=True, full_page=False)
    await page.get_by_role("link", name="日本語").click()
    await expect(page.locator("html")).to_have_attribute("lang", "ja")
