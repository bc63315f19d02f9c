"""The staff login in real Chromium (Debian's, via Playwright), on a phone and on the front desk's
computer: the form lets an operator in to the overview; a viewer sees the decide page without a form;
a wrong password makes the account wait (the app's clock injected, nothing sleeps); a tampered CSRF
token is refused in words; an idle session ends at the login form. Each step is checked in the store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, async_playwright, expect
from prometheus_client import CollectorRegistry

from failover.metrics import FailoverMetrics
from failover.staff_accounts import hash_password
from failover.store import AsyncStore
from failover.web import create_app
from tests.failover.browser_support import served
from tests.failover.test_web_browser import BROWSER_TESTS, phone_context
from tests.failover.test_web_support import PORTAL, make_settings

pytestmark = BROWSER_TESTS
GOOD = "a long enough phrase"


@pytest.fixture(params=["phone", "desktop"])
async def browser(
    request: pytest.FixtureRequest, tmp_path: Path, clock
) -> AsyncIterator[tuple[BrowserContext, str, AsyncStore]]:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path)
    store = AsyncStore(settings.store, clock, data_key=settings.sealing_key())
    store.sync.add_staff_account("aiko", "operator", hash_password(GOOD))
    store.sync.add_staff_account("ben", "viewer", hash_password(GOOD))
    registry = CollectorRegistry()
    app = create_app(settings, store, FailoverMetrics(registry), registry, clock=clock)
    try:
        async with served(app) as base, async_playwright() as p:
            context = await phone_context(p, tmp_path, desktop=request.param == "desktop")
            try:
                yield context, base, store
            finally:
                await context.close()
    finally:
        await store.close()


async def log_in(page: Page, base: str, name: str, password: str, where: str = "/staff/overview") -> None:
    await page.goto(f"{base}{where}")  # no session: sent to the form, and back here after it
    await expect(page.get_by_role("heading", name="スタッフ ログイン")).to_be_visible()
    await page.get_by_label("アカウント名").fill(name)
    await page.get_by_label("パスワード").fill(password)
    await page.get_by_role("button", name="ログイン").click()


async def test_an_operator_logs_in_through_the_form_and_an_idle_session_ends(browser, clock) -> None:  # type: ignore[no-untyped-def]
    context, base, store = browser
    page = await context.new_page()
    await log_in(page, base, "aiko", GOOD)
    assert page.url.endswith("/staff/overview")
    await expect(page.locator("section.portal-card").first).to_be_visible()
    clock.advance(8 * 3600 + 1)  # staff.session_idle (8 h) unused
    await page.reload()
    await expect(page.get_by_role("heading", name="スタッフ ログイン")).to_be_visible()
    ops = [(e.detail["op"], e.detail["account"]) for e in store.sync.events(kinds=["staff_session"])]
    assert ops == [("login", "aiko")]


async def test_a_viewer_sees_the_decide_page_without_a_form_and_a_post_is_refused(browser) -> None:  # type: ignore[no-untyped-def]
    context, base, store = browser
    page = await context.new_page()
    await log_in(page, base, "ben", GOOD, f"/staff/decide/{PORTAL}")
    await expect(page.locator("p.viewer-only")).to_contain_text("閲覧専用")
    assert await page.locator("section.decision form").count() == 0
    # A form made by hand (an old tab, a script) is refused by the server too, in words.
    await page.goto(f"{base}/staff")  # a page with a form (logout) gives the token
    csrf = await page.locator('input[name="csrf"]').first.get_attribute("value")
    await page.evaluate(
        """([action, csrf]) => { const f = document.createElement('form'); f.method = 'post'; f.action = action;
        for (const [k, v] of Object.entries({csrf, kind: 'auto', lang: 'ja', confirm: 'yes'})) {
          const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.append(i); }
        document.body.append(f); f.submit(); }""",
        [f"{base}/staff/decide/{PORTAL}", csrf],
    )
    await expect(page.locator("body")).to_contain_text("閲覧専用")
    assert store.sync.events(kinds=["override"]) == []


async def test_a_wrong_password_makes_the_account_wait_and_a_bad_csrf_token_is_refused(browser, clock) -> None:  # type: ignore[no-untyped-def]
    context, base, store = browser
    page = await context.new_page()
    await log_in(page, base, "aiko", "wrong password!")
    await expect(page.get_by_role("alert")).to_contain_text("アカウント名またはパスワードが違います")
    await page.get_by_label("パスワード").fill(GOOD)  # the right one, too soon: it waits its turn
    await page.get_by_role("button", name="ログイン").click()
    await expect(page.get_by_role("alert")).to_contain_text("1 秒待ってから")
    clock.advance(1)
    await page.get_by_label("パスワード").fill(GOOD)
    await page.evaluate("document.querySelector('input[name=csrf]').value = 'forged'")
    await page.get_by_role("button", name="ログイン").click()
    await expect(page.locator("body")).to_contain_text("ページの有効期限が切れました")
    await log_in(page, base, "aiko", GOOD)  # a fresh form: in
    assert page.url.endswith("/staff/overview")
    ops = [e.detail["op"] for e in store.sync.events(kinds=["staff_session"])]
    assert ops == ["login_refused", "login_refused", "login"]
