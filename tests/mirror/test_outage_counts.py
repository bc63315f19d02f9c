"""The outage message tells staff what the mirror holds: today's and tomorrow's booked appointments,
when it last synced, and the link to the list — counts only, never a patient's name or phone. Real
Apprise to a local JSON receiver, through the outbox; a sealed store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest

from failover.actions.base import Incident
from failover.actions.notify import Notify
from failover.crypto import DataKey
from failover.fakes.receivers import JsonReceiver
from failover.mirror.model import DayListing, Listed
from failover.settings import Settings
from failover.staff.messages import render
from failover.store import AsyncStore
from tests.failover.notify_support import deliver_all, make_deps
from tests.mirror.conftest import TZ

pytestmark = pytest.mark.anyio
NOW = dt.datetime(2026, 12, 2, 8, 30, tzinfo=TZ).timestamp()
TODAY, TOMORROW = dt.date(2026, 12, 2), dt.date(2026, 12, 3)
NAMES = ("山田 太郎", "佐藤 花子", "鈴木 一郎", "田中 次郎")


def settings_for(hook: JsonReceiver, key: str, mirror: bool) -> Settings:
    portal: dict[str, object] = {
        "endpoints": {"public": {"url": "https://portal.example.jp/clinic/1"}},
        "book_url": "https://portal.example.jp/clinic/1",
        "actions": ["staff"],
    }
    if mirror:
        portal["mirror"] = {"source": {"type": "ics", "url": "https://portal.example.jp/feed.ics"}}
    return Settings.model_validate(
        {
            "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
            "server": {"public_url": "https://book.example.jp"},
            "data_key": key,
            "portals": {"epark": portal},
            "actions": {"staff": {"type": "notify", "urls": [hook.url("/staff", scheme="json")], "timeout": "2s"}},
        }
    )


def booked(n: int, day: dt.date, hour: int, cancelled: bool = False) -> Listed:
    start = dt.datetime(day.year, day.month, day.day, hour, tzinfo=TZ)
    return Listed(f"R{n}", start, None, NAMES[n % 4], f"090-0000-{1000 + n}", "検診", "", cancelled)


@pytest.mark.parametrize("mirror", [True, False], ids=["mirrored", "no mirror"])
async def test_the_outage_message_counts_the_copy(tmp_path: Path, mirror: bool) -> None:
    text, key = DataKey.generate()
    async with JsonReceiver() as hook, httpx.AsyncClient() as http:
        settings = settings_for(hook, text, mirror)
        store = AsyncStore(tmp_path / "pg.db", lambda: NOW, data_key=key)
        try:
            today = DayListing(TODAY, (booked(1, TODAY, 9), booked(2, TODAY, 10), booked(3, TODAY, 11, True)))
            await store.apply_mirror_day("epark", today, "ics", NOW - 600)
            await store.apply_mirror_day("epark", DayListing(TOMORROW, (booked(4, TOMORROW, 9),)), "ics", NOW - 600)
            await store.record_mirror_sync("epark", NOW - 600, None, None)
            action = Notify("staff", settings.actions["staff"], make_deps(settings, store, http, lambda: NOW))  # type: ignore[arg-type]
            row = store.sync.set_failover("epark", True, "public: http_status (HTTP 503)")
            await action.apply(Incident("epark", row.incident, row.reason, NOW))
            await deliver_all(action.deps.staff)  # type: ignore[arg-type]
        finally:
            await store.close()
        (message,) = [r.json()["message"] for r in hook.requests]
    if mirror:
        assert "予約の控え：本日2件・明日1件（最終同期 2026-12-02 08:20 JST）" in message
        assert "予約一覧：https://book.example.jp/staff/appointments" in message
    else:
        assert "予約の控え" not in message and "\n\n\n" not in message
    for name in NAMES:
        for part in name.split():
            assert part not in message
    assert "090-0000" not in message


def test_the_english_line_and_a_mirror_never_synced() -> None:
    _, body = render(
        "outage",
        "en",
        portal="epark",
        mirror_today=0,
        mirror_tomorrow=3,
        mirror_synced=None,
        staff_url="https://x/staff",
    )
    assert (
        "Appointment copy: 0 today, 3 tomorrow (last synced never)\nAppointments: https://x/staff/appointments" in body
    )
