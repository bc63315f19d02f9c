"""``portalguard run`` on a PostgreSQL store (a real server, ``tests/pg_support.py``): an outage and
recovery with kill -9 in the middle, every CLI command on the same database, and the service lock —
a second run on the same database exits 2 naming the first, whatever its host."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from failover.fakes.google_ads_server import FakeGoogleAds
from failover.fakes.portal_simulator import PortalSimulator
from failover.fakes.receivers import JsonReceiver
from tests.e2e.test_run_process import BIN, PORTAL, Rig, until
from tests.pg_support import PostgresServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
async def rig(tmp_path: Path, postgres: PostgresServer) -> AsyncIterator[Rig]:
    url = postgres.new_database()
    with FakeGoogleAds(campaigns={"111": ("PAUSED", 3000)}) as ads:
        async with PortalSimulator() as sim, JsonReceiver() as staff, JsonReceiver() as hook:
            r = Rig(tmp_path, sim, ads, staff, hook)
            doc = yaml.safe_load(r.config.read_text(encoding="utf-8"))
            doc["store"] = url
            doc["server"]["secret_file"] = str(tmp_path / "web.key")
            r.config.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
            try:
                yield r
            finally:
                if r.proc and r.proc.returncode is None:
                    await r.kill9()


async def test_an_outage_on_postgresql_survives_kill9_and_recovers_once(rig: Rig) -> None:
    await rig.start()
    await until(lambda: rig.converged(False), 30, "healthy portal converged OFF")
    rig.sim.set_mode("error500", endpoints=("public",))
    await until(lambda: rig.converged(True), 30, "all actions ON after the portal failed")
    assert rig.ads.status("111") == "ENABLED"
    await rig.staff.wait_for(1, 10)
    async with httpx.AsyncClient() as web:
        assert (await web.get(f"http://{rig.web}/book/{PORTAL}")).status_code == 200

        await rig.kill9()
        await rig.start()
        await asyncio.sleep(2)  # a few ticks of the restarted service: nothing may be re-sent
        assert len(rig.staff.requests) == 1 and rig.hook_states() == ["failover"]

        rig.sim.set_mode("healthy")
        await until(lambda: rig.converged(False), 30, "all actions OFF after recovery")
        assert rig.ads.status("111") == "PAUSED"
        await rig.staff.wait_for(2, 10)
        assert rig.hook_states() == ["failover", "recovered"]
    events = json.loads(await rig.cli("events", "--json"))
    assert any(e["kind"] == "failover" for e in events)
    report = await rig.cli("incident", "report", "--portal", PORTAL)
    assert "failover ON" in report and "failover OFF" in report
    log = rig.log_text()
    assert "-> down" in log and "@127.0.0.1" not in log.replace(rig.web, "")  # no store URL with its user


async def test_a_second_run_on_the_same_database_exits_2_naming_the_first(rig: Rig) -> None:
    await rig.start()
    assert rig.proc is not None
    second = await asyncio.create_subprocess_exec(
        str(BIN), "-c", str(rig.config), "run", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(second.communicate(), 15)
    assert second.returncode == 2
    text = err.decode()
    assert (
        f"another portalguard run (PID {rig.proc.pid} on host" in text and "already uses store postgresql://pg@" in text
    )
    rig.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(rig.proc.wait(), 30) == 0
    await rig.start()  # the lock went with the first process: a restart takes it
