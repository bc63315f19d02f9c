"""The staff console against a real ``portalguard run``: a drill started from the browser's form
rehearses the service's own actions (the fake Google Ads API sees only validate_only, staff get a
[訓練] message, the webhook a drill), shows the result table and records it; a decision made there
is applied by the running service within seconds."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from failover.fakes.google_ads_server import FakeGoogleAds
from failover.fakes.portal_simulator import PortalSimulator
from failover.fakes.receivers import JsonReceiver
from tests.e2e.test_run_process import PORTAL, Rig, until

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

USER, PASSWORD = "office", "the office manager's pass"


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    with FakeGoogleAds(campaigns={"111": ("PAUSED", 3000)}) as ads:
        async with PortalSimulator() as sim, JsonReceiver() as staff, JsonReceiver() as hook:
            r = Rig(tmp_path, sim, ads, staff, hook)
            doc = yaml.safe_load(r.config.read_text(encoding="utf-8"))
            doc["staff"] = {"username": USER, "password": PASSWORD}
            r.config.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
            try:
                yield r
            finally:
                if r.proc and r.proc.returncode is None:
                    await r.kill9()


async def post(web: httpx.AsyncClient, fields: dict[str, str]) -> httpx.Response:
    form = await web.get(f"/staff/decide/{PORTAL}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf, form.text
    return await web.post(f"/staff/decide/{PORTAL}", data={"csrf": csrf.group(1), "lang": "ja", **fields})


async def test_a_drill_and_a_decision_from_the_console(rig: Rig) -> None:
    await rig.start()
    await until(lambda: rig.converged(False), 30, "healthy portal converged OFF")
    auth = httpx.BasicAuth(USER, PASSWORD)
    async with httpx.AsyncClient(base_url=f"http://{rig.web}", auth=auth, timeout=90) as web:
        asked = await post(web, {"kind": "drill"})
        assert "Google 広告は検証だけ行います（配信されず、費用はかかりません）" in asked.text
        done = await post(web, {"kind": "drill", "confirm": "yes"})
        assert done.status_code == 200 and "訓練は成功しました" in done.text, done.text
        for name in ("page", "ads", "staff", "ivr"):
            assert f"<td>{name}</td><td>成功</td>" in done.text
        assert rig.ads.status("111") == "PAUSED" and rig.ads.mutations() == [], "a drill changed the campaign"
        assert any(c.validate_only for c in rig.ads.calls_of("MutateCampaigns"))
        staff = await rig.staff.wait_for(1, 10)
        assert "訓練" in json.dumps(staff[0].json(), ensure_ascii=False)
        assert (await rig.hook.wait_for(1, 10))[0].json()["drill"] is True
        assert (await rig.status())["last_drill"]["ok"] is True

        started = await post(web, {"kind": "on", "reason": "予約サイトが表示されない", "confirm": "yes"})
        assert started.status_code == 303
        await until(lambda: rig.converged(True), 15, "the console's decision applied by the service")
        assert rig.ads.status("111") == "ENABLED"
        refused = await post(web, {"kind": "drill", "confirm": "yes"})
        assert refused.status_code == 409 and "代替受付中は訓練できません" in refused.text
    events = json.loads(await rig.cli("events", "--json", "--kind", "override"))
    assert events[-1]["detail"]["by"] == f"{USER} (web)"


@pytest.mark.browser
async def test_a_drill_and_a_decision_by_the_buttons_in_chromium_on_a_phone_and_a_desktop(
    rig: Rig, tmp_path: Path
) -> None:
    """The office manager logs in through the form and runs the drill by its buttons, at both sizes,
    against the running service's own actions (each run its own rehearsal: two [訓練] messages); then
    starts the fallback, sees the page patients now get, and goes back to automatic."""
    from playwright.async_api import async_playwright, expect

    from tests.failover.test_web_browser import phone_context

    await rig.start()
    await until(lambda: rig.converged(False), 30, "healthy portal converged OFF")
    async with async_playwright() as p:
        for desktop in (False, True):
            context = await phone_context(p, tmp_path / ("desktop" if desktop else "phone"), desktop=desktop)
            try:
                page = await context.new_page()
                page.set_default_timeout(60_000)  # the drill calls every action (the fake Ads API, Apprise)
                await page.goto(f"http://{rig.web}/staff/decide/{PORTAL}")
                await page.get_by_label("アカウント名").fill(USER)
                await page.get_by_label("パスワード").fill(PASSWORD)
                await page.get_by_role("button", name="ログイン").click()
                drill = page.locator("section.decision").filter(has_text="訓練を実行")
                await drill.get_by_role("button", name="内容を確認する").click()
                await expect(page.locator("ul.consequences")).to_contain_text("Google 広告は検証だけ行います")
                await page.get_by_role("button", name="実行する").click()
                await expect(page.locator("body")).to_contain_text("訓練は成功しました")
                for name in ("page", "ads", "staff", "ivr"):
                    await expect(page.locator("tr").filter(has_text=name).first).to_contain_text("成功")
            finally:
                await context.close()
            assert rig.ads.mutations() == [], "a drill changed the campaign"
        assert rig.ads.status("111") == "PAUSED"
        assert len(await rig.staff.wait_for(2, 10)) == 2  # one [訓練] message per drill
        drills = json.loads(await rig.cli("events", "--json", "--kind", "drill"))
        assert len(drills) == 2 and all(d["detail"]["ok"] for d in drills)

        # Start the fallback by its buttons, see the page patients get, and back to automatic.
        context = await phone_context(p, tmp_path / "decide", authorization=None)
        try:
            page = await context.new_page()
            await page.goto(f"http://{rig.web}/staff/decide/{PORTAL}")
            await page.get_by_label("アカウント名").fill(USER)
            await page.get_by_label("パスワード").fill(PASSWORD)
            await page.get_by_role("button", name="ログイン").click()
            on = page.locator("section.decision").filter(has_text="フォールバックを開始")
            await on.get_by_label("理由").fill("予約サイトが表示されない")
            await on.get_by_role("button", name="内容を確認する").click()
            await page.get_by_role("button", name="実行する").click()
            await until(lambda: rig.converged(True), 15, "the decision applied by the running service")
            await page.goto(f"http://{rig.web}/book/{PORTAL}")  # what a patient opens now: our page
            await expect(page.locator('a[href^="tel:"]').first).to_be_visible()
            assert rig.ads.status("111") == "ENABLED"
            await page.goto(f"http://{rig.web}/staff/decide/{PORTAL}")
            auto = page.locator("section.decision").filter(has_text="自動に戻す")
            await auto.get_by_role("button", name="内容を確認する").click()
            await page.get_by_role("button", name="実行する").click()
            await until(lambda: rig.converged(False), 15, "back to automatic: the healthy portal, all off")
            assert rig.ads.status("111") == "PAUSED"
        finally:
            await context.close()
