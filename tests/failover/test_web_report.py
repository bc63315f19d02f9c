"""/staff/report: the availability report of a month on the staff console (Japanese, no script), and
its Markdown and CSV downloads, on the scripted month (tests/failover/report_script.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from test_web_support import STAFF_PASSWORD, STAFF_USER, Web, make_web

from tests.failover.report_script import NOW, march

pytestmark = pytest.mark.anyio
BASIC = httpx.BasicAuth(STAFF_USER, STAFF_PASSWORD)


@pytest.fixture
def web(tmp_path: Path) -> Web:
    script = march(tmp_path / "portalguard.db", "Asia/Tokyo")
    script.store.close()
    now = script.ts(NOW)
    return make_web(tmp_path, lambda: now)


async def get(web: Web, query: str = "", auth: httpx.BasicAuth | None = BASIC) -> httpx.Response:
    async with web.client() as c:
        return await c.get(f"/staff/report{query}", auth=auth)


async def test_the_page_shows_a_month_in_japanese(web: Web) -> None:
    r = await get(web, "?month=2026-03")
    assert r.status_code == 200
    html = r.text
    assert '<h1>稼働率レポート <span class="day">2026-03</span></h1>' in html
    assert '<tr><th scope="row">稼働率</th><td>99.462 %</td></tr>' in html
    assert '<tr><th scope="row">障害回数</th><td>4</td></tr>' in html
    assert '<tr><th scope="row">障害中の予約リクエスト</th><td>3</td></tr>' in html
    assert "2026-03-31 23:40:00 JST" in html and "期間後も継続：期間の終了で区切り" in html
    assert 'href="/staff/report?month=2026-02" rel="prev"' in html
    assert 'href="/staff/report?month=2026-04" rel="next"' in html
    assert 'href="/staff/report?month=2026-03&amp;format=csv"' in html
    assert "<script" not in html and "http://" not in html.replace('href="http', "")


async def test_this_month_by_default_and_a_bad_month_says_how_to_write_it(web: Web) -> None:
    r = await get(web)
    assert r.status_code == 200 and '<span class="day">2026-04</span>' in r.text and "現在まで" in r.text
    bad = await get(web, "?month=March")
    assert bad.status_code == 400
    assert "月は YYYY-MM の形で指定してください（例：2026-03）" in bad.text and "2026-04" in bad.text


async def test_downloads(web: Web) -> None:
    md = await get(web, "?month=2026-03&format=md")
    assert md.status_code == 200
    assert md.headers["content-type"] == "text/markdown; charset=utf-8"
    assert md.headers["content-disposition"] == 'attachment; filename="availability-2026-03.md"'
    assert md.text.startswith("# 稼働率レポート: 2026-03 (Asia/Tokyo)\n") and "| 稼働率 | 99.462 % |" in md.text
    english = await get(web, "?month=2026-03&format=md&lang=en")
    assert "| Availability | 99.462 % |" in english.text
    csv = await get(web, "?month=2026-03&format=csv")
    assert csv.headers["content-type"] == "text/csv; charset=utf-8"
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[1].startswith("epark,epark,2026-03-01T00:00:00+09:00,2026-04-01T00:00:00+09:00,99.4621,2673570,4830,")
    assert (await get(web, "?month=2026-03&format=pdf")).status_code == 400
    assert (await get(web, "?month=nope&format=csv")).status_code == 400


async def test_it_needs_the_staff_credentials(web: Web) -> None:
    assert (await get(web, "?month=2026-03", auth=None)).status_code == 303  # to the login form
    assert (await get(web, "?month=2026-03&format=csv", auth=None)).status_code == 303  # to the login form
