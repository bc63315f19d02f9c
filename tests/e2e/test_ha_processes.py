"""Two places, one decision (issue 12), with real processes: two (three) ``portalguard run`` with sites
``a`` (probes from 127.0.0.2) and ``b`` (127.0.0.3) on one real PostgreSQL database, one portal
simulator (which can fail for one client address only), the fake Google Ads API, staff and webhook
receivers (``tests/e2e/ha_rig.py``).

What is proved: one site's view alone never fails over; both → failover within a single instance's
time + 1 s; the leader killed (kill -9) or frozen (SIGSTOP past its lease) mid-outage → the other
takes over within lease + 2 s and no effect (staff message, webhook post, campaign mutation) happens
twice, also when the frozen one wakes up; PostgreSQL halted mid-outage → /book answers on both, nothing
is done until it is back, then everything reconciles once; a second instance of a site exits 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from failover.fakes.google_ads_server import FakeGoogleAds
from failover.fakes.portal_simulator import PortalSimulator
from failover.fakes.receivers import JsonReceiver
from tests.e2e.ha_rig import CAMPAIGN, LEASE, SINGLE_BOUND, STALE, HaRig, Instance, stays
from tests.e2e.test_run_process import PORTAL, until
from tests.pg_support import PostgresServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ON = {"outage messages": 1, "failover webhooks": 1, "ads enabled": 1}
ONCE_ON = {**ON, "recovered messages": 0, "possible duplicates": 0, "recovered webhooks": 0, "ads paused": 0}
ONCE_BOTH = {**ONCE_ON, "recovered messages": 1, "recovered webhooks": 1, "ads paused": 1}


@contextlib.asynccontextmanager
async def _rig(tmp: Path, store: str) -> AsyncIterator[HaRig]:
    with FakeGoogleAds(campaigns={CAMPAIGN: ("PAUSED", 3000)}) as ads:
        async with PortalSimulator() as sim, JsonReceiver() as staff, JsonReceiver() as hook:
            rig = HaRig(tmp, store, sim, ads, staff, hook)
            try:
                yield rig
            finally:
                await rig.close()
                logs = {i.site: i.log_text() for i in rig.instances}
                for site, text in logs.items():
                    assert "Traceback" not in text, f"site {site} logged a traceback:\n{text[-4000:]}"


@pytest.fixture
async def rig(tmp_path: Path, postgres: PostgresServer) -> AsyncIterator[HaRig]:
    async with _rig(tmp_path, postgres.new_database()) as r:
        yield r


@pytest.fixture
async def own_server() -> AsyncIterator[PostgresServer]:
    """A server of the test's own: it is halted and started again mid-test."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _two(rig: HaRig) -> tuple[Instance, Instance]:
    a, b = rig.add("a", "127.0.0.2"), rig.add("b", "127.0.0.3")
    await rig.start(a, b)  # one after the other: a is the first leader (the tests do not rely on it)
    await until(lambda: _both_alive(rig), 20, "status lists sites a and b alive with a leader")
    await until(lambda: rig.converged(False), 30, "healthy portal converged OFF")
    return a, b


async def _both_alive(rig: HaRig) -> bool:
    s = await rig.status()
    sites = s.get("sites") or {}
    return s["service"]["leader"] in ("a", "b") and all(sites.get(n, {}).get("alive") for n in ("a", "b"))


async def _leader_and_follower(rig: HaRig, a: Instance, b: Instance) -> tuple[Instance, Instance]:
    name = await rig.leader()
    assert name in ("a", "b"), name
    return (a, b) if name == "a" else (b, a)


async def _outage_on(rig: HaRig) -> None:
    rig.sim.set_mode("error500", endpoints=("public",))
    await until(lambda: rig.converged(True), 30, "all actions ON after the portal failed for both sites")
    await until(lambda: rig.effects_reach(ON), 15, "outage message, failover webhook and ads mutation")


def _exactly(rig: HaRig, want: dict[str, int]) -> bool:
    got = rig.effects()
    return all(got[k] == v for k, v in want.items())


async def test_one_site_alone_does_not_fail_over_and_both_do_within_single_instance_time(rig: HaRig) -> None:
    a, b = await _two(rig)
    # (a) The portal fails for site a's address only: a says DOWN, b says UP, no majority for DOWN.
    rig.sim.set_mode("error500", endpoints=("public",), clients=["127.0.0.2"])

    async def split() -> bool:
        p = (await rig.status())["portals"][PORTAL]
        return p["sites"].get("a") == "down" and p["sites"].get("b") == "up"

    await until(split, 20, "status --json shows a: down, b: up for the portal")
    p = (await rig.status())["portals"][PORTAL]
    assert p["verdict"] == "up" and p["failover"] is False, p
    for instance in (a, b):
        assert await instance.gauge("portalguard_portal_site_state", portal=PORTAL, site="a", state="down") == 1
        assert await instance.gauge("portalguard_portal_site_state", portal=PORTAL, site="b", state="up") == 1
        assert await instance.get(f"/book/{PORTAL}") == 302, "patients sent to the fallback page by one site"
    await stays(lambda: _exactly(rig, dict.fromkeys(ON, 0)), 3, "no effect while one site alone sees DOWN")
    assert (await rig.status())["portals"][PORTAL]["failover"] is False

    # Back to healthy for a, then (b) down for both: failover within a single instance's time + 1 s.
    rig.sim.set_mode("healthy", endpoints=("public",), clients=["127.0.0.2"])

    async def both_up() -> bool:
        return (await rig.status())["portals"][PORTAL]["sites"] == {"a": "up", "b": "up"}

    await until(both_up, 20, "both sites judge the portal up again")
    switched = time.time()
    rig.sim.set_mode("error500", endpoints=("public",))
    on_at = await until(lambda: rig.failover_on_at(switched), SINGLE_BOUND + 10, "failover ON after both failed")
    took = on_at - switched
    assert took <= SINGLE_BOUND + 1.0, f"failover {took:.2f}s after the switch (single instance ≤ {SINGLE_BOUND}s)"
    await until(lambda: rig.converged(True), 30, "all actions ON")
    await until(lambda: rig.effects_reach(ON), 15, "every ON effect")
    for instance in (a, b):  # the follower serves the fallback page from the shared store too
        await until(lambda i=instance: _serves_fallback(i), 3, f"site {instance.site} serves the fallback page")
    assert _exactly(rig, ONCE_ON), rig.effects()


async def _serves_fallback(instance: Instance) -> bool:
    return await instance.get(f"/book/{PORTAL}") == 200


async def test_leader_killed_mid_outage_the_other_takes_over_and_nothing_is_sent_twice(rig: HaRig) -> None:
    a, b = await _two(rig)
    await _outage_on(rig)
    leader, other = await _leader_and_follower(rig, a, b)
    await leader.kill9()
    killed = time.monotonic()
    await until(other.is_leader, LEASE + 2, f"site {other.site} leader (portalguard_leader 1) within lease + 2 s")
    took = time.monotonic() - killed
    assert await rig.leader() == other.site
    assert took <= LEASE + 2, took
    await stays(lambda: _exactly(rig, ONCE_ON), 3, "the new leader sends nothing again")
    assert rig.ads.status(CAMPAIGN) == "ENABLED"
    assert await other.get(f"/book/{PORTAL}") == 200

    rig.sim.set_mode("healthy")  # the dead site's DOWN counts no more once it is stale
    await until(lambda: rig.converged(False), STALE + 30, "all actions OFF after recovery")
    await until(lambda: rig.effects_reach(ONCE_BOTH), 15, "the recovered message, webhook and ads pause")
    await stays(lambda: _exactly(rig, ONCE_BOTH), 2, "each OFF effect once")
    assert rig.ads.status(CAMPAIGN) == "PAUSED"
    sites = (await rig.status())["sites"]
    assert sites[leader.site]["alive"] is False and sites[other.site]["leader"] is True, sites


async def test_leader_frozen_past_its_lease_performs_nothing_and_steps_down(rig: HaRig) -> None:
    a, b = await _two(rig)
    await _outage_on(rig)
    leader, other = await _leader_and_follower(rig, a, b)
    leader.signal(signal.SIGSTOP)
    try:
        await until(other.is_leader, LEASE + 2, f"site {other.site} takes over from the frozen leader")
        # While the old leader sleeps the portal recovers: the new leader switches everything off.
        rig.sim.set_mode("healthy")
        await until(lambda: rig.converged(False), STALE + 30, "all actions OFF by the new leader")
        await until(lambda: rig.effects_reach(ONCE_BOTH), 15, "each OFF effect")
    finally:
        leader.signal(signal.SIGCONT)  # it wakes believing it leads a portal in failover
    assert rig.ads.status(CAMPAIGN) == "PAUSED"
    await until(lambda: _stepped_down(leader), 10, f"site {leader.site} reports portalguard_leader 0")
    await stays(lambda: _exactly(rig, ONCE_BOTH), 4, "the woken leader performs nothing")
    assert rig.ads.status(CAMPAIGN) == "PAUSED"
    assert await rig.leader() == other.site
    assert await other.is_leader()
    assert (await rig.status())["portals"][PORTAL]["failover"] is False


async def _stepped_down(instance: Instance) -> bool:
    return await instance.gauge("portalguard_leader") == 0


async def test_postgresql_halted_mid_outage_then_back(tmp_path: Path, own_server: PostgresServer) -> None:
    async with _rig(tmp_path, own_server.new_database()) as rig:
        a, b = await _two(rig)
        await _outage_on(rig)
        for instance in (a, b):
            await until(lambda i=instance: _serves_fallback(i), 3, f"site {instance.site} serves the fallback page")
        own_server.halt()
        try:

            async def both_see_it_down() -> bool:
                return all([await i.gauge("portalguard_store_up") == 0 for i in (a, b)])

            await until(both_see_it_down, 20, "portalguard_store_up 0 on both instances")
            for instance in (a, b):
                assert await instance.get(f"/book/{PORTAL}") == 200, f"site {instance.site}: /book while PG is down"
            # The portal recovers while the database is down: nothing may be done before it is back.
            rig.sim.set_mode("healthy")
            await stays(lambda: _exactly(rig, ONCE_ON), LEASE + 2, "no effect while the database is down")
            for instance in (a, b):
                assert await instance.get(f"/book/{PORTAL}") in (200, 302), f"site {instance.site}: /book"
            assert rig.ads.status(CAMPAIGN) == "ENABLED"
        finally:
            own_server.start()

        async def both_see_it_up() -> bool:
            return all([await i.gauge("portalguard_store_up") == 1 for i in (a, b)])

        await until(both_see_it_up, 30, "portalguard_store_up 1 on both once PostgreSQL is back")
        await until(lambda: rig.converged(False), 40, "recovered once the database is back")
        await until(lambda: rig.effects_reach(ONCE_BOTH), 15, "each OFF effect")
        await stays(lambda: _exactly(rig, ONCE_BOTH), 2, "each effect exactly once")
        assert rig.ads.status(CAMPAIGN) == "PAUSED"
        await until(lambda: _one_leader(rig, a, b), LEASE + 2, "exactly one leader, the one status names")


async def _one_leader(rig: HaRig, a: Instance, b: Instance) -> bool:
    leaders = [i.site for i in (a, b) if await i.is_leader()]
    return len(leaders) == 1 and await rig.leader() == leaders[0]


async def test_a_second_instance_of_a_site_exits_2_naming_the_first(rig: HaRig) -> None:
    a = rig.add("a", "127.0.0.2")
    await rig.start(a)
    twin = rig.add("a", "127.0.0.3")  # the same site, its own ports and address
    proc = await twin.spawn()
    assert await asyncio.wait_for(proc.wait(), 20) == 2
    said = twin.log_text()
    assert a.proc is not None
    assert str(a.proc.pid) in said or re.search(r"site\W+a\b", said), f"the first is not named: {said}"
    assert a.running and await a.healthy()
    assert await rig.leader() == "a"


async def test_a_clean_stop_hands_over_at_once_and_the_last_one_tells_staff(rig: HaRig) -> None:
    a, b = await _two(rig)
    await _outage_on(rig)
    leader, other = await _leader_and_follower(rig, a, b)

    def stopped_messages() -> int:
        return sum("portalguard が停止しました" in r.json().get("title", "") for r in rig.staff.requests)

    leader.signal(signal.SIGTERM)  # an upgrade of one machine: the other goes on, nobody is alarmed
    assert leader.proc is not None and await asyncio.wait_for(leader.proc.wait(), 30) == 0
    stopped = time.monotonic()
    await until(other.is_leader, LEASE / 3 + 2, f"site {other.site} leads soon after the lease is given up")
    assert time.monotonic() - stopped < LEASE, "the lease was given up, not left to run out"
    await stays(lambda: stopped_messages() == 0 and _exactly(rig, ONCE_ON), 2, "nothing told, nothing redone")
    other.signal(signal.SIGTERM)  # the last one: staff must know the fallback page goes with it
    assert other.proc is not None and await asyncio.wait_for(other.proc.wait(), 40) == 0
    assert stopped_messages() == 1 and _exactly(rig, ONCE_ON), rig.effects()
