"""Stores made by the pre-Alembic portalguard migrate in place, nothing lost; new stores get the same
schema from Alembic; ``schema.py`` is what the migrations build; a too-new store is refused.

Old stores are built and filled by ``legacy_store_v3`` (a frozen copy of the code that made them).
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from failover.store import SCHEMA_VERSION, ActionRow, EndpointRow, Store, StoreError
from failover.store.migrations import BASELINE_REVISION, HEAD_REVISION, alembic_config, legacy
from failover.store.schema import LEGACY_READABLE_VERSION, metadata
from tests.failover import legacy_store_v3 as old
from tests.failover.store_support import open_at_once

T0 = 1_800_000_000.0
LEGACY_TABLES = (
    "portal_state",
    "action_state",
    "overrides",
    "maintenance",
    "events",
    "claims",
    "booking_requests",
    "endpoint_state",
    "kv",
)


def raw_rows(path: Path, tables: tuple[str, ...] = LEGACY_TABLES) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, by column name, in primary key order: what must survive."""
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return {name: sorted((dict(r) for r in db.execute(f"SELECT * FROM {name}")), key=repr) for name in tables}


def pragma(path: Path, name: str) -> Any:
    with sqlite3.connect(path) as db:
        return db.execute(f"PRAGMA {name}").fetchone()[0]


def has_table(path: Path, name: str) -> bool:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None


def fill_with_old_code(path: Path) -> None:
    """A version 3 store as the old portalguard left it: every table holds rows, written by its code."""
    now = [T0]
    s = old.Store(path, clock=lambda: now[0])
    try:
        s.set_failover("epark", True, "public: http_status (HTTP 503)")
        now[0] += 600
        s.set_failover("epark", False, "portal up")
        s.set_failover("ebisu", True, "admin: timeout")
        s.set_verdict("ebisu", "down", T0 + 5)
        s.set_page("ebisu", True)
        s.put_endpoint(old.EndpointRow("ebisu", "public", False, 503, "http_status", "HTTP 503", T0, T0 + 15))
        s.put_endpoint(old.EndpointRow("", "canary-1", True, 204, None, "", T0, T0 + 15))
        s.set_value("heartbeat", {"at": T0, "note": "稼働中"})
        s.put_action(old.ActionRow("ebisu", "ads", "on", "off", "UNAVAILABLE", True, 2, T0 + 30, None, None, T0))
        s.put_action(old.ActionRow("ebisu", "page", "on", "on", None, False, 0, 0.0, T0, None))
        s.set_override("ebisu", "on", "ベンダー作業", expires=T0 + 3600)
        s.add_maintenance("epark", T0 + 100, T0 + 200, "suppress", "定期メンテナンス")
        s.add_maintenance("ebisu", T0 - 200, T0 - 100, "failover", "")
        s.add_event("action_error", "ebisu", "ads", error="予算超過", budget=5000.5)
        s.claim("notify:ebisu:1:staff:outage")
        first = s.add_request("ebisu", {"name": "山田 花子", "phone": "090-1111-2222"})
        s.add_request("ebisu", {"name": "B", "drill": True})
        s.set_request_status(first, "contacted")
        purged = s.add_request("epark", {"name": "gone"})  # its number must never be handed out again
    finally:
        s.close()
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM booking_requests WHERE id=?", (purged,))
    db.close()


def test_a_version_3_store_opens_with_every_row_intact(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    fill_with_old_code(path)
    before = raw_rows(path)
    assert all(before[name] for name in LEGACY_TABLES), "the fixture leaves a table empty"
    old_view = old.Store(path)
    expected = _every_read(old_view)
    old_view.close()

    s = Store(path)
    try:
        assert raw_rows(path) == before
        assert _every_read(s) == expected  # the same rows, through the new code
        assert s.schema_version() == SCHEMA_VERSION
        assert s.add_request("epark", {"name": "next"}) == 4  # AUTOINCREMENT kept: #3 is not reused
    finally:
        s.close()
    assert pragma(path, "user_version") == LEGACY_READABLE_VERSION  # 0004 only adds a table the old code ignores


def _every_read(s: Any) -> dict[str, Any]:
    """Every row, through every read method: dataclasses compared by their fields."""

    def fields(rows: Any) -> Any:
        if isinstance(rows, list):
            return [fields(r) for r in rows]
        return None if rows is None else {f: getattr(rows, f) for f in rows.__slots__}

    return {
        "portals": [fields(s.portal(p)) for p in ("epark", "ebisu", "none")],
        "endpoints": [fields(s.endpoints(p)) for p in ("ebisu", "")],
        "value": s.value("heartbeat"),
        "actions": fields(s.actions("ebisu")),
        "override": fields(s.override("ebisu", now=T0)),
        "maintenance": fields(s.maintenance(include_past=True)),
        "events": fields(s.events()),
        "claimed": s.claimed("notify:ebisu:1:staff:outage"),
        "requests": fields(s.requests()),
    }


def _version_2_store(path: Path) -> None:
    """A store as schema version 2 left it (the legacy SQL), every table holding a row."""
    with sqlite3.connect(path, isolation_level=None) as db:
        for v in (1, 2):
            for statement in old._split_sql(old._MIGRATIONS[v]):
                db.execute(statement)
        db.execute("PRAGMA user_version=2")
        for sql, args in [
            (
                "INSERT INTO portal_state VALUES (?,?,?,?,?,?,?,?)",
                ("epark", 1, 4, T0, "public: timeout", "down", T0, 1),
            ),
            (
                "INSERT INTO action_state VALUES (?,?,?,?,?,?,?,?,?,?)",
                ("epark", "ads", "on", "on", None, 0, 1, 0.0, T0, T0),
            ),
            ("INSERT INTO overrides VALUES (?,?,?,?,?)", ("epark", "off", "staff", T0, None)),
            ("INSERT INTO maintenance VALUES (?,?,?,?,?,?,?)", (1, "epark", T0, T0 + 60, "suppress", "x", T0)),
            ("INSERT INTO events VALUES (?,?,?,?,?,?)", (1, T0, "epark", "failover", None, '{"to": "on"}')),
            ("INSERT INTO claims VALUES (?,?)", ("booking:1", T0)),
            ("INSERT INTO booking_requests VALUES (?,?,?,?,?,?)", (1, "epark", T0, "new", None, '{"name": "佐藤"}')),
            (
                "INSERT INTO endpoint_state VALUES (?,?,?,?,?,?,?,?)",
                ("epark", "public", 0, None, "timeout", "", T0, T0),
            ),
            ("INSERT INTO kv VALUES (?,?)", ("network_down", "false")),
        ]:
            db.execute(sql, args)
    db.close()


def test_a_version_2_store_opens_with_every_row_intact(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    _version_2_store(path)
    before = raw_rows(path)
    s = Store(path)
    try:
        after = raw_rows(path)
        added = {"portal_state": ("outage_since", "outage_reason"), "action_state": ("failing_since",)}
        for name in LEGACY_TABLES:
            kept = [{k: v for k, v in row.items() if k not in added.get(name, ())} for row in after[name]]
            assert kept == before[name], name
        row = s.portal("epark")
        assert (row.failover, row.incident, row.page_on, row.outage_since, row.outage_reason) == (
            True,
            4,
            True,
            T0,
            "public: timeout",
        )
        assert s.action("epark", "ads") == ActionRow("epark", "ads", "on", "on", None, False, 1, 0.0, T0, T0, None)
        assert s.endpoints("epark") == [EndpointRow("epark", "public", False, None, "timeout", "", T0, T0)]
        assert s.request(1).data == {"name": "佐藤"}  # type: ignore[union-attr]
        assert s.value("network_down") is False
    finally:
        s.close()


def test_a_failed_migration_leaves_the_old_store_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "v2.db"
    _version_2_store(path)
    before = raw_rows(path)

    def broken_stamp(*_args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("alembic.command.stamp", broken_stamp)
    with pytest.raises(RuntimeError, match="disk on fire"):
        Store(path)
    assert pragma(path, "user_version") == 2  # the legacy step to 3 was rolled back with the rest
    assert not has_table(path, "alembic_version")
    assert raw_rows(path) == before


def test_a_new_store_has_the_schema_of_a_migrated_old_one(tmp_path: Path) -> None:
    old.Store(tmp_path / "old.db").close()
    Store(tmp_path / "old.db").close()
    Store(tmp_path / "new.db").close()
    assert _schema(tmp_path / "new.db") == _schema(tmp_path / "old.db")
    assert has_table(tmp_path / "new.db", "sqlite_sequence")  # AUTOINCREMENT, as the old store has


def _schema(path: Path) -> dict[str, Any]:
    """Tables as SQLite sees them: columns (type affinity, NOT NULL, default, key), indexes, checks."""
    with sqlite3.connect(path) as db:
        out: dict[str, Any] = {}
        for name in LEGACY_TABLES:
            # A key column is NOT NULL in new stores; old ones left it implicit (SQLite then allows NULL
            # keys except INTEGER PRIMARY KEY, and portalguard never wrote one): compared without it.
            columns = [
                (r[1], _affinity(r[2]), bool(r[3]) and not r[5], _default(r[4]), r[5])
                for r in db.execute(f"PRAGMA table_info({name})")
            ]
            indexes = sorted(
                (r[1], tuple(c[2] for c in db.execute(f"PRAGMA index_info({r[1]})")))
                for r in db.execute(f"PRAGMA index_list({name})")
                if r[3] == "c"  # created by CREATE INDEX (not the primary key's own)
            )
            sql = db.execute("SELECT sql FROM sqlite_master WHERE name=?", (name,)).fetchone()[0]
            checks = sorted(
                (column, values.replace(" ", "")) for column, values in re.findall(r"CHECK \((\w+) IN \(([^)]*)\)", sql)
            )
            out[name] = {"columns": sorted(columns), "indexes": indexes, "checks": checks}
        return out


def _affinity(declared: str) -> str:
    # https://sqlite.org/datatype3.html#determination_of_column_affinity
    t = declared.upper()
    if "INT" in t or t == "BOOLEAN":  # flags: BOOLEAN (new) or INTEGER (old); both hold 0 and 1
        return "INTEGER"
    if "INT" in t:
        return "INTEGER"
    if any(s in t for s in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if any(s in t for s in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def _default(value: str | None) -> str | None:
    return None if value is None else value.strip("()")


def test_schema_py_is_what_the_migrations_build(tmp_path: Path) -> None:
    Store(tmp_path / "new.db").close()
    engine = create_engine(f"sqlite:///{tmp_path / 'new.db'}")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    engine.dispose()
    assert diff == []


def test_revisions_are_numbered_and_the_newest_is_schema_version() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    revisions = list(script.walk_revisions())
    assert script.get_current_head() == HEAD_REVISION == f"{SCHEMA_VERSION:04d}"
    assert all(r.revision.isdigit() and len(r.revision) == 4 for r in revisions)
    assert revisions[-1].revision == BASELINE_REVISION and revisions[-1].down_revision is None


def test_the_legacy_sql_is_the_old_code_s(tmp_path: Path) -> None:
    assert legacy.MIGRATIONS == old._MIGRATIONS
    assert legacy.LEGACY_VERSION == old.SCHEMA_VERSION


def test_a_store_at_an_unknown_revision_asks_to_upgrade_and_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num='0042'")
    db.close()
    before = raw_rows(path, (*LEGACY_TABLES, "alembic_version"))
    with pytest.raises(StoreError) as info:
        Store(path)
    assert str(info.value) == (
        f"store {path} has schema 42, newer than this portalguard ({SCHEMA_VERSION}): upgrade portalguard"
    )
    assert raw_rows(path, (*LEGACY_TABLES, "alembic_version")) == before


def test_the_old_portalguard_still_opens_a_new_store(tmp_path: Path) -> None:
    """Going back one release must not misread the store: user_version tells the old code the schema."""
    path = tmp_path / "s.db"
    s = Store(path, clock=lambda: T0)
    s.add_request("epark", {"name": "山田"})
    s.set_failover("epark", True, "x")
    s.close()
    back = old.Store(path)
    try:
        assert back.requests()[0].data == {"name": "山田"}
        assert back.portal("epark").failover is True
    finally:
        back.close()


def test_opening_a_current_store_does_not_wait_for_the_write_lock(tmp_path: Path) -> None:
    """The CLI beside a writer holding the lock (the service, a backup): open and read at once."""
    path = tmp_path / "s.db"
    Store(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        s = Store(path)
        assert s.portal("epark").incident == 0 and s.count_requests() == 0
        assert time.monotonic() - started < 2.0  # the busy timeout is 10 s
        s.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_old_stores_opened_by_two_processes_at_once_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    _version_2_store(path)
    opened, errors = open_at_once(path)
    try:
        assert errors == [] and len(opened) == 3
        assert opened[0].portal("epark").incident == 4
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD_REVISION,)]
    finally:
        for s in opened:
            s.close()
