"""``portalguard store migrate --from FILE --to postgresql://…``: a SQLite store with history,
booking requests (sealed) and the mirror copied into a real PostgreSQL database, every count
verified, ids kept (a new request continues the numbering), a target with data refused unless
``--replace``, a store a service holds refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from click.testing import CliRunner

from failover.cli import main as cli
from failover.crypto import DataKey
from failover.mirror.model import DayListing, Listed
from failover.store import ActionRow, ServiceLock, Store
from failover.store.copy import tables
from tests.pg_support import PostgresServer

TEXT, KEY = DataKey.generate()
T0 = 1_800_000_000.0
DAY = dt.date(2027, 1, 15)


def filled(path: Path) -> Store:
    s = Store(path, clock=lambda: T0, data_key=KEY)
    s.set_failover("epark", True, "public: timeout")
    s.set_page("epark", True)
    s.put_action(ActionRow("epark", "ads", "on", "on", None, False, 1, 0.0, T0, T0))
    s.set_override("epark", "on", "vendor call", T0 + 3600)
    s.add_maintenance("epark", T0 + 7200, T0 + 9000, "suppress", "vendor maintenance")
    s.add_event("failover", "epark", state="on")
    s.claim("outage:epark:1")
    for n in range(3):
        s.add_request("epark", {"name": f"患者{n}", "phone": "090-0000-0000"})
    s.set_value("heartbeat", T0)
    at = dt.datetime.combine(DAY, dt.time(10), ZoneInfo("Asia/Tokyo"))
    s.apply_mirror_day("epark", DayListing(DAY, (Listed("A1", at, None, "山田 太郎"),)), "ics", T0)
    s.record_mirror_sync("epark", T0, None, None)
    return s


def config(tmp_path: Path) -> Path:
    raw = {
        "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
        "data_key": TEXT,
        "store": str(tmp_path / "unused.db"),
        "portals": {
            "epark": {"endpoints": {"public": {"url": "https://x.example/"}}, "book_url": "https://x.example/b"}
        },
    }
    path = tmp_path / "portalguard.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def migrate(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["-c", str(config(tmp_path)), "store", "migrate", *args])
    return result.exit_code, result.output


def test_a_sqlite_store_goes_into_postgresql_whole(tmp_path: Path, postgres: PostgresServer) -> None:
    source = tmp_path / "portalguard.db"
    filled(source).close()
    url = postgres.new_database()
    code, out = migrate(tmp_path, "--from", str(source), "--to", url)
    assert code == 0, out
    assert out.splitlines()[0] == f"copying {source} into {url}"
    assert "  booking_requests: 3 row(s)" in out and "  events: " in out and "every count verified" in out
    src, dst = Store(source, data_key=KEY), Store(url, data_key=KEY, clock=lambda: T0 + 60)
    try:
        for table in tables():
            with src._read() as a, dst._read() as b:
                assert list(a.execute(table.select())) == list(b.execute(table.select())), table.name
        assert [r.data["name"] for r in dst.requests()] == ["患者2", "患者1", "患者0"]  # sealed, read back
        (appt,) = dst.appointments("epark", DAY, DAY)
        assert appt.name == "山田 太郎"
        assert dst.portal("epark").failover and dst.override("epark", T0) is not None
        assert dst.add_request("epark", {"name": "次の患者"}) == 4  # the numbering goes on
    finally:
        src.close()
        dst.close()


def test_a_target_with_data_is_refused_unless_replace(tmp_path: Path, postgres: PostgresServer) -> None:
    source = tmp_path / "portalguard.db"
    filled(source).close()
    url = postgres.new_database()
    other = Store(url)
    other.add_event("service", None, state="started")
    other.close()
    code, out = migrate(tmp_path, "--from", str(source), "--to", url)
    assert code == 2 and "already holds data (events): copy into an empty database, or add --replace" in out
    code, out = migrate(tmp_path, "--from", str(source), "--to", url, "--replace")
    assert code == 0, out
    check = Store(url)
    try:
        assert not [e for e in check.events() if e.kind == "service"]
    finally:
        check.close()


def test_a_store_a_service_holds_is_refused(tmp_path: Path, postgres: PostgresServer) -> None:
    source = tmp_path / "portalguard.db"
    filled(source).close()
    with ServiceLock(source):
        code, out = migrate(tmp_path, "--from", str(source), "--to", postgres.new_database())
    assert code == 2 and "already uses store" in out and "stop it first" in out


def test_the_same_store_twice_is_refused(tmp_path: Path) -> None:
    same = str(tmp_path / "portalguard.db")
    code, out = migrate(tmp_path, "--from", same, "--to", same)
    assert code == 2 and "--from and --to are the same store" in out


def test_status_on_postgresql_keeps_the_password_off_the_disk(
    tmp_path: Path, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres.new_database().replace("pg@", "pg:not-on-disk-0123@")  # trust auth: any password works
    cfg = config(tmp_path)
    raw = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    raw["store"], raw["server"] = url, {"secret_file": str(tmp_path / "web.key")}
    cfg.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for _ in range(2):
        result = CliRunner().invoke(cli, ["-c", str(cfg), "status"])
        assert result.exit_code == 0, result.output
        assert "not-on-disk-0123" not in result.output
    cached = [p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert all(b"not-on-disk-0123" not in data for data in cached)
