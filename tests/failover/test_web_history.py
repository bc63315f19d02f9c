"""The console's history (``/staff/history``): the audit log in the staff's words by portal, kind and
period; and any past outage's incident report (``/staff/incident/PORTAL``) as a page and as a
Markdown download."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.failover.test_web_support import PORTAL, STAFF_PASSWORD, STAFF_USER, Web, make_web, two_portals

pytestmark = pytest.mark.anyio

BASIC = httpx.BasicAuth(STAFF_USER, STAFF_PASSWORD)


@pytest.fixture
def web(tmp_path: Path, clock: Any) -> Web:
    web = make_web(tmp_path, clock, portals=two_portals())
    s = web.store.sync
    for n, cause in ((1, "public: timeout"), (2, "override on: ベンダー確認")):
        s.add_event("verdict", PORTAL, **{"from": "up", "to": "degraded", "first_failure": clock.now})
        clock.advance(60)
        s.add_event("failover", PORTAL, to="on", cause=cause, reason=cause, incident=n)
        clock.advance(600)
        s.add_event("failover", PORTAL, to="off", cause="portal up", reason="", incident=n)
        clock.advance(3600)
    s.add_event("override", PORTAL, mode="off", reason="誤報", expires=clock.now + 7200, by="staff (web)")
    s.add_event(
        "maintenance", "other", op="add", id=3, mode="suppress", start=clock.now, end=clock.now + 60, reason="定期"
    )
    return web


async def test_the_history_in_words_newest_first(web: Web) -> None:
    async with web.client() as c:
        assert (await c.get("/staff/history")).status_code == 303  # to the login form
        page = (await c.get("/staff/history", auth=BASIC)).text
    assert "手動で切り替えを停止（誤報）（理由：誤報、" in page and "staff (web)）" in page
    assert "代替受付を開始（No.2、手動で切り替えました（理由：ベンダー確認））" in page
    assert "代替受付を開始（No.1、public: timeout）" in page and "判定：正常 → 不安定" in page
    assert "メンテナンス枠 No.3 を登録（" in page
    assert page.index("メンテナンス枠 No.3") < page.index("代替受付を開始（No.1")  # newest first
    assert "{" not in page.split("<main", 1)[1]  # no raw dicts


async def test_the_history_by_portal_and_kind(web: Web) -> None:
    async with web.client() as c:
        other = (await c.get("/staff/history?portal=other", auth=BASIC)).text
        failovers = (await c.get(f"/staff/history?portal={PORTAL}&kind=failover&since=7d", auth=BASIC)).text
        english = (await c.get("/staff/history?kind=override&lang=en", auth=BASIC)).text
    assert "メンテナンス枠 No.3" in other and "代替受付を開始" not in other
    assert failovers.count("代替受付を開始") == 2 and "手動で切り替えを停止" not in failovers
    assert f'href="/staff/incident/{PORTAL}"' in failovers
    assert "override off until" in english and "— 誤報" in english


async def test_any_outages_report_as_a_page_and_as_markdown(web: Web) -> None:
    async with web.client() as c:
        last = (await c.get(f"/staff/incident/{PORTAL}", auth=BASIC)).text
        first = (await c.get(f"/staff/incident/{PORTAL}?n=1", auth=BASIC)).text
        md = await c.get(f"/staff/incident/{PORTAL}?n=1&format=md", auth=BASIC)
        unknown = await c.get("/staff/incident/nope", auth=BASIC)
    assert "incident #2" in last and "No.1（" in last and "No.2（" in last
    assert "incident #1" in first and "incident #2" not in first
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert md.headers["content-disposition"] == f'attachment; filename="incident-{PORTAL}-1.md"'
    assert md.text.startswith(f"# Incident report: {PORTAL} (incident #1)") and "- Outage duration: 11m" in md.text
    assert unknown.status_code == 404
