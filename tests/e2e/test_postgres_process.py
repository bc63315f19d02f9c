"""``portalguard run`` on a PostgreSQL store (a real server, ``tests/pg_support.py``): an outage and
recovery with kill -9 in the middle, every CLI command on the same database, and the service lock —
a second run on the same database exits 2 naming the first, whatever its host."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from failover.fakes.google_ads_server import FakeGoogleAds
from failover.fakes.portal_simulator import PortalSimulator
from failover.fakes.receivers import JsonReceiver
from failover.settings.model import default_site
from failover.sites import OUTAGE_TOLD_AFTER
from tests.e2e.ha_rig import stays
from tests.e2e.test_run_process import BIN, FORM, PORTAL, Rig, until
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
        titles = [r.json().get("title") for r in rig.staff.requests]
        assert len(titles) == 1 and rig.hook_states() == ["failover"], titles

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
        f"another portalguard run of site {default_site()} (PID {rig.proc.pid} on host" in text
        and "already uses store postgresql://pg@" in text
    )
    rig.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(rig.proc.wait(), 30) == 0
    await rig.start()  # the lock went with the first process: a restart takes it


@pytest.fixture
async def own_server() -> AsyncIterator[PostgresServer]:
    """A server of this test's own: it is stopped and started again mid-test."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_postgresql_stopped_mid_outage_then_back(tmp_path: Path, own_server: PostgresServer) -> None:
    """Down: /book goes on from memory, a booking request is refused with the phone number (never a
    false confirmation), /healthz names the database. Back: everything written, the recovery done once."""
    url = own_server.new_database()
    with FakeGoogleAds(campaigns={"111": ("PAUSED", 3000)}) as ads:
        async with PortalSimulator() as sim, JsonReceiver() as staff, JsonReceiver() as hook:
            rig = Rig(tmp_path, sim, ads, staff, hook)
            doc = yaml.safe_load(rig.config.read_text(encoding="utf-8"))
            doc["store"], doc["server"]["secret_file"] = url, str(tmp_path / "web.key")
            rig.config.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
            try:
                await _stop_and_start_the_database(rig, own_server)
            finally:
                if rig.proc and rig.proc.returncode is None:
                    await rig.kill9()


async def _stop_and_start_the_database(rig: Rig, server: PostgresServer) -> None:
    await rig.start()
    rig.sim.set_mode("error500", endpoints=("public",))
    await until(lambda: rig.converged(True), 30, "failover on")
    await rig.staff.wait_for(1, 10)
    server.halt()
    async with httpx.AsyncClient(timeout=15) as web:
        page = await web.get(f"http://{rig.web}/book/{PORTAL}")
        assert page.status_code == 200 and "<form" in page.text, "the fallback page, from memory"
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        sent = await web.post(f"http://{rig.web}/book/{PORTAL}/request", data={"csrf": csrf, **FORM})
        assert sent.status_code == 503 and 'href="tel:0312345678"' in sent.text.replace("-", "")
        assert "お電話でご予約ください" in sent.text

        async def unhealthy() -> bool:
            got = await web.get(f"http://{rig.web}/healthz")
            return got.status_code == 503 and "check that the database server runs" in got.text

        await until(unhealthy, 20, "/healthz names the database")
        metrics_at = yaml.safe_load(rig.config.read_text(encoding="utf-8"))["server"]["metrics_listen"]

        async def store_down() -> bool:  # what the StoreDown alert rule watches
            return "portalguard_store_up 0.0" in (await web.get(f"http://{metrics_at}/metrics")).text

        await until(store_down, 20, "portalguard_store_up 0 while PostgreSQL is down")

        # No one may claim anything while the database is down (several instances could not agree who
        # tells): no message now, StoreDown is the live signal; once it is back, one message says what
        # happened meanwhile.
        told_before = len(rig.staff.requests)
        await stays(lambda: len(rig.staff.requests) == told_before, OUTAGE_TOLD_AFTER + 1, "nobody told while down")
        server.start()

        def told() -> list[Any]:
            return [r for r in rig.staff.requests if "データベースに" in r.json().get("title", "")]

        await until(told, 30, "staff told, once the database is back, that it could not be reached")
        assert "切り替え・広告・通知は行っていません" in told()[0].json()["message"]
        await until(rig._healthy, 30, "/healthz healthy again once the database is back")

        async def store_up() -> bool:
            return "portalguard_store_up 1.0" in (await web.get(f"http://{metrics_at}/metrics")).text

        await until(store_up, 20, "portalguard_store_up 1 once the database is back")
        rig.sim.set_mode("healthy")
        await until(lambda: rig.converged(False), 40, "recovered after the database came back")
        assert rig.ads.status("111") == "PAUSED"
        assert rig.hook_states() == ["failover", "recovered"]
    assert len(told()) == 1
