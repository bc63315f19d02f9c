"""``/staff/appointments``: the day's copy by time behind the staff login, with its freshness, the day's
booking requests beside it and a print stylesheet; never without credentials."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from failover.crypto import DataKey
from failover.metrics import FailoverMetrics
from failover.mirror.model import DayListing, Listed
from failover.settings import Settings
from failover.store import AsyncStore
from failover.web import create_app
from tests.failover.test_web_support import BASE_CONFIG, STAFF_TOKEN
from tests.mirror.conftest import TZ

pytestmark = pytest.mark.anyio
DAY = dt.date(2026, 12, 2)
NOW = dt.datetime(2026, 12, 2, 8, 30, tzinfo=TZ).timestamp()
AUTH = {"authorization": f"Bearer {STAFF_TOKEN}"}


def at(hour: int, minute: int = 0, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ)


class Clock:
    now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, AsyncStore, Clock]]:
    text, key = DataKey.generate()
    mirror = {
        "every": "10m",
        "source": {"type": "ics", "url": "https://portal.example.jp/calendar.ics"},
    }
    portal = {**BASE_CONFIG["portals"]["epark"], "mirror": mirror}
    raw: dict[str, Any] = {**BASE_CONFIG, "store": str(tmp_path / "pg.db"), "data_key": text}
    raw["portals"] = {"epark": portal}
    settings = Settings.model_validate(raw)
    clock = Clock()
    store = AsyncStore(settings.store, clock, data_key=key)
    registry = CollectorRegistry()

    async def announce(portal: str, number: int) -> None:
        return None

    app = create_app(settings, store, FailoverMetrics(registry), registry, announce, clock)
    transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client, store, clock
    await store.close()


async def seed(store: AsyncStore, clock: Clock) -> None:
    listing = DayListing(
        DAY,
        (
            Listed("A2", at(11), at(11, 30), "佐藤 花子", "090-0000-5678", "クリーニング", "予約確定"),
            Listed("A1", at(9, 30), at(10), "山田 太郎", "090-0000-1234", "検診", "予約確定"),
            Listed("A3", at(15), None, "鈴木 一郎", "", "", "キャンセル", cancelled=True),
        ),
    )
    await store.apply_mirror_day("epark", listing, "ics", clock.now)
    await store.record_mirror_sync("epark", clock.now, None, None)
    await store.add_request("epark", {"name": "高橋 三郎", "phone": "090-0000-7777", "phone_digits": "09000007777"})


async def test_the_day_is_listed_by_time_with_its_freshness_and_requests(site) -> None:
    client, store, clock = site
    await seed(store, clock)
    r = await client.get("/staff/appointments?date=2026-12-02", headers=AUTH)
    assert r.status_code == 200, r.text
    page = r.text
    assert page.index("山田 太郎") < page.index("佐藤 花子") < page.index("鈴木 一郎")  # by time
    assert "09:30–10:00" in page and 'href="tel:09000001234"' in page
    assert "予約 2件（キャンセル 1件）" in page and "appt-cancelled" in page
    assert "最終同期 12/02 08:30" in page
    assert "この日に届いた予約のご希望（1件）" in page and "高橋 三郎" in page
    assert "2026年12月2日(水)" in page and "date=2026-12-01" in page and "date=2026-12-03" in page
    css = (await client.get("/static/app.css")).text
    assert "@media print" in css and "size: A4" in css
    assert r.headers["cache-control"].startswith("no-store") or "private" in r.headers.get("cache-control", "")


async def test_today_is_the_default_and_a_vanished_row_says_when(site) -> None:
    client, store, clock = site
    await seed(store, clock)
    clock.now += 600
    await store.apply_mirror_day("epark", DayListing(DAY, ()), "ics", clock.now)
    page = (await client.get("/staff/appointments", headers=AUTH)).text
    assert "12/02 08:40 に予約サイトの一覧から消えました" in page and "予約 0件（キャンセル 3件）" in page
    clock.now += 3 * 600 + 1
    page = (await client.get("/staff/appointments", headers=AUTH)).text
    assert "古い可能性があります" in page


async def test_it_needs_the_staff_login_and_a_real_date(site) -> None:
    client, store, clock = site
    await seed(store, clock)
    r = await client.get("/staff/appointments?date=2026-12-02")
    assert r.status_code == 303 and "山田" not in r.text  # to the login form
    r = await client.get("/staff/appointments?date=2026-13-40", headers=AUTH)
    assert r.status_code == 400 and "山田" not in r.text
    en = (await client.get("/staff/appointments?date=2026-12-02&lang=en", headers=AUTH)).text
    assert "2 booked (1 cancelled)" in en and "last synced 12/02 08:30" in en
    staff = (await client.get("/staff", headers=AUTH)).text
    assert "/staff/appointments" in staff


async def test_booking_mails_no_template_could_read_are_listed_for_staff(site) -> None:
    from failover.mirror.model import UNREAD_REASONS, UnreadMail

    client, store, clock = site
    await seed(store, clock)
    for n, subject in enumerate(["【予約】変更のお知らせ（高橋様）", "ご予約が入りました"]):
        mail = UnreadMail(f"k{n}", clock.now - 60 * (n + 1), subject, UNREAD_REASONS[0])
        await store.apply_mail("epark", "INBOX", 7, n + 1, mail, clock.now)
    page = (await client.get("/staff/appointments", headers=AUTH)).text
    assert "2通のメールを読み取れませんでした：テンプレートを確認してください" in page
    assert "【予約】変更のお知らせ（高橋様）" in page and "12/02 08:29" in page
    assert (await client.get("/staff/appointments")).status_code == 303  # the list, like the rest, is staff-only
