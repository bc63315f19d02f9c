"""Booking requests sealed at rest once a data key is given: written sealed, stored plaintext rows
sealed in place at open (in batches, idempotent, also on a store of schema 0004 or a pre-Alembic
one), read back exactly as before; without the key, reading them fails naming ``data_key`` while
the rest of the store works; the pre-Alembic portalguard refuses a sealed store."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine

from failover.crypto import DataKey, is_sealed
from failover.store import SCHEMA_VERSION, DataKeyError, Store, StoreError
from failover.store import sync as store_sync
from failover.store.migrations import alembic_config
from failover.store.schema import SEALED_LEGACY_VERSION
from tests.failover import legacy_store_v3 as old
from tests.failover.test_store_migrations import LEGACY_TABLES, fill_with_old_code, raw_rows

T0 = 1_800_000_000.0
KEY_TEXT, KEY = DataKey.generate()
PATIENT = {
    "name": "Hanako Yamada",
    "phone": "09012345678",
    "email": "hanako@example.jp",
    "visit": "first",
    "preferred": [{"date": "2026-11-24", "time": "am"}],
    "reason": "歯が痛い",
    "lang": "ja",
}


def raw_data(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT data FROM booking_requests ORDER BY id")]


def raw_file(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


def fields(rows: Any) -> Any:
    return [{f: getattr(r, f) for f in r.__slots__} for r in rows]


def test_requests_are_written_sealed_and_read_as_before(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = Store(path, clock=lambda: T0, data_key=KEY)
    try:
        number = s.add_request("epark", PATIENT)
        s.add_request("epark", {"name": "B", "drill": True})
        assert s.request(number).data == PATIENT  # type: ignore[union-attr]
        assert [r.data for r in s.requests()] == [{"name": "B", "drill": True}, PATIENT]
        assert s.set_request_status(number, "contacted") and s.request(number).status == "contacted"  # type: ignore[union-attr]
        assert all(is_sealed(d) for d in raw_data(path))
    finally:
        s.close()
    raw = raw_file(path)
    for text in ("Hanako Yamada", "09012345678", "hanako@example.jp", "歯が痛い"):
        assert text.encode() not in raw


def test_plaintext_requests_are_sealed_in_place_when_a_key_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.db"
    plain = Store(path, clock=lambda: T0)
    numbers = [plain.add_request("epark", {**PATIENT, "n": n}) for n in range(7)]
    before = fields(plain.requests())
    plain.close()
    assert not any(is_sealed(d) for d in raw_data(path))

    batches: list[int] = []
    real_seal = store_sync.Store._seal_request
    monkeypatch.setattr(store_sync, "SEAL_BATCH", 3)
    monkeypatch.setattr(
        store_sync.Store, "_seal_request", lambda self, n, text: batches.append(n) or real_seal(self, n, text)
    )
    s = Store(path, data_key=KEY)
    try:
        assert batches == numbers  # 3 + 3 + 1, each row once
        assert fields(s.requests()) == before
        sealed = raw_data(path)
        assert all(is_sealed(d) for d in sealed)
        assert s.seal_plaintext_requests() == 0 and raw_data(path) == sealed  # idempotent
    finally:
        s.close()
    Store(path, data_key=KEY).close()
    assert raw_data(path) == sealed
    assert b"Hanako Yamada" not in raw_file(path)


def test_a_store_of_schema_0004_is_migrated_and_its_requests_sealed_nothing_lost(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = Store(path, clock=lambda: T0)  # written by this code without a key: the plaintext rows of 0004
    s.add_request("epark", PATIENT)
    s.set_failover("epark", True, "public: timeout")
    s.add_event("failover_on", "epark", reason="x")
    s.close()
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        config = alembic_config(conn)
        command.downgrade(config, "0004")
    engine.dispose()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0004",)]
        assert not db.execute("SELECT 1 FROM sqlite_master WHERE name='appointments'").fetchall()
    before = raw_rows(path)
    old_data = before["booking_requests"][0]["data"]

    s = Store(path, data_key=KEY)
    try:
        assert s.schema_version() == SCHEMA_VERSION == 8
        after = raw_rows(path)
        assert {k: v for k, v in after.items() if k != "booking_requests"} == {
            k: v for k, v in before.items() if k != "booking_requests"
        }
        (row,) = after["booking_requests"]
        assert is_sealed(row["data"]) and {**row, "data": old_data} == before["booking_requests"][0]
        assert s.requests()[0].data == PATIENT
        assert s.appointments(None, *(2 * [__import__("datetime").date(2026, 11, 23)])) == []
    finally:
        s.close()


def test_a_pre_alembic_store_opened_with_a_key_is_sealed_and_the_old_code_then_refuses_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    fill_with_old_code(path)
    view = old.Store(path)
    expected = [(r.id, r.data) for r in view.requests()]
    view.close()
    s = Store(path, data_key=KEY)
    try:
        assert [(r.id, r.data) for r in s.requests()] == expected
        assert all(is_sealed(d) for d in raw_data(path))
    finally:
        s.close()
    assert b"090-1111-2222" not in raw_file(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SEALED_LEGACY_VERSION
    with pytest.raises(old.StoreError, match="newer than this portalguard"):
        old.Store(path)
    Store(path).close()  # reopening (no key) keeps the mark
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SEALED_LEGACY_VERSION
    assert set(LEGACY_TABLES) <= set(raw_rows(path))


def test_without_the_key_requests_cannot_be_read_the_rest_works(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = Store(path, clock=lambda: T0, data_key=KEY)
    s.add_request("epark", PATIENT)
    s.close()
    keyless = Store(path, clock=lambda: T0)
    try:
        for read in (keyless.requests, lambda: keyless.request(1)):
            with pytest.raises(DataKeyError) as info:
                read()
            message = str(info.value)
            assert f"booking requests are sealed (key {KEY.key_id})" in message
            assert "set data_key: ${PORTALGUARD_DATA_KEY}" in message and KEY_TEXT not in message
        assert isinstance(info.value, StoreError)
        assert keyless.count_requests() == 1
        keyless.set_failover("epark", True, "x")
        keyless.add_event("tick")
        assert keyless.portal("epark").failover and [e.kind for e in keyless.events()] == ["tick"]
        keyless.add_request("epark", {"name": "while the key was missing"})  # plaintext: sealed at the next keyed open
    finally:
        keyless.close()
    s = Store(path, data_key=KEY)
    try:
        assert [r.data["name"] for r in s.requests()] == ["while the key was missing", "Hanako Yamada"]
        assert all(is_sealed(d) for d in raw_data(path))
    finally:
        s.close()


def test_another_key_is_named_by_its_id(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = Store(path, data_key=KEY)
    s.add_request("epark", PATIENT)
    s.close()
    other_text, other = DataKey.generate()
    s = Store(path, data_key=other)
    try:
        with pytest.raises(DataKeyError) as info:
            s.requests()
        assert f"sealed with key {KEY.key_id}; set the data_key it was written with" in str(info.value)
        assert KEY_TEXT not in str(info.value) and other_text not in str(info.value)
    finally:
        s.close()


def test_a_request_s_sealed_data_moved_to_another_request_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = Store(path, data_key=KEY)
    try:
        s.add_request("epark", PATIENT)
        s.add_request("epark", {"name": "other"})
        with sqlite3.connect(path) as db:
            db.execute("UPDATE booking_requests SET data=(SELECT data FROM booking_requests WHERE id=1) WHERE id=2")
        db.close()
        assert s.request(1).data == PATIENT  # type: ignore[union-attr]
        with pytest.raises(DataKeyError, match="moved from another row or column"):
            s.request(2)
    finally:
        s.close()
