"""Several places, one verdict (``failover/sites.py``), against a real store on both backends: this site's
heartbeat and verdicts are written, the other sites' are read back, and the combined verdict follows the
quorum of the live sites — a silent site and a site whose own network is down do not count, and a site
alone decides exactly as a single instance (its own verdict, unchanged)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client import CollectorRegistry

from failover.metrics import FailoverMetrics, SiteMetrics
from failover.resilient import ResilientStore
from failover.sites import SiteVotes
from failover.store import SiteBeat, StoreError
from watchdog.monitor import PortalHealth
from watchdog.verdict import Health

if TYPE_CHECKING:  # importing tests.conftest at run time would load it twice (and its loopback guard)
    from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio
PORTAL = "sakura"


class Own:
    """This site's own verdicts, as its monitor would give them (the monitor has its own tests)."""

    def __init__(self) -> None:
        self.health = {PORTAL: Health.UP}
        self.network_down = False

    def __call__(self, pid: str) -> PortalHealth:
        return PortalHealth(pid, self.health[pid], 100.0, self.network_down)


@pytest.fixture
async def store(store_location: str, clock: FakeClock) -> AsyncIterator[ResilientStore]:
    registry = CollectorRegistry()
    s = ResilientStore(store_location, clock, FailoverMetrics(registry))
    s.registry = registry  # type: ignore[attr-defined]
    yield s
    await s.close()


def votes(store: ResilientStore, own: Own, clock: FakeClock, **kw: Any) -> tuple[SiteVotes, CollectorRegistry]:
    registry: CollectorRegistry = store.registry  # type: ignore[attr-defined]
    v = SiteVotes(
        "a",
        store,
        own,
        lambda: own.network_down,
        [PORTAL],
        kw.get("quorum", "majority"),
        kw.get("stale_after", 30.0),
        clock,
        SiteMetrics(registry),
    )
    return v, registry


def other(store: ResilientStore, site: str, health: Health, *, network_down: bool = False, stale: float = 30.0) -> None:
    store.sync.beat(SiteBeat(site, "host-" + site, 4242, stale, network_down, {PORTAL: (health.value, 50.0)}))


async def test_alone_the_combined_verdict_is_the_own_one_and_changes_are_told(
    store: ResilientStore, clock: FakeClock
) -> None:
    own = Own()
    v, _ = votes(store, own, clock)
    told: list[tuple[Health, Health]] = []
    v.listeners.append(lambda h, before: told.append((before, h.health)))
    await v.beat_once()
    assert v.health(PORTAL) == own(PORTAL)  # the very same view: one instance decides as before
    assert v.combined(PORTAL) is None
    own.health[PORTAL] = Health.DOWN
    v.on_own_verdict(own(PORTAL), Health.UP)
    assert told == [(Health.UP, Health.DOWN)]
    assert v.health(PORTAL).since == 100.0  # the monitor's own since, alone


async def test_heartbeat_and_verdicts_reach_the_store(store: ResilientStore, clock: FakeClock) -> None:
    own = Own()
    v, registry = votes(store, own, clock, stale_after=12.0)
    await v.beat_once()
    sites, verdicts, _ = await store.site_view()
    assert [(s.site, s.alive, s.stale_after, s.network_down) for s in sites] == [("a", True, 12.0, False)]
    assert [(x.portal, x.site, x.health) for x in verdicts] == [(PORTAL, "a", "up")]
    assert registry.get_sample_value("portalguard_site_up", {"site": "a"}) == 1
    state = {"portal": PORTAL, "site": "a"}
    assert registry.get_sample_value("portalguard_portal_site_state", {**state, "state": "up"}) == 1
    assert registry.get_sample_value("portalguard_portal_site_state", {**state, "state": "down"}) == 0


async def test_one_site_of_two_down_keeps_the_portal_up_both_fail_it_over(
    store: ResilientStore, clock: FakeClock
) -> None:
    own = Own()
    v, registry = votes(store, own, clock)
    told: list[Health] = []
    v.listeners.append(lambda h, before: told.append(h.health))
    other(store, "b", Health.UP)
    await v.beat_once()
    own.health[PORTAL] = Health.DOWN  # only we see it down: no majority of two
    v.on_own_verdict(own(PORTAL), Health.UP)
    assert v.health(PORTAL).health is Health.UP and told == []
    result = v.combined(PORTAL)
    assert result is not None and (result.voters, result.down, result.up, result.needed) == (2, 1, 1, 2)
    clock.advance(5)
    other(store, "b", Health.DOWN)
    await v.beat_once()
    assert v.health(PORTAL).health is Health.DOWN and told == [Health.DOWN]
    assert v.health(PORTAL).since == clock.now  # the combined verdict's own since
    assert v.health(PORTAL).reason() == own(PORTAL).reason()  # our own endpoints explain it
    assert (
        registry.get_sample_value("portalguard_portal_site_state", {"portal": PORTAL, "site": "b", "state": "down"})
        == 1
    )
    # Recovery needs a quorum too: one site seeing it up again changes nothing.
    own.health[PORTAL] = Health.UP
    v.on_own_verdict(own(PORTAL), Health.DOWN)
    assert v.health(PORTAL).health is Health.DOWN


async def test_quorum_one_lets_one_site_fail_it_over(store: ResilientStore, clock: FakeClock) -> None:
    own = Own()
    v, _ = votes(store, own, clock, quorum=1)
    other(store, "b", Health.UP)
    await v.beat_once()
    own.health[PORTAL] = Health.DOWN
    v.on_own_verdict(own(PORTAL), Health.UP)
    assert v.health(PORTAL).health is Health.DOWN  # DOWN wins a tie of two quorums of one


async def test_a_site_whose_own_network_is_down_votes_neither_way(store: ResilientStore, clock: FakeClock) -> None:
    own = Own()
    v, _ = votes(store, own, clock)
    other(store, "b", Health.UP, network_down=True)
    await v.beat_once()
    own.health[PORTAL] = Health.DOWN
    v.on_own_verdict(own(PORTAL), Health.UP)
    result = v.combined(PORTAL)
    assert result is not None and result.voters == 1 and result.alone
    assert v.health(PORTAL).health is Health.DOWN  # the one voter decides alone


async def test_our_own_network_down_leaves_the_decision_to_the_others(store: ResilientStore, clock: FakeClock) -> None:
    own = Own()
    v, _ = votes(store, own, clock)
    other(store, "b", Health.UP)
    await v.beat_once()
    own.health[PORTAL], own.network_down = Health.UNKNOWN, True
    v.on_own_verdict(own(PORTAL), Health.UP)
    await v.beat_once()
    assert v.health(PORTAL).health is Health.UP
    sites, _, _ = await store.site_view()
    assert {s.site: s.network_down for s in sites} == {"a": True, "b": False}


async def test_a_silent_site_does_not_count(store: ResilientStore, clock: FakeClock) -> None:
    own = Own()
    v, registry = votes(store, own, clock)
    other(store, "b", Health.UP, stale=0.2)  # b says: count me for 0.2 s after my last beat
    await v.beat_once()
    assert v.combined(PORTAL) is not None
    await asyncio.sleep(0.3)  # the database's clock: not injectable
    await v.beat_once()
    assert v.combined(PORTAL) is None  # alone again: our own verdict decides
    assert registry.get_sample_value("portalguard_site_up", {"site": "b"}) == 0
    own.health[PORTAL] = Health.DOWN
    v.on_own_verdict(own(PORTAL), Health.UP)
    assert v.health(PORTAL).health is Health.DOWN


async def test_the_store_failing_keeps_the_last_view_and_shows_on_store_up(
    store: ResilientStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = Own()
    v, registry = votes(store, own, clock)
    other(store, "b", Health.DOWN)
    own.health[PORTAL] = Health.DOWN
    await v.beat_once()
    assert v.health(PORTAL).health is Health.DOWN

    async def unreachable(*_: Any) -> None:
        raise StoreError("store postgresql://u:***@h/db: connection refused")

    monkeypatch.setattr(store, "beat", unreachable)
    await v.beat_once()
    assert registry.get_sample_value("portalguard_store_up") == 0
    assert v.health(PORTAL).health is Health.DOWN  # b's last known vote still counts
    monkeypatch.undo()
    await v.beat_once()
    assert registry.get_sample_value("portalguard_store_up") == 1


async def test_a_site_that_left_counts_no_more_at_once(store: ResilientStore, clock: FakeClock) -> None:
    own = Own()
    v, _ = votes(store, own, clock)
    await v.beat_once()
    await v.leave()
    await v.beat_once()  # no heartbeat any more: it would make the site count again
    sites, _, _ = await store.site_view()
    assert [(s.site, s.alive) for s in sites] == [("a", False)]


async def test_a_second_site_appearing_keeps_the_verdict_and_its_since(store: ResilientStore, clock: FakeClock) -> None:
    own = Own()
    own.health[PORTAL] = Health.DOWN
    v, _ = votes(store, own, clock, quorum=1)
    await v.beat_once()
    clock.advance(60)
    other(store, "b", Health.DOWN)
    await v.beat_once()
    assert v.combined(PORTAL) is not None
    assert v.health(PORTAL).health is Health.DOWN and v.health(PORTAL).since == 100.0  # the outage's start


async def test_outvoted_the_reason_names_the_sites_that_see_it_down(store: ResilientStore, clock: FakeClock) -> None:
    own = Own()  # we see it up, with nothing failing
    v, _ = votes(store, own, clock)
    other(store, "b", Health.DOWN)
    other(store, "c", Health.DOWN)
    await v.beat_once()
    health = v.health(PORTAL)
    assert health.health is Health.DOWN
    assert health.reason() == "down as seen from site(s) b, c"  # what the outage message and the incident say
