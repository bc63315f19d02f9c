"""Several places, one verdict: this site's heartbeat and verdicts in the store, and the combined
verdict of every portal from the live sites' (the quorum rule is ``watchdog/quorum.py``).

Every instance writes, every ``BEAT_EVERY`` and at once when its own verdict of a portal changes, that
it lives and what it judges (``Store.beat``); then reads every site's (``site_view``, aged on the
database's clock). A site counts while its heartbeat is younger than its ``stale_after``; a site whose
canaries all fail votes neither way. The orchestrator reads ``health(pid)``: this site's own view of
the portal (endpoints, reasons) with the combined verdict in place of its own. Alone — no other live
site — the combined verdict *is* this site's own, exactly as a single instance decides.

The store unreachable: the last known view stays (a leader cannot renew its lease then anyway, and
stops acting when it runs out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from failover.metrics import SiteMetrics
from failover.store import AsyncStore, SiteBeat, SiteRow, SiteVerdict, StoreError
from watchdog.monitor import PortalHealth
from watchdog.quorum import Combined, Quorum, combine
from watchdog.verdict import Health

log = logging.getLogger("portalguard.sites")
BEAT_EVERY = 0.5  # seconds: the other sites' verdicts reach the leader within about this
# A store outage this long is told to staff once it is over (a restart of the server for an upgrade,
# seconds long, pages nobody); while it lasts no one may claim anything, so no one can tell.
OUTAGE_TOLD_AFTER = 30.0
SITE_ERRORS = (StoreError, sqlite3.Error, OSError, TimeoutError)
VerdictListener = Callable[[PortalHealth, Health], None]


@dataclass(frozen=True, slots=True)
class SiteView:
    """What the store said of the sites last (for ``status``-like pages and the metrics)."""

    sites: tuple[SiteRow, ...] = ()
    verdicts: tuple[SiteVerdict, ...] = ()
    leader: str | None = None


class SiteVotes:
    def __init__(
        self,
        site: str,
        store: AsyncStore,
        own: Callable[[str], PortalHealth],
        network_state: Callable[[], bool | None],
        portals: Iterable[str],
        quorum: Quorum,
        stale_after: float,
        clock: Callable[[], float],
        metrics: SiteMetrics | None = None,
    ) -> None:
        self.site, self.store, self.own, self.network_state = site, store, own, network_state
        self.portals = list(portals)
        self.quorum, self.stale_after, self.clock, self.metrics = quorum, stale_after, clock, metrics
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.view = SiteView()
        self.listeners: list[VerdictListener] = []  # told of every change of a combined verdict
        self._others: dict[str, dict[str, Health]] = {}  # portal -> live other site -> its vote
        self._combined: dict[str, tuple[Health, float]] = {}  # portal -> (health, since) while not alone
        # The combined verdict listeners were last told of (at first: our own, as the monitor starts it).
        self._last: dict[str, Health] = {pid: own(pid).health for pid in self.portals}
        for pid in self.portals:
            self._publish_own(pid)
        self._wake = asyncio.Event()
        self.left = False  # a clean stop: no heartbeat any more
        self._failing = False
        self._down_since: float | None = None  # the store stopped answering (our clock)
        self.outage: tuple[float, float] | None = None  # the last long store outage, (since, until), untold

    # -- what the orchestrator reads ------------------------------------------------------------

    def health(self, pid: str) -> PortalHealth:
        """The portal as this site sees it, with the combined verdict (its own when alone). Outvoted —
        we see it up, the others down — the reason names the sites that see it down."""
        own = self.own(pid)
        combined = self._combined.get(pid)
        if combined is None:
            return own
        health, since = combined
        if health is Health.DOWN and own.health is not Health.DOWN:  # outvoted: our endpoints say nothing
            down = sorted(s for s, h in self._others.get(pid, {}).items() if h is Health.DOWN)
            return SitesHealth(pid, health, since, own.network_down, own.endpoints, own.streak_since, down)
        return replace(own, health=health, since=since)

    def combined(self, pid: str) -> Combined | None:
        """How the verdict was reached (None: this site decides alone)."""
        others = self._others.get(pid)
        if not others:
            return None
        return combine({**others, self.site: self._own_vote(pid)}, self._last.get(pid, Health.UNKNOWN), self.quorum)

    def on_own_verdict(self, health: PortalHealth, previous: Health) -> None:
        """Monitor listener: our own verdict changed. The others hear of it at once (a beat now)."""
        self._wake.set()
        self._publish_own(health.portal)
        self._recompute(health.portal)

    # -- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            try:
                await self.beat_once()
            except Exception as err:  # a bug here must not freeze the votes for good: the next beat tries
                log.error("site %s: heartbeat failed: %s", self.site, type(err).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), BEAT_EVERY)
            self._wake.clear()

    async def beat_once(self) -> None:
        """Write our heartbeat and verdicts, read everyone's, recombine."""
        if self.left:
            return
        verdicts = {pid: (self.own(pid).health.value, self.own(pid).since) for pid in self.portals}
        beat = SiteBeat(self.site, self.host, self.pid, self.stale_after, self.network_state(), verdicts)
        try:
            await self.store.beat(beat)
            sites, stored, lease = await self.store.site_view()
        except SITE_ERRORS as err:
            if not self._failing:
                log.error("site %s: heartbeat not written, other sites not read: %s", self.site, type(err).__name__)
            self._failing = True
            if self._down_since is None:
                self._down_since = self.clock()
            if (health := getattr(self.store, "health", None)) is not None:
                health.unreadable()  # portalguard_store_up 0 on every instance, the followers too
            return  # the last known view stays
        if (health := getattr(self.store, "health", None)) is not None:
            health.answered()
        if self._failing:
            log.warning("site %s: heartbeat written again", self.site)
        self._failing = False
        if self._down_since is not None:
            if self.clock() - self._down_since >= OUTAGE_TOLD_AFTER:
                self.outage = (self._down_since, self.clock())
            self._down_since = None
        leader = lease.site if lease is not None and lease.held else None
        self.view = SiteView(tuple(sites), tuple(stored), leader)
        self._learn(sites, stored)
        for pid in self.portals:
            self._recompute(pid)
        self._publish()

    def _learn(self, sites: Iterable[SiteRow], stored: Iterable[SiteVerdict]) -> None:
        live = {s.site: s for s in sites if s.alive and s.site != self.site}
        others: dict[str, dict[str, Health]] = {pid: {} for pid in self.portals}
        for v in stored:
            row = live.get(v.site)
            if row is None or v.portal not in others or v.age > row.stale_after:
                continue
            others[v.portal][v.site] = Health.UNKNOWN if row.network_down else _health(v.health)
        self._others = others

    async def leave(self) -> None:
        """A clean stop: no heartbeat any more, and the store says at once that this site is gone."""
        if self.left:
            return
        self.left = True
        try:
            await asyncio.wait_for(self.store.leave(self.site), 2.0)
        except SITE_ERRORS as err:
            log.warning("site %s: not marked as gone (%s): it counts until it is stale", self.site, type(err).__name__)

    def _own_vote(self, pid: str) -> Health:
        own = self.own(pid)
        return Health.UNKNOWN if own.network_down else own.health

    def _recompute(self, pid: str) -> None:
        result = self.combined(pid)
        if result is None:  # alone: our own verdict, with its own since
            self._combined.pop(pid, None)
        else:
            was = self._combined.get(pid)
            if was is None:  # no longer alone: a verdict that does not change keeps its since
                before = self._last.get(pid)
                own = self.own(pid)
                kept = own.since if result.health is own.health else self.clock()
                self._combined[pid] = (result.health, kept if before is result.health else self.clock())
            elif was[0] is not result.health:
                self._combined[pid] = (result.health, self.clock())
        now = self.health(pid)
        before = self._last.get(pid)
        self._last[pid] = now.health
        if before is not None and before is not now.health:
            for listener in self.listeners:
                listener(now, before)

    def _publish_own(self, pid: str) -> None:
        if self.metrics is None:
            return
        own = self.own(pid).health
        for state in Health:
            self.metrics.portal_site_state.labels(pid, self.site, state.value).set(int(state is own))

    def _publish(self) -> None:
        if self.metrics is None:
            return
        for s in self.view.sites:
            self.metrics.site_up.labels(s.site).set(int(s.alive))
        for v in self.view.verdicts:
            for state in Health:
                self.metrics.portal_site_state.labels(v.portal, v.site, state.value).set(int(state.value == v.health))


@dataclass(frozen=True, slots=True)
class SitesHealth(PortalHealth):
    """The combined verdict DOWN where this site sees nothing failing: the reason is the others'."""

    down_at: tuple[str, ...] | list[str] = ()

    def reason(self) -> str:
        return PortalHealth.reason(self) or f"down as seen from site(s) {', '.join(self.down_at)}"


def _health(value: str) -> Health:
    try:
        return Health(value)
    except ValueError:  # a newer version's state: no vote
        return Health.UNKNOWN
