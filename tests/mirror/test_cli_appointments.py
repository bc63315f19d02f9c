"""``portalguard appointments [DAY] | sync | export`` against the simulator's admin screen and a real
store file: what the front desk prints, the JSON other tools read, the owner-only CSV."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from failover.cli import main
from failover.crypto import DataKey
from failover.fakes.portal_simulator import PortalSimulator
from tests.mirror.conftest import TZ

pytestmark = pytest.mark.anyio
TODAY = dt.datetime.now(TZ).date()
TOMORROW = TODAY + dt.timedelta(days=1)


def write_config(tmp_path: Path, sim: PortalSimulator, **mirror: Any) -> Path:
    admin = {**sim.endpoints_config()["admin"], "expect": {"not_contains": ["メンテナンス中"]}}
    doc: dict[str, Any] = {
        "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
        "store": str(tmp_path / "pg.db"),
        "data_key": "${PORTALGUARD_DATA_KEY}",
        "portals": {
            "sakura": {
                "endpoints": {"public": sim.endpoints_config()["public"], "admin": admin},
                "timeout": "2s",
                "book_url": sim.url("public"),
                "mirror": sim.mirror_config("admin_html", days_ahead=3, **mirror),
            }
        },
    }
    path = tmp_path / "portalguard.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


async def cli(config: Path, *args: str) -> Result:
    # The commands run asyncio.run() themselves: a thread without a running loop.
    return await asyncio.to_thread(CliRunner().invoke, main, ["-c", str(config), *args])


@pytest.fixture
def data_key(monkeypatch: pytest.MonkeyPatch) -> str:
    text, _ = DataKey.generate()
    monkeypatch.setenv("PORTALGUARD_DATA_KEY", text)
    return text


@pytest.fixture
async def sim() -> Any:
    async with PortalSimulator(page_size=2) as simulator:
        book = simulator.book
        book.add(f"{TODAY}T10:00", "山田 太郎", phone="090-0000-1234", menu="検診", id="R1")
        book.add(f"{TODAY}T09:00", "佐藤 花子", end=f"{TODAY}T09:45", phone="090-0000-5678", id="R2")
        book.add(f"{TODAY}T11:30", "鈴木 一郎", id="R3", cancelled=True)
        book.add(f"{TOMORROW}T15:00", "田中 次郎", phone="090-0000-9999", id="R4")
        yield simulator


async def test_sync_prints_each_day_then_the_day_shows_by_time(tmp_path: Path, sim, data_key: str) -> None:
    cfg = write_config(tmp_path, sim)
    r = await cli(cfg, "appointments", "sync")
    assert r.exit_code == 0, r.output
    assert f"{TODAY}: +3 ~0 -0" in r.output and f"{TOMORROW}: +1 ~0 -0" in r.output
    assert "total: +4 added, ~0 updated, -0 cancelled" in r.output

    r = await cli(cfg, "appointments")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith("sakura: last synced ")
    assert lines[1].split() == ["time", "name", "phone", "menu", "status"]
    body = lines[3:]
    assert [line.split()[0] for line in body] == ["09:00-09:45", "10:00-10:30", "11:30-12:00"]
    assert "佐藤 花子" in body[0] and "090-0000-5678" in body[0] and "検診" in body[1]
    assert "cancelled" in body[2]

    sim.book.remove("R1")
    r = await cli(cfg, "appointments", "sync")
    assert r.exit_code == 0 and f"{TODAY}: +0 ~0 -1" in r.output, r.output
    r = await cli(cfg, "appointments", "today")
    assert "cancelled (gone from the list" in next(line for line in r.output.splitlines() if "山田" in line)


async def test_json_gives_iso_times_with_the_clinic_offset(tmp_path: Path, sim, data_key: str) -> None:
    cfg = write_config(tmp_path, sim)
    assert (await cli(cfg, "appointments", "sync")).exit_code == 0
    r = await cli(cfg, "appointments", "tomorrow", "--json")
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.output)
    assert {k: row[k] for k in ("portal", "id", "start", "end", "name", "phone", "status", "source")} == {
        "portal": "sakura",
        "id": "R4",
        "start": f"{TOMORROW}T15:00+09:00",
        "end": f"{TOMORROW}T15:30+09:00",
        "name": "田中 次郎",
        "phone": "090-0000-9999",
        "status": "booked",
        "source": "admin_html",
    }
    assert row["synced_at"].endswith("+09:00")
    r = await cli(cfg, "appointments", TODAY.isoformat(), "--json", "--portal", "sakura")
    assert [a["id"] for a in json.loads(r.output)] == ["R2", "R1", "R3"]


async def test_a_failing_day_exits_1_and_keeps_the_copy(tmp_path: Path, sim, data_key: str) -> None:
    cfg = write_config(tmp_path, sim)
    assert (await cli(cfg, "appointments", "sync")).exit_code == 0
    sim.set_reservations_mode("layout_changed", sources=("html",))
    r = await cli(cfg, "appointments", "sync")
    assert r.exit_code == 1
    # The two days with bookings fail; the empty day still shows 「予約はありません」 and is accepted.
    assert r.output.count("FAILED parse") == 2 and f"{TODAY + dt.timedelta(days=2)}: +0 ~0 -0" in r.output, r.output
    assert "山田" not in r.output and "090-" not in r.output
    shown = json.loads((await cli(cfg, "appointments", "--json")).output)
    assert [a["id"] for a in shown] == ["R2", "R1", "R3"]
    status = await cli(cfg, "status")
    assert "mirror: 3 booked appointment(s) from today on" in status.output
    assert "last sync FAILED" in status.output, status.output


async def test_export_writes_an_owner_only_csv_with_bom(tmp_path: Path, sim, data_key: str) -> None:
    cfg = write_config(tmp_path, sim)
    assert (await cli(cfg, "appointments", "sync")).exit_code == 0
    out = tmp_path / "appointments.csv"
    out.write_text("old", encoding="utf-8")
    os.chmod(out, 0o644)
    r = await cli(cfg, "appointments", "export", "--csv", str(out), "--from", TODAY.isoformat())
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [row["id"] for row in rows] == ["R2", "R1", "R3", "R4"]
    assert rows[0]["start"] == f"{TODAY}T09:00+09:00" and rows[2]["status"] == "cancelled"
    r = await cli(cfg, "appointments", "export", "--csv", str(out), "--from", "2026-13-01")
    assert r.exit_code == 2 and "not a day" in r.output


async def test_bad_input_and_a_missing_key_say_what_to_do(tmp_path: Path, sim, monkeypatch) -> None:
    text, _ = DataKey.generate()
    monkeypatch.setenv("PORTALGUARD_DATA_KEY", text)
    cfg = write_config(tmp_path, sim)
    r = await cli(cfg, "appointments", "yesterday-ish")
    assert r.exit_code == 2 and "is not a day (use today, tomorrow or 2026-12-02)" in r.output
    r = await cli(cfg, "appointments", "--portal", "nope")
    assert r.exit_code == 2 and "unknown portal 'nope'" in r.output
    assert (await cli(cfg, "appointments", "sync")).exit_code == 0
    monkeypatch.delenv("PORTALGUARD_DATA_KEY")
    r = await cli(cfg, "appointments")
    assert r.exit_code == 2 and "data_key" in r.output and "山田" not in r.output, r.output


async def test_help_explains_the_commands(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["appointments", "--help"])
    assert r.exit_code == 0
    for text in ("portalguard appointments [today|tomorrow|YYYY-MM-DD]", "sync", "export"):
        assert text in r.output
