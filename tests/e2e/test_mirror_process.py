"""The appointment mirror in a real ``portalguard run`` process: it copies the simulator's book at start,
``portalguard appointments sync`` runs beside it (several at once), staff read the copy on
``/staff/appointments`` while the portal is down, and after ``kill -9`` the CLI still shows it.
Nothing personal reaches the service's log. All on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from failover.crypto import DataKey
from failover.fakes.portal_simulator import CANARY_PATH, PortalSimulator
from tests.e2e.test_run_process import until

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
BIN = Path(sys.executable).parent / "portalguard"
TZ = ZoneInfo("Asia/Tokyo")
STAFF = ("staff", "front-desk-password-42")
PATIENTS = ["山田 太郎", "佐藤 花子", "鈴木 一郎"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def sim() -> AsyncIterator[PortalSimulator]:
    today = dt.datetime.now(TZ).date()
    async with PortalSimulator(page_size=2) as simulator:
        for n, name in enumerate(PATIENTS):
            simulator.book.add(f"{today}T{10 + n}:00", name, phone=f"090-0000-12{n}0", id=f"R{n}")
        simulator.book.add(f"{today + dt.timedelta(days=1)}T09:00", "田中 次郎", id="R9")
        yield simulator


async def test_the_copy_is_kept_beside_run_and_read_while_the_portal_is_down(tmp_path: Path, sim) -> None:
    web = f"127.0.0.1:{free_port()}"
    admin = {**sim.endpoints_config()["admin"], "expect": {"not_contains": ["メンテナンス中"]}}
    doc = {
        "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
        "canaries": [sim.control_url + CANARY_PATH],
        "canary_interval": "1s",
        "store": str(tmp_path / "pg.db"),
        "data_key": "${PORTALGUARD_DATA_KEY}",
        "server": {"listen": web, "metrics_listen": f"127.0.0.1:{free_port()}"},
        "staff": {"username": STAFF[0], "password": STAFF[1]},
        "actions": {"page": {"type": "fallback_page"}},
        "portals": {
            "sakura": {
                "endpoints": {"public": sim.endpoints_config()["public"], "admin": admin},
                "interval": "1s",
                "timeout": "800ms",
                "down_after": {"failures": 2, "seconds": "1s"},
                "book_url": sim.url("public"),
                "actions": ["page"],
                "mirror": sim.mirror_config("admin_html", every="1m", days_ahead=3),
            }
        },
    }
    config = tmp_path / "portalguard.yaml"
    config.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    env = {**os.environ, "PORTALGUARD_DATA_KEY": DataKey.generate()[0]}
    log_path = tmp_path / "run.log"

    async def cli(*args: str) -> tuple[int, str]:
        p = await asyncio.create_subprocess_exec(
            str(BIN),
            "-c",
            str(config),
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(p.communicate(), 60)
        return p.returncode or 0, out.decode()

    async def mirror_state() -> dict | None:
        code, out = await cli("status", "--json")
        return json.loads(out)["portals"]["sakura"]["mirror"] if code == 0 else None

    with log_path.open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            str(BIN), "-c", str(config), "run", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log
        )
        try:
            state = await until(
                lambda: _synced(mirror_state()), 40, "the service's first sync of the mirror at start", every=0.5
            )
            assert state["booked"] == 4

            # The CLI beside the running service, three at once: every sync succeeds, nothing doubles.
            sim.book.cancel("R1")
            results = await asyncio.gather(*(cli("appointments", "sync") for _ in range(3)))
            assert all(code == 0 for code, _ in results), results
            code, out = await cli("appointments", "today", "--json")
            shown = {a["id"]: a["status"] for a in json.loads(out)}
            assert shown == {"R0": "booked", "R1": "cancelled", "R2": "booked"}, out

            # The portal dies, public and admin alike: the copy is what staff read now.
            sim.set_mode("error500")
            async with httpx.AsyncClient(auth=STAFF) as client:

                async def failover_on() -> bool:
                    return (await client.get(f"http://{web}/book/sakura")).status_code == 200

                await until(failover_on, 30, "the fallback page while the portal is down")
                page = await client.get(f"http://{web}/staff/appointments")
            assert page.status_code == 200 and "山田 太郎" in page.text and "鈴木 一郎" in page.text
            assert "予約 2件（キャンセル 1件）" in page.text

            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    # The service is dead and so is the portal: the copy stays readable from the CLI.
    code, out = await cli("appointments", "today")
    assert code == 0 and "山田 太郎" in out and "佐藤 花子" in out, out
    logged = log_path.read_text(encoding="utf-8", errors="replace")
    assert "mirror sakura synced" in logged
    for name in [*PATIENTS, "田中 次郎"]:
        for part in name.split():
            assert part not in logged, f"patient data in the service's log: {part}"
    assert "090-0000" not in logged
    raw = store_bytes(tmp_path)
    assert "山田".encode() not in raw and b"090-0000-1200" not in raw


async def _synced(state: object) -> dict | None:
    found = await state  # type: ignore[misc]
    return found if found and found["last_success"] else None


def store_bytes(directory: Path) -> bytes:
    """The store file and its WAL, as a thief with a copy of the disk would read them."""
    return b"".join(p.read_bytes() for p in directory.glob("pg.db*"))
