"""The orchestrator under the leader lease (issue 12), on a real store (both backends) with a real lease:
while this process holds it, a DOWN portal is switched as ever; once another site holds it, or the local
deadline has passed (a frozen leader), nothing is switched, written or said — the failover switch, the
action rows and the staff claims are refused in their own transactions (``FencedOut``)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from failover.metrics import FailoverMetrics
from failover.orchestrator import Orchestrator
from failover.resilient import ResilientStore
from tests.failover.test_orchestrator import PORTAL, StaffRecorder, Switch, make_settings
from watchdog.monitor import PortalHealth
from watchdog.verdict import Health

pytestmark = pytest.mark.anyio


class FencedRig:
    def __init__(self, tmp_path: Any, location: str, clock: Any) -> None:
        self.clock = clock
        self.settings = make_settings(tmp_path, location)
        self.store = ResilientStore(self.settings.store, clock, FailoverMetrics(CollectorRegistry()))
        self.health = Health.UP
        self.leading = True  # what Leadership.is_leader would say (its own tests cover it)
        self.staff = StaffRecorder(self.store)
        self.page, self.ads = Switch("page"), Switch("ads")
        self.orch = Orchestrator(
            self.settings,
            self.store,
            FailoverMetrics(CollectorRegistry()),
            self.staff,  # type: ignore[arg-type]
            {PORTAL: {"page": self.page, "ads": self.ads}},
            lambda pid: PortalHealth(pid, self.health, clock(), False),
            lambda: False,
            clock,
            random.Random(1),
            may_act=lambda: self.leading,
        )

    def lead(self, site: str = "a", seconds: float = 30.0) -> None:
        lease = self.store.sync.take_lease(site, seconds, None)
        assert lease.site == site
        self.store.sync.fence = (site, lease.token)

    async def tick(self) -> None:
        self.clock.advance(1.0)
        await self.orch.tick()
        await asyncio.sleep(0)
        await asyncio.wait_for(self.orch.drain(), 5)
        await self.store.flush()


@pytest.fixture
async def rig(tmp_path: Any, store_location: str, clock: Any) -> AsyncIterator[FencedRig]:
    r = FencedRig(tmp_path, store_location, clock)
    yield r
    await r.store.close()


async def test_the_leader_switches_as_ever(rig: FencedRig) -> None:
    rig.lead()
    rig.health = Health.DOWN
    await rig.tick()
    assert rig.page.on and rig.ads.on and rig.store.sync.portal(PORTAL).failover
    assert rig.store.sync.action(PORTAL, "ads").observed == "on"


async def test_a_deposed_leader_switches_writes_and_says_nothing(rig: FencedRig) -> None:
    rig.lead(seconds=0.2)
    await asyncio.sleep(0.3)  # the lease runs out on the database's clock
    assert rig.store.sync.take_lease("b", 30.0, None).site == "b"  # another site leads now
    rig.health = Health.DOWN
    stop = asyncio.Event()
    await asyncio.wait_for(rig.orch.run(stop), 5)  # it stops by itself: another site acts
    assert not rig.page.on and not rig.ads.on
    assert rig.page.calls.count("apply") == 0 and rig.ads.calls.count("apply") == 0
    assert not rig.store.sync.portal(PORTAL).failover, "the failover switch was written by a deposed leader"
    assert rig.staff.sent == []


async def test_past_its_local_deadline_a_leader_decides_nothing(rig: FencedRig) -> None:
    rig.lead()
    rig.leading = False  # frozen past its lease: the store's row may still say it leads
    rig.health = Health.DOWN
    await rig.tick()
    assert not rig.page.on and rig.page.calls == [] and not rig.store.sync.portal(PORTAL).failover
    assert rig.store.sync.value("heartbeat") is None


async def test_the_lease_lost_between_the_look_and_the_switch_stops_the_switch(rig: FencedRig) -> None:
    rig.lead()
    rig.health = Health.DOWN
    real = rig.ads.observe

    async def observe_then_freeze() -> bool:
        seen = await real()
        rig.leading = False  # the deadline passes while the API answers
        return seen

    rig.ads.observe = observe_then_freeze  # type: ignore[method-assign]
    await rig.tick()
    assert "apply" not in rig.ads.calls and not rig.ads.on
    row = rig.store.sync.action(PORTAL, "ads")
    assert row.last_error is None and row.attempts == 0, "a lost lease is no failure of the action"


async def test_the_upkeep_of_a_measure_that_is_on_waits_for_the_lease_too(rig: FencedRig) -> None:
    # A cap pauses the ads from maintain(): an effect, so a leader past its deadline does not do it.
    rig.lead()
    rig.health = Health.DOWN
    await rig.tick()
    assert rig.ads.on
    rig.ads.calls.clear()
    await rig.tick()
    assert "maintain" in rig.ads.calls  # as leader: its upkeep runs every tick
    rig.ads.calls.clear()
    answers = iter([True])  # the tick may start; by the upkeep the deadline has passed
    rig.orch.may_act = lambda: next(answers, False)
    await rig.tick()
    assert "maintain" not in rig.ads.calls
    assert rig.store.sync.action(PORTAL, "ads").last_error is None, "a lost lease is no failure of the action"
