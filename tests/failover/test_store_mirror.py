"""The appointment mirror in the store: ``apply_mirror_day`` (one transaction per day, reconciled),
``record_mirror_sync``, ``appointments``, ``mirror_state``, ``count_appointments``,
``purge_appointments``; patient fields always sealed; the async and resilient versions."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from failover.crypto import DataKey
from failover.mirror.model import DayListing, Listed, Mirrored, MirrorState
from failover.resilient import ResilientStore
from failover.store import AsyncStore, DataKeyError, Store, StoreError

JST = ZoneInfo("Asia/Tokyo")
TODAY = dt.date(2026, 11, 23)
TOMORROW = TODAY + dt.timedelta(days=1)
T0 = 1_800_000_000.0
KEY = DataKey.generate()[1]


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=JST)


def appt(aid: str, day: dt.date = TODAY, hour: int = 10, **kw: Any) -> Listed:
    kw.setdefault("name", "山田 花子")
    kw.setdefault("phone", "090-1111-2222")
    kw.setdefault("menu", "歯科検診")
    return Listed(aid, at(day, hour), at(day, hour, 30), **kw)


def day(d: dt.date, *appointments: Listed) -> DayListing:
    return DayListing(d, appointments)


@pytest.fixture
def store(store_location: str) -> Iterator[Store]:
    """The mirror on each backend: a SQLite file, then a PostgreSQL database."""
    s = Store(store_location, clock=lambda: T0, data_key=KEY)
    yield s
    s.close()


@pytest.fixture
def file_store(tmp_path: Path) -> Iterator[Store]:
    """On SQLite, for the tests that look into its file."""
    s = Store(tmp_path / "s.db", clock=lambda: T0, data_key=KEY)
    yield s
    s.close()


def test_a_day_is_added_then_reconciled(store: Store) -> None:
    changes = store.apply_mirror_day("epark", day(TODAY, appt("A"), appt("B", hour=9)), "admin_html", T0)
    assert (sorted(changes.added), changes.updated, changes.cancelled, changes.day) == (["A", "B"], [], [], TODAY)
    rows = store.appointments("epark", TODAY, TODAY)
    assert [r.id for r in rows] == ["B", "A"]  # by start
    assert rows[1] == Mirrored(
        "epark",
        "A",
        TODAY,
        at(TODAY, 10).timestamp(),
        at(TODAY, 10, 30).timestamp(),
        "山田 花子",
        "090-1111-2222",
        "歯科検診",
        "",
        False,
        None,
        "admin_html",
        T0,
        T0,
    )
    later = T0 + 600
    changes = store.apply_mirror_day(
        "epark", day(TODAY, appt("A", hour=11), appt("C", cancelled=True, status="キャンセル")), "admin_html", later
    )
    assert changes.counts == (1, 1, 1) and changes.cancelled == ["B"]
    by_id = {r.id: r for r in store.appointments("epark", TODAY, TODAY)}
    assert by_id["A"].start == at(TODAY, 11).timestamp() and by_id["A"].first_seen == T0
    assert by_id["B"].cancelled and by_id["B"].vanished_at == later  # kept, never deleted here
    assert by_id["C"].cancelled and by_id["C"].vanished_at is None and by_id["C"].status == "キャンセル"
    assert store.count_appointments("epark", TODAY) == 1


def test_unchanged_rows_are_only_marked_seen(file_store: Store, tmp_path: Path) -> None:
    file_store.apply_mirror_day("epark", day(TODAY, appt("A")), "admin_html", T0)
    with sqlite3.connect(tmp_path / "s.db") as db:
        sealed_before = db.execute("SELECT name FROM appointments").fetchone()
    changes = file_store.apply_mirror_day("epark", day(TODAY, appt("A")), "admin_html", T0 + 60)
    assert changes.counts == (0, 0, 0)
    (row,) = file_store.appointments("epark", TODAY, TODAY)
    assert row.synced_at == T0 + 60 and row.first_seen == T0
    with sqlite3.connect(tmp_path / "s.db") as db:
        assert db.execute("SELECT name FROM appointments").fetchone() == sealed_before  # not sealed again


@pytest.mark.parametrize("new_day_first", [True, False])
def test_a_move_to_another_day_is_one_row_whichever_day_syncs_first(store: Store, new_day_first: bool) -> None:
    store.apply_mirror_day("epark", day(TODAY, appt("A"), appt("B")), "admin_html", T0)
    listings = [day(TOMORROW, appt("A", TOMORROW, 15)), day(TODAY, appt("B"))]
    for listing in listings if new_day_first else listings[::-1]:
        store.apply_mirror_day("epark", listing, "admin_html", T0 + 60)
    rows = store.appointments("epark", TODAY, TOMORROW)
    assert [(r.id, r.day, r.cancelled, r.vanished_at) for r in rows] == [
        ("B", TODAY, False, None),
        ("A", TOMORROW, False, None),
    ]
    assert (store.count_appointments("epark", TODAY), store.count_appointments("epark", TOMORROW)) == (1, 1)


def test_portals_are_kept_apart(store: Store) -> None:
    store.apply_mirror_day("epark", day(TODAY, appt("A")), "admin_html", T0)
    store.apply_mirror_day("ebisu", day(TODAY, appt("A", name="佐藤")), "ics", T0)
    store.apply_mirror_day("ebisu", day(TODAY), "ics", T0 + 1)  # ebisu's A vanishes, epark's stays
    assert [(r.portal, r.cancelled) for r in store.appointments(None, TODAY, TODAY)] == [
        ("ebisu", True),
        ("epark", False),
    ]
    assert [r.name for r in store.appointments("ebisu", TODAY, TODAY)] == ["佐藤"]


def test_appointments_covers_the_days_asked_only(store: Store) -> None:
    for k in range(4):
        d = TODAY + dt.timedelta(days=k)
        store.apply_mirror_day("epark", day(d, appt(f"R{k}", d)), "admin_html", T0)
    assert [r.id for r in store.appointments("epark", TOMORROW, TODAY + dt.timedelta(days=2))] == ["R1", "R2"]


def test_sync_records_and_mirror_state(store: Store) -> None:
    assert store.mirror_state("epark", TODAY) == MirrorState("epark", None, None, None, None, 0)
    store.apply_mirror_day(
        "epark", day(TODAY - dt.timedelta(days=1), appt("old", TODAY - dt.timedelta(days=1))), "x", T0
    )
    store.apply_mirror_day("epark", day(TODAY, appt("A"), appt("C", cancelled=True)), "x", T0)
    store.apply_mirror_day("epark", day(TOMORROW, appt("B", TOMORROW)), "x", T0)
    store.record_mirror_sync("epark", T0, None, None)
    assert store.mirror_state("epark", TODAY) == MirrorState("epark", T0, T0, None, None, 2)
    store.record_mirror_sync("epark", T0 + 60, "timeout", "admin: no answer in 10 s")
    assert store.mirror_state("epark", TODAY) == MirrorState(
        "epark", T0, T0 + 60, "timeout", "admin: no answer in 10 s", 2
    )
    store.record_mirror_sync("epark", T0 + 120, None, None)
    assert store.mirror_state("epark", TOMORROW) == MirrorState("epark", T0 + 120, T0 + 120, None, None, 1)
    with pytest.raises(ValueError, match="unknown mirror failure kind 'oops'"):
        store.record_mirror_sync("epark", T0, "oops", "x")


def test_purge_by_start_per_portal_or_all_others(store: Store) -> None:
    yesterday = TODAY - dt.timedelta(days=1)
    for portal in ("epark", "ebisu", "gone"):
        store.apply_mirror_day(portal, day(yesterday, appt("Y", yesterday)), "x", T0)
        store.apply_mirror_day(portal, day(TODAY, appt("T")), "x", T0)
    cutoff = at(TODAY, 0).timestamp()
    assert store.purge_appointments(cutoff, "epark") == 1
    assert store.purge_appointments(cutoff, other_than=["ebisu"]) == 1  # "gone"'s
    assert [(r.portal, r.id) for r in store.appointments(None, yesterday, TODAY)] == [
        ("ebisu", "Y"),
        ("ebisu", "T"),
        ("epark", "T"),
        ("gone", "T"),
    ]


def test_without_a_key_the_mirror_is_neither_written_nor_read_but_counted(file_store: Store, tmp_path: Path) -> None:
    file_store.apply_mirror_day("epark", day(TODAY, appt("A")), "x", T0)
    file_store.record_mirror_sync("epark", T0, None, None)
    keyless = Store(tmp_path / "s.db")
    try:
        with pytest.raises(DataKeyError, match=r"without a data key: set data_key: \$\{PORTALGUARD_DATA_KEY\}"):
            keyless.apply_mirror_day("epark", day(TODAY, appt("B")), "x", T0)
        with pytest.raises(DataKeyError, match="the mirror's appointments are sealed"):
            keyless.appointments("epark", TODAY, TODAY)
        assert keyless.count_appointments("epark", TODAY) == 1  # counts need no key (the outage message)
        assert keyless.mirror_state("epark", TODAY).booked == 1
    finally:
        keyless.close()
    other = Store(tmp_path / "s.db", data_key=DataKey.generate()[1])
    try:
        with pytest.raises(DataKeyError, match=f"sealed with key {KEY.key_id}; set the data_key it was written with"):
            other.appointments("epark", TODAY, TODAY)
    finally:
        other.close()


def test_a_sealed_field_moved_to_another_row_is_detected(file_store: Store, tmp_path: Path) -> None:
    file_store.apply_mirror_day("epark", day(TODAY, appt("A", name="山田"), appt("B", name="佐藤")), "x", T0)
    with sqlite3.connect(tmp_path / "s.db") as db:
        (a_name,) = db.execute("SELECT name FROM appointments WHERE id='A'").fetchone()
        db.execute("UPDATE appointments SET name=? WHERE id='B'", (a_name,))
    with pytest.raises(DataKeyError, match="moved from another row or column"):
        file_store.appointments("epark", TODAY, TODAY)


def test_the_file_holds_no_patient_field_in_plaintext(file_store: Store, tmp_path: Path) -> None:
    file_store.apply_mirror_day(
        "epark", day(TODAY, appt("A", name="Hanako Yamada", phone="09011112222", menu="Implant")), "x", T0
    )
    file_store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("s.db*"))
    for text in ("Hanako Yamada", "09011112222", "Implant"):
        assert text.encode() not in raw


def test_one_day_is_one_transaction(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.apply_mirror_day("epark", day(TODAY, appt("A")), "x", T0)
    real_upsert = __import__("failover.store.sync", fromlist=["upsert"]).upsert
    calls = []

    def failing_upsert(conn: Any, table: Any, values: Any) -> None:
        calls.append(values["id"])
        if len(calls) == 2:
            raise StoreError("cut")
        real_upsert(conn, table, values)

    monkeypatch.setattr("failover.store.sync.upsert", failing_upsert)
    with pytest.raises(StoreError):
        store.apply_mirror_day("epark", day(TODAY, appt("B"), appt("C")), "x", T0 + 1)
    monkeypatch.undo()
    (row,) = store.appointments("epark", TODAY, TODAY)
    assert row.id == "A" and row.vanished_at is None and row.synced_at == T0  # all or nothing


@pytest.mark.anyio
async def test_the_async_store_runs_the_mirror_on_its_threads(tmp_path: Path) -> None:
    s = AsyncStore(tmp_path / "s.db", clock=lambda: T0, data_key=KEY)
    try:
        changes = await s.apply_mirror_day("epark", day(TODAY, appt("A")), "x", T0)
        await s.record_mirror_sync("epark", T0, None, None)
        assert changes.added == ["A"]
        assert [r.id for r in await s.appointments("epark", TODAY, TODAY)] == ["A"]
        assert (await s.mirror_state("epark", TODAY)).booked == 1
        assert await s.count_appointments("epark", TODAY) == 1
        assert await s.purge_appointments(T0 + 10**9, "epark") == 1
    finally:
        await s.close()


class DiskFull:
    def __init__(self, store: ResilientStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        real_tx = store.sync._write

        @contextmanager
        def tx(fenced: bool = False) -> Iterator[Any]:
            if self.full:
                raise sqlite3.OperationalError("database or disk is full")
            with real_tx(fenced) as db:
                yield db

        monkeypatch.setattr(store.sync, "_write", tx)


@pytest.mark.anyio
async def test_a_failing_mirror_write_raises_to_the_sync_and_is_counted_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = ResilientStore(tmp_path / "s.db", lambda: T0, data_key=KEY)
    disk = DiskFull(s, monkeypatch)
    try:
        disk.full = True
        with pytest.raises(sqlite3.OperationalError):
            await s.apply_mirror_day("epark", day(TODAY, appt("A")), "x", T0)
        with pytest.raises(sqlite3.OperationalError):
            await s.record_mirror_sync("epark", T0, "timeout", "x")
        assert s.health.failing and s.health.errors == 2 and s.pending == 0  # nothing kept to replay
        disk.full = False
        await s.apply_mirror_day("epark", day(TODAY, appt("A")), "x", T0)
        assert not s.health.failing
    finally:
        await s.close()


@pytest.mark.anyio
async def test_a_missing_key_is_not_a_failing_disk(tmp_path: Path) -> None:
    s = ResilientStore(tmp_path / "s.db", lambda: T0)
    try:
        with pytest.raises(DataKeyError):
            await s.apply_mirror_day("epark", day(TODAY, appt("A")), "x", T0)
        assert not s.health.failing and s.health.errors == 0
    finally:
        await s.close()
