"""``Leadership``: one leader among the sites of one store, against a real ``AsyncStore`` on both
backends, with this process's monotonic clock injected (the lease itself is on the database's clock).

Proved here: a new ``Leadership`` fences its store as a follower ``(site, 0)``; its first step takes
the lease, sets the fence to ``(site, token)``, the ``portalguard_leader`` gauge to 1 and ``changed``;
it believes itself leader only until the moment it asked plus the lease less ``MARGIN`` by its own
clock, without any store call (a frozen process); a step that finds another site holding the lease
loses it (gauge 0, ``changed``) and keeps the old fence, so its writes are refused; a store that
fails keeps a valid leader leading until that local deadline, then it steps down (in ``step`` and in
``run``); ``resign`` frees the lease for another site's next step; ``run(stop)`` ends by resigning.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from failover.leadership import MARGIN, Leadership
from failover.metrics import SiteMetrics
from failover.store import AsyncStore, FencedOut, Lease, StoreError

pytestmark = pytest.mark.anyio
T0 = 1_800_000_000.0
START = 1000.0  # the injected monotonic clock's start


class Monotonic:
    """This process's monotonic clock: moves only when a test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def stores(store_location: str) -> AsyncIterator[Callable[[], AsyncStore]]:
    """Opens stores on the test's location (each one a process, a site, of its own); closes them."""
    opened: list[AsyncStore] = []

    def open_one() -> AsyncStore:
        opened.append(AsyncStore(store_location, clock=lambda: T0))
        return opened[-1]

    yield open_one
    for s in opened:
        await s.close()


class Site:
    """One instance: its store, its metrics and its ``Leadership``."""

    def __init__(self, store: AsyncStore, name: str, lease: float, clock: Callable[[], float]) -> None:
        self.store = store
        self.registry = CollectorRegistry()
        self.lead = Leadership(store, name, lease, SiteMetrics(self.registry), clock)

    @property
    def gauge(self) -> float | None:
        return self.registry.get_sample_value("portalguard_leader")

    async def may_act(self) -> bool:
        """Whether a fenced write of this process goes through now (nothing is written either way)."""
        try:
            await self.store.fence_check()
        except FencedOut:
            return False
        return True


def failing(*_: Any) -> Any:
    raise StoreError("store x: could not connect (check the `store:` URL and that the server runs)")


async def test_the_first_step_takes_the_lease_sets_the_fence_and_the_gauge(stores: Callable[[], AsyncStore]) -> None:
    clock = Monotonic()
    tokyo = Site(stores(), "tokyo", 10.0, clock)
    assert tokyo.store.sync.fence == ("tokyo", 0) and tokyo.gauge == 0 and not tokyo.lead.is_leader
    assert not await tokyo.may_act(), "a follower's fenced write went through"
    with pytest.raises(FencedOut):
        await tokyo.store.claim("k")
    assert await tokyo.lead.step() == pytest.approx(10.0 / 3)
    assert tokyo.lead.is_leader and tokyo.lead.term is not None
    assert tokyo.lead.term.token == 1 and tokyo.lead.term.valid_until == START + 10.0 - MARGIN
    assert tokyo.store.sync.fence == ("tokyo", 1) and tokyo.lead.holder == "tokyo"
    assert tokyo.gauge == 1 and tokyo.lead.changed.is_set()
    assert await tokyo.store.claim("k") is True
    tokyo.lead.changed.clear()
    clock.now += 3.0
    await tokyo.lead.step()  # a renewal: the same term, a later deadline, nothing changed
    assert tokyo.lead.term.token == 1 and tokyo.lead.term.valid_until == START + 3.0 + 10.0 - MARGIN
    assert not tokyo.lead.changed.is_set() and tokyo.gauge == 1


async def test_another_site_follows_while_the_lease_runs(stores: Callable[[], AsyncStore]) -> None:
    clock = Monotonic()
    tokyo, osaka = Site(stores(), "tokyo", 10.0, clock), Site(stores(), "osaka", 10.0, clock)
    await tokyo.lead.step()
    wait = await osaka.lead.step()
    assert wait == pytest.approx(10.0 / 3)  # the lease runs ~10 s more: look again at lease/3
    assert not osaka.lead.is_leader and osaka.lead.term is None and osaka.lead.holder == "tokyo"
    assert osaka.gauge == 0 and not osaka.lead.changed.is_set()
    assert osaka.store.sync.fence == ("osaka", 0) and not await osaka.may_act()
    assert await tokyo.may_act()


async def test_the_leader_stops_believing_at_its_local_deadline_without_any_store_call(
    stores: Callable[[], AsyncStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Monotonic()
    tokyo = Site(stores(), "tokyo", 10.0, clock)
    await tokyo.lead.step()
    monkeypatch.setattr(tokyo.store, "take_lease", failing)  # no store call decides what follows
    monkeypatch.setattr(tokyo.store, "site_view", failing)
    clock.now = START + 10.0 - MARGIN - 0.01
    assert tokyo.lead.is_leader
    clock.now = START + 10.0 - MARGIN  # frozen this long (SIGSTOP, a VM pause): it must not act
    assert not tokyo.lead.is_leader
    lease = tokyo.store.sync.lease()
    assert lease is not None and lease.held and lease.site == "tokyo", "the database still says tokyo leads"


async def test_a_step_finding_another_site_holding_the_lease_loses_it(stores: Callable[[], AsyncStore]) -> None:
    clock = Monotonic()
    tokyo, osaka = Site(stores(), "tokyo", 0.6, clock), Site(stores(), "osaka", 10.0, clock)
    await tokyo.lead.step()
    assert tokyo.lead.is_leader and tokyo.gauge == 1
    clock.now += 0.2  # past asked + 0.6 - MARGIN: tokyo is frozen, or cut off
    assert not tokyo.lead.is_leader
    await asyncio.sleep(0.65)  # the real lease runs out on the database's clock
    await osaka.lead.step()
    assert osaka.lead.is_leader and osaka.lead.term is not None and osaka.lead.term.token == 2
    assert osaka.gauge == 1 and await osaka.may_act()
    tokyo.lead.changed.clear()
    wait = await tokyo.lead.step()
    assert tokyo.lead.term is None and not tokyo.lead.is_leader and tokyo.lead.holder == "osaka"
    assert tokyo.gauge == 0 and tokyo.lead.changed.is_set()
    assert wait == pytest.approx(0.6 / 3)
    assert tokyo.store.sync.fence == ("tokyo", 1), "losing must keep the old fence"
    assert not await tokyo.may_act()
    with pytest.raises(FencedOut):
        await tokyo.store.set_failover("epark", True, "public: timeout")
    assert not (await osaka.store.portal("epark")).failover


async def test_a_failing_store_keeps_a_valid_leader_until_its_local_deadline(
    stores: Callable[[], AsyncStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Monotonic()
    tokyo, osaka = Site(stores(), "tokyo", 10.0, clock), Site(stores(), "osaka", 10.0, clock)
    await tokyo.lead.step()
    tokyo.lead.changed.clear()
    monkeypatch.setattr(tokyo.store, "take_lease", failing)
    clock.now = START + 3.0
    assert await tokyo.lead.step() == 1.0  # tried again within a second
    clock.now = START + 9.0
    await tokyo.lead.step()
    assert tokyo.lead.is_leader and tokyo.gauge == 1 and not tokyo.lead.changed.is_set()
    assert tokyo.store.sync.fence == ("tokyo", 1)
    clock.now = START + 10.0 - MARGIN + 0.01
    await tokyo.lead.step()
    assert tokyo.lead.term is None and tokyo.gauge == 0 and tokyo.lead.changed.is_set()
    monkeypatch.setattr(osaka.store, "take_lease", failing)  # a follower that cannot ask stays one
    assert await osaka.lead.step() == 1.0
    assert osaka.lead.term is None and osaka.gauge == 0 and not osaka.lead.changed.is_set()


async def test_a_lease_call_that_hangs_is_given_up_after_a_third_of_the_lease(
    stores: Callable[[], AsyncStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Monotonic()
    tokyo = Site(stores(), "tokyo", 0.9, clock)
    await tokyo.lead.step()

    async def hangs(site: str, seconds: float, token: int | None) -> Lease:
        await asyncio.sleep(5)
        raise AssertionError("not given up")

    monkeypatch.setattr(tokyo.store, "take_lease", hangs)
    clock.now = START + 0.2
    wait = await asyncio.wait_for(tokyo.lead.step(), 1.0)  # gives up after 0.3 s
    assert wait == pytest.approx(0.3) and tokyo.lead.is_leader, "a slow store cost a valid leader its lead"
    clock.now = START + 0.9 - MARGIN
    await asyncio.wait_for(tokyo.lead.step(), 1.0)
    assert tokyo.lead.term is None and tokyo.gauge == 0


async def test_resign_frees_the_lease_for_another_sites_next_step(stores: Callable[[], AsyncStore]) -> None:
    clock = Monotonic()
    tokyo, osaka = Site(stores(), "tokyo", 10.0, clock), Site(stores(), "osaka", 10.0, clock)
    await tokyo.lead.step()
    await osaka.lead.step()
    assert osaka.lead.term is None
    tokyo.lead.changed.clear()
    await tokyo.lead.resign()
    assert tokyo.lead.term is None and tokyo.gauge == 0 and tokyo.lead.changed.is_set()
    lease = tokyo.store.sync.lease()
    assert lease is not None and not lease.held
    await osaka.lead.step()  # at once, not after the 10 s the lease had left
    assert osaka.lead.is_leader and osaka.lead.term is not None and osaka.lead.term.token == 2
    assert not await tokyo.may_act() and await osaka.may_act()
    await tokyo.lead.resign()  # not leading: nothing to give up
    assert osaka.store.sync.lease().held  # type: ignore[union-attr]


async def test_a_restarted_site_leads_again_at_once(stores: Callable[[], AsyncStore]) -> None:
    clock = Monotonic()
    old = Site(stores(), "tokyo", 10.0, clock)
    await old.lead.step()
    new = Site(stores(), "tokyo", 10.0, clock)  # the same site's next process (the old one was killed)
    await new.lead.step()
    assert new.lead.is_leader and new.lead.term is not None and new.lead.term.token == 2
    assert await new.may_act() and not await old.may_act()


async def test_run_leads_until_stop_then_resigns(stores: Callable[[], AsyncStore]) -> None:
    tokyo = Site(stores(), "tokyo", 10.0, asyncio.get_running_loop().time)
    osaka = Site(stores(), "osaka", 10.0, Monotonic())
    stop = asyncio.Event()
    task = asyncio.create_task(tokyo.lead.run(stop))
    await asyncio.wait_for(tokyo.lead.changed.wait(), 2.0)
    assert tokyo.lead.is_leader and tokyo.gauge == 1
    stop.set()
    await asyncio.wait_for(task, 2.0)
    assert tokyo.lead.term is None and tokyo.gauge == 0
    lease = tokyo.store.sync.lease()
    assert lease is not None and lease.site == "tokyo" and not lease.held, "run ended without resigning"
    await osaka.lead.step()
    assert osaka.lead.is_leader


async def test_run_steps_down_at_the_local_deadline_while_the_store_fails(
    stores: Callable[[], AsyncStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Monotonic()
    tokyo = Site(stores(), "tokyo", 10.0, clock)
    real = tokyo.store.take_lease
    calls: list[int | None] = []

    async def then_frozen(site: str, seconds: float, token: int | None) -> Lease:
        calls.append(token)
        if len(calls) > 1:
            failing()
        lease = await real(site, seconds, token)
        clock.now = START + seconds  # the process was frozen right after: its deadline is behind it
        return lease

    monkeypatch.setattr(tokyo.store, "take_lease", then_frozen)
    stop = asyncio.Event()
    task = asyncio.create_task(tokyo.lead.run(stop))
    try:
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(calls) > 1:
                break
        # The second step asked with no token: run had stepped down at the deadline before it.
        assert calls == [None, None], "run kept leading past its local deadline"
        assert tokyo.lead.term is None and tokyo.gauge == 0 and not tokyo.lead.is_leader
    finally:
        stop.set()
        await asyncio.wait_for(task, 2.0)
    lease = tokyo.store.sync.lease()
    assert lease is not None and lease.held, "nothing to resign with: the lease was the store's to let run out"
