"""The staff console's overview and decisions (``/staff/overview``, ``/staff/decide/PORTAL``): the
state in words, each decision asked twice (what will happen, then done), written as the CLI writes
it (override, maintenance window, audit event with who decided), and the bounds a decision here
keeps (a false alarm for at most 24 hours, a reason always)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from failover.store import ActionRow
from tests.failover.test_web_support import BASE_CONFIG, PORTAL, STAFF_PASSWORD, STAFF_USER, Web, csrf_of, make_web

pytestmark = pytest.mark.anyio

BASIC = httpx.BasicAuth(STAFF_USER, STAFF_PASSWORD)
ADS = {
    "type": "google_ads",
    "customer_id": "1234567890",
    "campaign_ids": ["111", "222"],
    "max_daily_budget": 5000,
    "credentials": {"developer_token": "dev-token-0123456789"},
}


@pytest.fixture
def web(tmp_path: Path, clock: Any) -> Web:
    portal = BASE_CONFIG["portals"][PORTAL] | {"actions": ["page", "ads"]}
    return make_web(tmp_path, clock, actions={"page": {"type": "fallback_page"}, "ads": ADS}, portals={PORTAL: portal})


async def decide(c: httpx.AsyncClient, fields: dict[str, str], confirm: bool = False) -> httpx.Response:
    page = await c.get(f"/staff/decide/{PORTAL}", auth=BASIC)
    data = {"csrf": csrf_of(page.text), "lang": "ja", **fields} | ({"confirm": "yes"} if confirm else {})
    return await c.post(f"/staff/decide/{PORTAL}", data=data, auth=BASIC)


async def test_the_overview_says_the_state_in_words(web: Web, clock: Any) -> None:
    store = web.store.sync
    store.set_verdict(PORTAL, "down", clock.now - 600)
    store.set_failover(PORTAL, True, "public: timeout")
    store.put_action(ActionRow(PORTAL, "page", "on", "on", None, False, 1, 0.0, clock.now, clock.now))
    store.put_action(ActionRow(PORTAL, "ads", "on", "unknown", "Google Ads: quota exceeded", False, 3, 0.0, None, None))
    store.set_override(PORTAL, "on", "ベンダーに確認中", clock.now + 3600)
    async with web.client() as c:
        assert (await c.get("/staff/overview")).status_code == 303  # to the login form
        page = (await c.get("/staff/overview", auth=BASIC)).text
    assert (
        "<strong>停止中</strong>" in page and "代替受付中（フォールバック）" in page and "原因：public: timeout" in page
    )
    assert '代替予約ページ <span class="muted">(page)</span></td><td>実施中</td>' in page
    assert 'Google 広告 <span class="muted">(ads)</span></td><td>不明</td><td>Google Ads: quota exceeded</td>' in page
    assert "手動で代替受付中（理由：ベンダーに確認中、" in page
    assert '<meta http-equiv="refresh" content="15">' in page and "時点の情報" in page
    assert "訓練はまだ行われていません" in page and f'href="/staff/decide/{PORTAL}"' in page


async def test_start_the_fallback_is_asked_then_done_and_audited(web: Web, clock: Any) -> None:
    async with web.client() as c:
        asked = await decide(c, {"kind": "on", "reason": "予約サイトが表示されない"})
        assert asked.status_code == 200
        assert "Google 広告の配信が始まります（キャンペーン2件、1件あたり上限 5,000/日）" in asked.text
        assert "患者さんに代替予約ページを表示します" in asked.text and "期間：4時間" in asked.text
        assert web.store.sync.override(PORTAL, clock.now) is None, "asking decides nothing"
        done = await decide(c, {"kind": "on", "reason": "予約サイトが表示されない"}, confirm=True)
        assert done.status_code == 303 and done.headers["location"] == "/staff/overview?lang=ja&done=on"
        after = (await c.get(done.headers["location"], auth=BASIC)).text
    override = web.store.sync.override(PORTAL, clock.now)
    assert override is not None and override.mode == "on" and override.expires == clock.now + 4 * 3600
    (event,) = [e for e in web.store.sync.events() if e.kind == "override"]
    assert event.detail == {
        "mode": "on",
        "reason": "予約サイトが表示されない",
        "expires": clock.now + 4 * 3600,
        "by": f"{STAFF_USER} (web)",
    }
    assert "フォールバック（代替受付）の開始を記録しました" in after


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"kind": "off", "reason": "誤報", "for": ""}, "期間を入力してください"),
        ({"kind": "off", "reason": "誤報", "for": "25h"}, "ここで止められるのは最長24時間です"),
        ({"kind": "off", "reason": "", "for": "2h"}, "理由を入力してください"),
        ({"kind": "on", "reason": "x", "for": "soon"}, "期間は 30m、2h、1h30m のように入力してください"),
        ({"kind": "maint_add", "reason": "定期", "for": "8d", "mode": "suppress"}, "メンテナンス枠は最長7日です"),
        ({"kind": "reboot"}, "操作の種類が正しくありません"),
    ],
)
async def test_a_decision_out_of_bounds_is_refused_in_words(web: Web, fields: dict[str, str], error: str) -> None:
    async with web.client() as c:
        got = await decide(c, fields, confirm=True)
    assert got.status_code == 422 and error in got.text
    assert web.store.sync.override(PORTAL) is None and web.store.sync.maintenance(PORTAL) == []


async def test_a_false_alarm_for_two_hours_then_back_to_automatic(web: Web, clock: Any) -> None:
    async with web.client() as c:
        asked = await decide(c, {"kind": "off", "reason": "誤報", "for": "2h"})
        assert "その間に予約サイトが本当に止まっても切り替わりません" in asked.text
        await decide(c, {"kind": "off", "reason": "誤報", "for": "2h"}, confirm=True)
        override = web.store.sync.override(PORTAL, clock.now)
        assert override is not None and override.mode == "off" and override.expires == clock.now + 7200
        done = await decide(c, {"kind": "auto"}, confirm=True)
    assert done.status_code == 303 and web.store.sync.override(PORTAL, clock.now) is None
    modes = [e.detail["mode"] for e in web.store.sync.events() if e.kind == "override"]
    assert sorted(modes) == ["auto", "off"]


async def test_a_maintenance_window_is_added_listed_and_removed(web: Web, clock: Any) -> None:
    async with web.client() as c:
        fields = {
            "kind": "maint_add",
            "reason": "ベンダーの定期メンテナンス",
            "for": "2h",
            "mode": "suppress",
            "start": "",
        }
        assert (await decide(c, fields, confirm=True)).status_code == 303
        (window,) = web.store.sync.maintenance(PORTAL)
        assert (window.start, window.end, window.mode) == (clock.now, clock.now + 7200, "suppress")
        listed = (await c.get(f"/staff/decide/{PORTAL}", auth=BASIC)).text
        assert f"No.{window.id}" in listed and "ベンダーの定期メンテナンス" in listed and "切り替えない" in listed
        overview = (await c.get("/staff/overview", auth=BASIC)).text
        assert f"メンテナンス枠 No.{window.id}（切り替えない、" in overview
        gone = await decide(c, {"kind": "maint_remove", "window": str(window.id)}, confirm=True)
    assert gone.status_code == 303 and web.store.sync.maintenance(PORTAL) == []
    ops = [e.detail["op"] for e in web.store.sync.events() if e.kind == "maintenance"]
    assert sorted(ops) == ["add", "remove"]


async def test_a_window_starting_later_in_the_clinics_zone(web: Web, clock: Any) -> None:
    async with web.client() as c:
        fields = {"kind": "maint_add", "reason": "夜間", "for": "1h", "mode": "failover", "start": "2027-01-20T02:00"}
        asked = await decide(c, fields)
        assert "2027-01-20 02:00 から 2027-01-20 03:00 まで（代替受付に切り替える）" in asked.text
        await decide(c, fields, confirm=True)
    (window,) = web.store.sync.maintenance(PORTAL)
    start = dt.datetime(2027, 1, 20, 2, 0, tzinfo=ZoneInfo("Asia/Tokyo")).timestamp()  # the clinic's 02:00
    assert (window.start, window.end, window.mode) == (start, start + 3600, "failover")


async def test_no_decision_without_the_forms_token_or_for_an_unknown_portal(web: Web) -> None:
    async with web.client() as c:
        forged = await c.post(f"/staff/decide/{PORTAL}", data={"kind": "auto", "confirm": "yes"}, auth=BASIC)
        unknown = await c.get("/staff/decide/nope", auth=BASIC)
        anonymous = await c.post(f"/staff/decide/{PORTAL}", data={"kind": "auto", "confirm": "yes"})
    assert forged.status_code == 403 and unknown.status_code == 404 and anonymous.status_code == 401
    assert [e for e in web.store.sync.events() if e.kind == "override"] == []


async def test_a_follower_does_not_drill_and_says_where_to(web: Web, clock: Any) -> None:
    # Several instances on one store: only the leader sends staff messages, [訓練] ones included.
    from failover.web import create_app

    ran: list[str] = []

    async def drill(pid: str) -> list[dict[str, Any]]:
        ran.append(pid)
        return []

    web.app = create_app(web.settings, web.store, web.metrics, web.registry, None, clock, drill, leading=lambda: False)
    async with web.client() as c:
        refused = await decide(c, {"kind": "drill"}, confirm=True)
    assert refused.status_code == 409 and "このインスタンスはリーダーではありません" in refused.text
    assert ran == []


async def test_a_followers_console_decides_as_the_leaders_does(web: Web) -> None:
    # Several instances: a follower's store refuses effects (fence token 0), never a human decision.
    web.store.sync.fence = ("clinic-shibuya", 0)
    async with web.client() as c:
        done = await decide(c, {"kind": "on", "reason": "予約サイトが表示されない"}, confirm=True)
    assert done.status_code == 303, done.text
    override = web.store.sync.override(PORTAL)
    assert override is not None and override.mode == "on"
