"""Retention: what goes when, and the send-once records an open incident still needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from failover.retention import purge
from failover.settings import Settings
from failover.store import Store
from failover.store_url import is_database_url

DAY = 86400.0


@pytest.fixture
def where(tmp_path: Path, store_location: str) -> tuple[Path, str]:
    """The test's directory and its store: a SQLite file, then a PostgreSQL database."""
    return tmp_path, store_location


def settings(where: tuple[Path, str], audit: str = "30d") -> Settings:
    tmp_path, store = where
    server = {"secret_file": str(tmp_path / "web.key")} if is_database_url(store) else {}
    return Settings.model_validate(
        {
            "store": store,
            "server": server,
            "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
            "failover": {"audit_retention": audit},
            "portals": {
                "open": {"endpoints": {"public": {"url": "http://127.0.0.1:9/"}}, "book_url": "http://127.0.0.1:9/b"},
                "closed": {"endpoints": {"public": {"url": "http://127.0.0.1:9/"}}, "book_url": "http://127.0.0.1:9/b"},
            },
        }
    )


def test_claims_of_an_open_incident_outlive_the_audit_retention(where: tuple[Path, str]) -> None:
    now = [1_800_000_000.0]
    s = settings(where)
    store = Store(s.store, lambda: now[0])
    store.set_failover("closed", True, "portal down")  # an outage over long ago
    store.claim("notify:closed:1:staff:outage")
    store.set_failover("closed", False, "portal up")
    now[0] += 5 * DAY
    store.set_failover("open", True, "portal down")  # an outage that has lasted 40 days
    store.claim("notify:open:1:staff:outage")
    store.add_event("failover", "open", to="on")
    store.add_event("notify", "open", topic="outage", sent=True)
    now[0] += 40 * DAY
    purge(store, s, now[0])
    assert store.claimed("notify:open:1:staff:outage"), "a restart would send the outage message again"
    assert not store.claimed("notify:closed:1:staff:outage")
    assert store.events(kinds=("notify",)) == [], "the audit log itself follows its retention"
    assert len(store.events(kinds=("failover",))) == 1, "the availability report's history is kept longer"
    store.set_failover("open", False, "portal up")
    purge(store, s, now[0])
    assert not store.claimed("notify:open:1:staff:outage")


def test_the_availability_history_follows_report_history_retention(where: tuple[Path, str]) -> None:
    now = [1_800_000_000.0]
    s = settings(where)
    store = Store(s.store, lambda: now[0])
    for kind in ("verdict", "failover", "action", "service", "request", "notify", "override"):
        store.add_event(kind, "open")
    now[0] += 399 * DAY
    purge(store, s, now[0])
    assert {e.kind for e in store.events()} == {"verdict", "failover", "action", "service", "request"}
    now[0] += 2 * DAY  # 401 days: past the default 400d
    purge(store, s, now[0])
    assert store.events() == []


def test_history_retention_is_at_least_thirteen_months(tmp_path: Path) -> None:
    where = (tmp_path, str(tmp_path / "pg.db"))  # the config's check alone: no store is opened
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"must be at least 397d \(the availability report compares"):
        Settings.model_validate({**settings(where).model_dump(mode="json"), "report": {"history_retention": "90d"}})


def test_mirrored_appointments_follow_their_portal_s_mirror_retention(where: tuple[Path, str]) -> None:
    import datetime as dt
    from types import SimpleNamespace
    from zoneinfo import ZoneInfo

    from failover.crypto import DataKey
    from failover.mirror.model import DayListing, Listed
    from failover.retention import purge_expired_appointments

    jst = ZoneInfo("Asia/Tokyo")
    now = dt.datetime(2026, 11, 23, 12, tzinfo=jst).timestamp()
    s = settings(where)
    store = Store(s.store, lambda: now, data_key=DataKey.generate()[1])
    for days_ago in (1, 3, 10, 100):
        day = dt.date(2026, 11, 23) - dt.timedelta(days=days_ago)
        start = dt.datetime(day.year, day.month, day.day, 10, tzinfo=jst)
        for portal in ("open", "closed"):
            listing = DayListing(day, (Listed(f"R{days_ago}", start, None, "山田"),))
            store.apply_mirror_day(portal, listing, "admin_html", now)
    # "open" mirrors with 7 days' retention (the section is another module's: set by hand); "closed" has
    # no mirror (any more): its appointments go with booking.retention (90 days).
    object.__setattr__(s.portals["open"], "mirror", SimpleNamespace(retention=7 * DAY))
    assert purge_expired_appointments(store, s, now) == 3
    first, last = dt.date(2026, 1, 1), dt.date(2026, 12, 31)
    assert [r.id for r in store.appointments("open", first, last)] == ["R3", "R1"]
    assert [r.id for r in store.appointments("closed", first, last)] == ["R10", "R3", "R1"]
    assert purge(store, s, now) == 0
