"""``ReadOnlyStore``: the reads of ``StoreReads`` over sqlite3 alone give what ``Store`` gives, on the
same file, and it opens only a store at the newest revision (else the caller opens a ``Store``)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from failover.store import ActionRow, EndpointRow, ReadOnlyStore, Store, StoreError
from failover.store import schema as t

T0 = 1_800_000_000.0
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[Store]:
    """A store holding a row of every kind the reads return, and rows they must leave out."""
    store = Store(tmp_path / "pg.db", lambda: T0)
    store.set_failover("epark", True, "public: http_status (HTTP 503)")
    store.set_verdict("epark", "down", T0 - 60)
    store.put_endpoint(EndpointRow("epark", "public", False, 503, "http_status", "HTTP 503 「混雑」", T0 - 60, T0))
    store.put_endpoint(EndpointRow("epark", "admin", True, 200, None, "", T0 - 600, T0))
    store.put_action(ActionRow("epark", "page", "on", "on", None, False, 1, 0.0, T0 - 30, None))
    store.put_action(ActionRow("epark", "ads", "on", "unknown", "quota", True, 3, T0 + 60, None, None, T0 - 20))
    store.set_override("epark", "on", "電話が鳴らない", T0 + 3600)
    store.set_override("other", "off", "expired", T0 - 1)
    store.add_maintenance("epark", T0 - 100, T0 + 100, "suppress", "older")
    store.add_maintenance("epark", T0 - 50, T0 + 50, "failover", "newer")
    store.add_maintenance("epark", T0 + 500, T0 + 900, "suppress", "later")
    store.set_value("drill:epark", {"at": T0, "ok": False, "last_ok_at": None, "名": "値"})
    day = dt.date(2027, 1, 15)
    with store.engine.begin() as conn:
        conn.execute(
            t.mirror_sync.insert().values(
                portal="epark", last_success=T0 - 5, last_attempt=T0, last_error_kind="parse", last_error="row 3"
            )
        )
        for i, (on, cancelled) in enumerate([(day, False), (day, True), (day - dt.timedelta(days=1), False)]):
            conn.execute(
                t.appointments.insert().values(
                    portal="epark", id=f"r{i}", day=on.isoformat(), start=T0, name="x", phone="x", menu="x",
                    cancelled=cancelled, source="admin_html", first_seen=T0, synced_at=T0,
                )
            )  # fmt: skip
        for folder in ("b", "a"):
            conn.execute(t.mirror_mail_state.insert().values(portal="epark", folder=folder, uidvalidity=7, last_uid=42))
        conn.execute(
            t.mirror_mail_unread.insert().values(
                portal="epark", key="k", received=T0, subject="x", reason="template", seen_at=T0
            )
        )
    yield store
    store.close()


def reads(store: Any) -> dict[str, Any]:
    """Every read of StoreReads, for portals with and without rows."""
    day = dt.date(2027, 1, 15)
    out: dict[str, Any] = {}
    for pid in ("epark", "other", "none"):
        out[pid] = (
            store.portal(pid),
            store.endpoints(pid),
            store.actions(pid),
            store.override(pid, T0),
            store.override(pid),
            store.active_maintenance(pid, T0),
            store.active_maintenance(pid, T0 + 200),
            store.mirror_state(pid, day),
            store.mail_state(pid),
            store.mail_state(pid, "b"),
            store.value(f"drill:{pid}", "absent"),
        )
    return out


def test_the_read_only_store_reads_what_the_store_reads(filled: Store) -> None:
    ro = ReadOnlyStore.open(filled.path, lambda: T0)
    assert ro is not None
    try:
        got, want = reads(ro), reads(filled)
    finally:
        ro.close()
    assert got == want
    assert want["epark"][0].failover is True and want["epark"][2][0].permanent is True  # flags are bools
    assert type(got["epark"][0].failover) is bool and type(got["epark"][0].page_on) is bool
    assert want["epark"][5].reason == "newer" and want["epark"][6] is None
    assert want["epark"][7].booked == 1 and want["epark"][8].folder == "a" and want["epark"][8].unread == 1
    assert want["epark"][10]["名"] == "値" and want["none"][10] == "absent"


def test_it_opens_only_an_existing_store_at_the_newest_revision(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    assert ReadOnlyStore.open(missing, lambda: T0) is None
    assert not missing.exists()  # never created: a Store creates a store, with its schema
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert ReadOnlyStore.open(empty, lambda: T0) is None
    Store(tmp_path / "old.db").close()
    with sqlite3.connect(tmp_path / "old.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '0005'")
    assert ReadOnlyStore.open(tmp_path / "old.db", lambda: T0) is None  # a Store migrates it
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    assert ReadOnlyStore.open(tmp_path / "junk.db", lambda: T0) is None  # a Store says why


def test_a_failing_read_is_a_store_error_naming_the_store(filled: Store) -> None:
    ro = ReadOnlyStore.open(filled.path, lambda: T0)
    assert ro is not None
    with filled.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE mirror_sync")
    with pytest.raises(StoreError, match=rf"^store {filled.path}: no such table: mirror_sync$"):
        ro.mirror_state("epark", dt.date(2027, 1, 15))
    ro.close()


def test_the_read_only_store_imports_no_sqlalchemy(filled: Store) -> None:
    code = (
        "import sys\nfrom failover.store import ReadOnlyStore\n"
        f"s = ReadOnlyStore.open({filled.path!r}, lambda: 0.0)\nassert s.portal('epark').failover is True\n"
        "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'alembic', 'pydantic'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
