"""The SQLite store: migrations, failover state, claims, overrides, maintenance, events, booking requests.

Two ``Store`` instances on one file stand for two processes (the service and the CLI).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from failover.store import (
    REQUEST_STATUSES,
    SCHEMA_VERSION,
    ActionRow,
    EndpointRow,
    Store,
    StoreError,
)
from failover.store.engine import sqlite_engine
from failover.store.migrations.legacy import MIGRATIONS as _MIGRATIONS
from failover.store.migrations.legacy import split_sql as _split_sql
from tests.failover.store_support import open_at_once

T0 = 1_800_000_000.0
TABLES = {
    "portal_state",
    "action_state",
    "overrides",
    "maintenance",
    "events",
    "claims",
    "booking_requests",
    "endpoint_state",
    "kv",
}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "portalguard.db"


@pytest.fixture
def store(store_location: str, clock: Any) -> Iterator[Store]:
    """The store on each backend: a SQLite file, then a PostgreSQL database."""
    s = Store(store_location, clock=clock)
    yield s
    s.close()


@pytest.fixture
def file_store(db_path: Path, clock: Any) -> Iterator[Store]:
    """A SQLite store, for the tests that look at its file."""
    s = Store(db_path, clock=clock)
    yield s
    s.close()


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA user_version").fetchone()[0]


# -- schema and migrations ------------------------------------------------------------------------


def test_fresh_file_gets_the_current_schema(file_store: Store, db_path: Path) -> None:
    assert file_store.schema_version() == SCHEMA_VERSION >= max(_MIGRATIONS)
    assert tables(db_path) >= TABLES
    assert file_store.writable()


def test_a_fresh_database_gets_the_current_schema(store: Store) -> None:
    from sqlalchemy import inspect

    assert store.schema_version() == SCHEMA_VERSION
    with store.engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) >= TABLES
    assert store.writable()


def test_every_migration_step_applies_in_order_and_keeps_data(db_path: Path) -> None:
    with sqlite3.connect(db_path, isolation_level=None) as db:
        for statement in _split_sql(_MIGRATIONS[1]):
            db.execute(statement)
        db.execute("PRAGMA user_version=1")
        db.execute("INSERT INTO portal_state (portal, failover, incident) VALUES ('epark', 1, 7)")
    db.close()
    s = Store(db_path)
    try:
        assert s.schema_version() == SCHEMA_VERSION
        row = s.portal("epark")
        assert (row.failover, row.incident) == (True, 7)
        assert s.endpoints("epark") == []  # a table of a later migration exists
    finally:
        s.close()


def _version_2_store(db_path: Path, *rows: tuple[str, tuple[Any, ...]]) -> None:
    """A store file as schema version 2 left it, holding ``rows`` (SQL, parameters)."""
    with sqlite3.connect(db_path, isolation_level=None) as db:
        for v in (1, 2):
            for statement in _split_sql(_MIGRATIONS[v]):
                db.execute(statement)
        db.execute("PRAGMA user_version=2")
        for sql, args in rows:
            db.execute(sql, args)
    db.close()


PORTAL_ROW = "INSERT INTO portal_state (portal, failover, incident, since, reason) VALUES (?,?,?,?,?)"
FAILOVER_EVENT = "INSERT INTO events (ts, portal, kind, detail) VALUES (?, 'epark', 'failover', ?)"


def test_a_failover_in_progress_keeps_its_start_and_cause_through_migration_3(db_path: Path) -> None:
    _version_2_store(
        db_path,
        (PORTAL_ROW, ("epark", 1, 3, T0, "public: timeout")),
        ("INSERT INTO action_state (portal, action) VALUES ('epark', 'ads')", ()),
    )
    s = Store(db_path)
    try:
        row = s.portal("epark")
        assert (row.outage_since, row.outage_reason) == (T0, "public: timeout")
        assert s.action("epark", "ads").failing_since is None
    finally:
        s.close()


def test_a_switched_off_portal_gets_its_last_outage_from_the_events_in_migration_3(db_path: Path) -> None:
    """A revert still retrying at the upgrade must tell the recovered notice the real outage."""
    _version_2_store(
        db_path,
        (PORTAL_ROW, ("epark", 0, 2, T0 + 3600, "portal up")),
        (FAILOVER_EVENT, (T0 - 9000, '{"to": "on", "reason": "an older outage", "incident": 1}')),
        (FAILOVER_EVENT, (T0, '{"to": "on", "reason": "public: http_status (HTTP 503)", "incident": 2}')),
        (FAILOVER_EVENT, (T0 + 3600, '{"to": "off", "reason": "portal up", "incident": 2}')),
        (PORTAL_ROW, ("never", 0, 0, None, "")),
    )
    s = Store(db_path)
    try:
        row = s.portal("epark")
        assert (row.outage_since, row.outage_reason) == (T0, "public: http_status (HTTP 503)")
        assert (s.portal("never").outage_since, s.portal("never").outage_reason) == (None, "")
    finally:
        s.close()


def pragma(store: Store, name: str) -> Any:
    with store.engine.connect() as conn:
        return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_the_connection_writes_durably(file_store: Store) -> None:
    assert pragma(file_store, "journal_mode") == "wal"
    assert pragma(file_store, "synchronous") == 2  # FULL: a returned write is on disk
    assert pragma(file_store, "busy_timeout") >= 5000  # another process's write lock is waited for


def test_a_store_opened_read_only_is_not_writable(db_path: Path, file_store: Store) -> None:
    """The database file itself refuses writes (``mode=ro``), where a TEMP table would still work."""
    file_store.engine.dispose()
    file_store.engine = sqlite_engine(db_path, read_only=True)  # the same Store code, on a file it cannot write
    assert not file_store.writable()
    assert file_store.portal("epark").verdict == "unknown"  # reads still work


def test_reopening_keeps_data_and_does_not_migrate_again(db_path: Path, clock: Any) -> None:
    first = Store(db_path, clock=clock)
    first.add_event("started")
    first.close()
    again = Store(db_path, clock=clock)
    try:
        assert [e.kind for e in again.events()] == ["started"]
        assert again.schema_version() == SCHEMA_VERSION
    finally:
        again.close()


def test_a_newer_schema_asks_to_upgrade(db_path: Path) -> None:
    with sqlite3.connect(db_path) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 7}")
    db.close()
    with pytest.raises(StoreError) as info:
        Store(db_path)
    assert str(info.value) == (
        f"store {db_path} has schema {SCHEMA_VERSION + 7}, newer than this portalguard ({SCHEMA_VERSION}): "
        "upgrade portalguard"
    )
    assert user_version(db_path) == SCHEMA_VERSION + 7  # left untouched


def test_an_unopenable_path_says_what_to_check(tmp_path: Path) -> None:
    path = tmp_path / "no-such-dir" / "portalguard.db"
    with pytest.raises(StoreError) as info:
        Store(path)
    assert str(info.value) == (
        f"store {path}: unable to open database file (check the `store:` path and its permissions)"
    )


# -- portal state ---------------------------------------------------------------------------------


def test_unknown_portal_reads_as_defaults(store: Store) -> None:
    row = store.portal("epark")
    assert (row.failover, row.incident, row.since, row.verdict, row.page_on) == (False, 0, None, "unknown", False)


def test_incident_number_increments_only_when_switching_on(store: Store, clock: Any) -> None:
    trail = []
    for on in [False, True, True, False, False, True, False, True]:
        clock.advance(10)
        row = store.set_failover("epark", on, f"reason {clock.now - T0:.0f}")
        trail.append((row.failover, row.incident, None if row.since is None else row.since - T0))
    assert trail == [
        (False, 0, None),  # off while off: nothing happens
        (True, 1, 20.0),
        (True, 1, 20.0),  # on while on: same incident, same since
        (False, 1, 40.0),
        (False, 1, 40.0),
        (True, 2, 60.0),
        (False, 2, 70.0),
        (True, 3, 80.0),
    ]
    assert store.portal("epark").reason == "reason 80"
    assert store.portal("other").incident == 0


def test_switching_off_keeps_the_outage_start_and_cause(store: Store, clock: Any) -> None:
    store.set_failover("epark", True, "public: http_status (HTTP 503)")
    clock.advance(3600)
    row = store.set_failover("epark", False, "portal up")
    assert (row.since, row.reason) == (T0 + 3600, "portal up")  # the last switch
    assert (row.outage_since, row.outage_reason) == (T0, "public: http_status (HTTP 503)")
    clock.advance(60)
    row = store.set_failover("epark", True, "public: timeout")  # the next outage has its own
    assert (row.incident, row.outage_since, row.outage_reason) == (2, T0 + 3660, "public: timeout")


def test_verdict_page_endpoints_and_values_round_trip(store: Store) -> None:
    store.set_verdict("epark", "down", T0 + 5)
    store.set_page("epark", True)
    row = store.portal("epark")
    assert (row.verdict, row.verdict_since, row.page_on, row.failover) == ("down", T0 + 5, True, False)
    ep = EndpointRow("epark", "public", False, 503, "http_status", "HTTP 503", T0, T0 + 15)
    store.put_endpoint(ep)
    store.put_endpoint(EndpointRow("epark", "admin", True, 200, None, "", T0, T0 + 15))
    assert [e.endpoint for e in store.endpoints("epark")] == ["admin", "public"]
    assert store.endpoints("epark")[1] == ep
    store.set_value("heartbeat", {"at": T0, "note": "稼働中"})
    assert store.value("heartbeat") == {"at": T0, "note": "稼働中"}
    assert store.value("missing", default=3) == 3


def test_action_rows_round_trip(store: Store, clock: Any) -> None:
    assert store.action("epark", "ads") == ActionRow("epark", "ads", "off", "unknown", None, False, 0, 0.0, None, None)
    row = ActionRow("epark", "ads", "on", "off", "UNAVAILABLE", False, 2, T0 + 30, None, None)
    store.put_action(row)
    store.put_action(ActionRow("epark", "page", "on", "on", None, False, 0, 0.0, T0, None))
    got = store.action("epark", "ads")
    assert got == ActionRow("epark", "ads", "on", "off", "UNAVAILABLE", False, 2, T0 + 30, None, clock.now)
    assert [a.action for a in store.actions("epark")] == ["ads", "page"]


# -- exactly-once claims --------------------------------------------------------------------------


def test_a_claim_succeeds_exactly_once(store: Store) -> None:
    assert not store.claimed("notify:epark:1:down")
    assert store.claim("notify:epark:1:down") is True
    assert store.claim("notify:epark:1:down") is False
    assert store.claimed("notify:epark:1:down")
    assert store.claim("notify:epark:2:down") is True


def test_a_claim_holds_across_processes_and_restarts(db_path: Path) -> None:
    service, cli = Store(db_path), Store(db_path)
    try:
        assert service.claim("k") is True
        assert cli.claim("k") is False and cli.claimed("k")
        assert cli.claim("k2") is True
        assert service.claim("k2") is False
    finally:
        service.close()
        cli.close()
    restarted = Store(db_path)
    try:
        assert restarted.claim("k") is False and restarted.claim("k2") is False
    finally:
        restarted.close()


def test_racing_claims_have_one_winner_per_key(db_path: Path) -> None:
    stores = [Store(db_path), Store(db_path)]
    wins: list[list[str]] = [[], [], [], []]
    barrier = threading.Barrier(4)

    def worker(i: int) -> None:
        s = stores[i % 2]
        barrier.wait()
        for n in range(25):
            if s.claim(f"key-{n}"):
                wins[i].append(f"key-{n}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    try:
        all_wins = [k for w in wins for k in w]
        assert sorted(all_wins) == sorted(f"key-{n}" for n in range(25))
    finally:
        for s in stores:
            s.close()


# -- overrides ------------------------------------------------------------------------------------


def test_override_in_force_until_it_expires(store: Store, clock: Any) -> None:
    assert store.override("epark") is None
    store.set_override("epark", "on", "portal says maintenance", expires=T0 + 3600)
    ov = store.override("epark")
    assert ov is not None and (ov.mode, ov.reason, ov.created, ov.expires) == (
        "on",
        "portal says maintenance",
        T0,
        T0 + 3600,
    )
    assert store.override("epark", now=T0 + 3599) is not None
    assert store.override("epark", now=T0 + 3600) is None  # expired at exactly `expires`
    clock.advance(7200)
    assert store.override("epark") is None
    assert store.override("other") is None


def test_override_without_expiry_is_replaced_and_cleared(store: Store) -> None:
    store.set_override("epark", "on", "drill", expires=None)
    store.set_override("epark", "off", "staff decided", expires=None)
    ov = store.override("epark", now=T0 + 10 * 365 * 86400)
    assert ov is not None and (ov.mode, ov.reason) == ("off", "staff decided")
    assert store.clear_override("epark") is True
    assert store.clear_override("epark") is False
    assert store.override("epark") is None


def test_bad_override_mode_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match=r"unknown override mode 'auto' \(use on, off\)"):
        store.set_override("epark", "auto", "x", expires=None)


# -- maintenance windows --------------------------------------------------------------------------


def test_maintenance_window_is_active_from_start_until_end(store: Store) -> None:
    wid = store.add_maintenance("epark", T0 + 100, T0 + 200, "suppress", "portal maintenance")
    other = store.add_maintenance("ebisu", T0 + 100, T0 + 200, "failover", "")
    assert wid != other
    active = {t: store.active_maintenance("epark", T0 + t) for t in (99, 100, 150, 199.9, 200, 300)}
    assert {t: (m.id if m else None) for t, m in active.items()} == {
        99: None,
        100: wid,
        150: wid,
        199.9: wid,
        200: None,
        300: None,
    }
    m = active[150]
    assert m is not None and (m.portal, m.mode, m.reason, m.created) == (
        "epark",
        "suppress",
        "portal maintenance",
        T0,
    )


def test_overlapping_windows_the_latest_added_wins(store: Store) -> None:
    first = store.add_maintenance("epark", T0, T0 + 1000, "suppress", "long")
    second = store.add_maintenance("epark", T0 + 100, T0 + 200, "failover", "short")  # same `created`
    assert first < second
    at = store.active_maintenance
    assert [w.id if (w := at("epark", T0 + t)) else None for t in (50, 150, 250)] == [first, second, first]


@pytest.mark.parametrize("end", [T0 + 100, T0 + 99], ids=["end-equals-start", "end-before-start"])
def test_maintenance_must_end_after_it_starts(store: Store, end: float) -> None:
    with pytest.raises(StoreError, match="the maintenance window ends before it starts"):
        store.add_maintenance("epark", T0 + 100, end, "suppress", "")
    assert store.maintenance(include_past=True) == []


def test_bad_maintenance_mode_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match=r"unknown maintenance mode 'silence' \(use suppress, failover\)"):
        store.add_maintenance("epark", T0, T0 + 10, "silence", "")


def test_maintenance_list_hides_past_windows_and_remove(store: Store, clock: Any) -> None:
    past = store.add_maintenance("epark", T0 - 200, T0 - 100, "suppress", "past")
    later = store.add_maintenance("epark", T0 + 500, T0 + 600, "suppress", "later")
    soon = store.add_maintenance("epark", T0 + 100, T0 + 200, "failover", "soon")
    other = store.add_maintenance("ebisu", T0 + 100, T0 + 200, "suppress", "")
    assert [m.id for m in store.maintenance("epark")] == [soon, later]  # by start
    assert [m.id for m in store.maintenance("epark", include_past=True)] == [past, soon, later]
    assert [m.id for m in store.maintenance()] == [soon, other, later]
    clock.advance(300)
    assert [m.id for m in store.maintenance("epark")] == [later]
    assert store.remove_maintenance(later) is True
    assert store.remove_maintenance(later) is False
    assert store.maintenance("epark") == []


# -- events ---------------------------------------------------------------------------------------


@pytest.fixture
def events(store: Store, clock: Any) -> Store:
    for kind, portal, action in [
        ("verdict", "epark", None),
        ("failover_on", "epark", None),
        ("action_ok", "epark", "page"),
        ("verdict", "ebisu", None),
        ("action_error", "epark", "ads"),
        ("network", None, None),
        ("failover_off", "epark", None),
    ]:
        store.add_event(kind, portal, action, n=int(clock.now - T0))
        clock.advance(60)
    return store


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, [0, 60, 120, 180, 240, 300, 360]),
        ({"portal": "epark"}, [0, 60, 120, 240, 360]),
        ({"portal": "ebisu"}, [180]),
        ({"since": T0 + 120}, [120, 180, 240, 300, 360]),
        ({"kinds": ("verdict",)}, [0, 180]),
        ({"kinds": ("action_ok", "action_error")}, [120, 240]),
        ({"portal": "epark", "since": T0 + 60, "kinds": ("verdict", "failover_off")}, [360]),
        ({"limit": 2}, [300, 360]),
        ({"portal": "nobody"}, []),
    ],
    ids=[
        "all",
        "portal",
        "other-portal",
        "since-inclusive",
        "one-kind",
        "two-kinds",
        "combined",
        "limit-keeps-latest",
        "no-match",
    ],
)
def test_events_filter_and_order(events: Store, query: dict[str, Any], expected: list[int]) -> None:
    assert [e.detail["n"] for e in events.events(**query)] == expected


def test_event_fields_and_detail_round_trip(store: Store) -> None:
    store.add_event("action_error", "epark", "ads", error="予算超過", budget=5000.5, at=Path("/x"), nested={"a": [1]})
    (e,) = store.events()
    assert (e.ts, e.portal, e.kind, e.action) == (T0, "epark", "action_error", "ads")
    assert e.detail == {"error": "予算超過", "budget": 5000.5, "at": "/x", "nested": {"a": [1]}}


def test_event_ids_increase_in_insertion_order_even_at_one_time(store: Store) -> None:
    for i in range(5):
        store.add_event("tick", "epark", i=i)  # the fake clock does not move
    evs = store.events()
    assert [e.detail["i"] for e in evs] == [0, 1, 2, 3, 4]
    assert [e.id for e in evs] == sorted(e.id for e in evs)


# -- booking requests -----------------------------------------------------------------------------


def test_booking_requests_add_list_status_count(store: Store, clock: Any) -> None:
    a = store.add_request("epark", {"name": "山田 花子", "phone": "090-1111-2222"})
    clock.advance(60)
    b = store.add_request("ebisu", {"name": "B"})
    clock.advance(60)
    c = store.add_request("epark", {"name": "C"})
    assert a < b < c
    got = store.request(a)
    assert got is not None and (got.portal, got.created, got.status, got.updated, got.data) == (
        "epark",
        T0,
        "new",
        None,
        {"name": "山田 花子", "phone": "090-1111-2222"},
    )
    assert store.request(9999) is None
    assert [r.id for r in store.requests()] == [c, b, a]  # newest first
    assert [r.id for r in store.requests(portal="epark")] == [c, a]
    assert [r.id for r in store.requests(limit=1)] == [c]
    clock.advance(30)
    assert store.set_request_status(a, "contacted") is True
    assert store.set_request_status(9999, "booked") is False
    got = store.request(a)
    assert got is not None and (got.status, got.updated) == ("contacted", T0 + 150)
    assert [r.id for r in store.requests(status="new")] == [c, b]
    assert [r.id for r in store.requests(status="contacted", portal="epark")] == [a]
    assert (store.count_requests(), store.count_requests("epark"), store.count_requests("none")) == (3, 2, 0)


@pytest.mark.parametrize("status", REQUEST_STATUSES)
def test_every_request_status_is_accepted(store: Store, status: str) -> None:
    rid = store.add_request("epark", {})
    assert store.set_request_status(rid, status) is True
    got = store.request(rid)
    assert got is not None and got.status == status


def test_bad_request_status_is_a_store_error(store: Store) -> None:
    rid = store.add_request("epark", {})
    with pytest.raises(StoreError) as info:
        store.set_request_status(rid, "done")
    assert str(info.value) == "unknown status 'done' (use new, contacted, booked, cancelled)"
    got = store.request(rid)
    assert got is not None and got.status == "new"


def test_purge_removes_only_older_requests(store: Store, clock: Any) -> None:
    old = [store.add_request("epark", {"i": i}) for i in range(3)]
    clock.advance(100)
    new = store.add_request("epark", {"i": 3})
    assert store.purge_requests(older_than=T0 + 100) == 3
    assert [r.id for r in store.requests()] == [new]
    assert all(store.request(i) is None for i in old)
    assert store.purge_requests(older_than=T0 + 100) == 0


# -- concurrency ----------------------------------------------------------------------------------


def test_concurrent_writers_in_two_processes_and_threads_do_not_error(db_path: Path) -> None:
    """Two Store instances (service + CLI), each used by two threads: busy_timeout serialises them."""
    stores = [Store(db_path), Store(db_path)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker(i: int) -> None:
        s = stores[i % 2]
        try:
            barrier.wait()
            for n in range(40):
                s.add_event("tick", f"p{i}", n=n)
                s.set_failover(f"p{i % 2}", n % 2 == 0, "race")
                s.add_request(f"p{i}", {"n": n})
                s.claim(f"w{i}-{n}")
                s.events(portal=f"p{i}", limit=5)
        except BaseException as err:  # collected: an exception in a thread would not fail the test
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    try:
        assert errors == []
        assert not any(t.is_alive() for t in threads)
        assert len(stores[0].events(kinds=("tick",))) == 160
        assert stores[1].count_requests() == 160
        assert all(stores[0].claimed(f"w{i}-39") for i in range(4))
    finally:
        for s in stores:
            s.close()


def test_two_stores_opening_a_fresh_file_at_once_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    opened, errors = open_at_once(path)
    try:
        assert errors == [] and len(opened) == 3
        assert all(s.schema_version() == SCHEMA_VERSION for s in opened)
    finally:
        for s in opened:
            s.close()


def test_purge_audit_deletes_old_events_and_claims_only(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    store = Store(tmp_path / "s.db", clock=lambda: now[0])
    store.add_event("failover", "p", to="on")
    store.claim("notify:p:1:staff:outage")
    now[0] += 400 * 86400
    store.add_event("failover", "p", to="off")
    store.claim("notify:p:2:staff:outage")
    assert store.purge_audit(now[0] - 86400) == 2
    assert [e.detail["to"] for e in store.events()] == ["off"]
    assert store.claimed("notify:p:2:staff:outage") and not store.claimed("notify:p:1:staff:outage")
