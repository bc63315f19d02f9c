"""One leader among the instances on one store: the lease loop (the lease itself is ``store/sites.py``).

Every instance runs this loop. The leader renews its lease every ``lease/3``; a follower tries to take
it as soon as it may have expired. The leader believes itself leader only until its *local* deadline:
the moment it asked for the lease (its own monotonic clock) plus the lease, less ``MARGIN`` — so it
stops acting before any other instance can have taken over, whatever the database's clock says, even
if this process was frozen (SIGSTOP, a VM pause) or cut off from the database meanwhile.

Gaining the lease sets the store's ``fence`` (site, token): from then on every write that makes an
effect checks, in its own transaction, that the token is still the lease's. Losing it leaves the old
fence in place: a write still under way is refused once the lease has run out in the database or
another site holds it. (Between our own deadline and the database's expiry — at least ``MARGIN`` —
such a write still passes; harmless, as no other site can hold the lease before that expiry.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from failover.metrics import SiteMetrics
from failover.store import AsyncStore, StoreError

log = logging.getLogger("portalguard.leadership")
MARGIN = 0.5  # seconds the leader stops believing before its lease can expire anywhere
LEASE_ERRORS = (StoreError, sqlite3.Error, OSError, TimeoutError)
NO_TERM = 0  # the fence of a follower: no lease has token 0, so every fenced write is refused


@dataclass(slots=True)
class Term:
    token: int
    valid_until: float  # on our monotonic clock


class Leadership:
    def __init__(
        self,
        store: AsyncStore,
        site: str,
        lease: float,
        metrics: SiteMetrics | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.site, self.lease, self.metrics = store, site, lease, metrics
        self.monotonic = monotonic
        self.term: Term | None = None
        self.holder: str | None = None  # the leader as last read (ourselves included)
        self.changed = asyncio.Event()  # set at every gain or loss; the service waits on it
        store.sync.fence = (site, NO_TERM)

    @property
    def is_leader(self) -> bool:
        """Whether this process may act now (checked before every tick and every effect)."""
        return self.term is not None and self.monotonic() < self.term.valid_until

    async def step(self) -> float:
        """One attempt to take or renew the lease; returns how long to wait before the next."""
        asked = self.monotonic()
        token = self.term.token if self.term is not None else None
        try:
            lease = await asyncio.wait_for(self.store.take_lease(self.site, self.lease, token), self.lease / 3)
        except LEASE_ERRORS as err:
            if self.term is not None and not self.is_leader:
                self._lose(f"the lease could not be renewed before it ran out ({type(err).__name__})")
            elif self.term is not None:
                log.warning("leader lease not renewed (%s): acting on until it runs out", type(err).__name__)
            return min(self.lease / 3, 1.0)
        self.holder = lease.site
        if lease.site != self.site:
            if self.term is not None:
                self._lose(f"site {lease.site} holds the lease now")
            return max(0.05, min(self.lease / 3, lease.remaining + 0.05))
        valid_until = asked + min(lease.remaining, self.lease) - MARGIN
        if self.term is not None and self.term.token == lease.token:
            self.term.valid_until = valid_until
        else:
            self._gain(lease.token, valid_until)
        return self.lease / 3

    def _gain(self, token: int, valid_until: float) -> None:
        self.term = Term(token, valid_until)
        self.store.sync.fence = (self.site, token)
        log.warning("site %s is the leader now (lease token %d)", self.site, token)
        self._publish()

    def _lose(self, why: str) -> None:
        assert self.term is not None
        log.warning("site %s is no longer the leader: %s", self.site, why)
        self.term = None  # the fence keeps the old token: refused once the lease is expired or taken
        self._publish()

    def _publish(self) -> None:
        if self.metrics is not None:
            self.metrics.leader.set(int(self.term is not None))
        self.changed.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Take, renew and lose the lease until ``stop``; then give it up (``resign``)."""
        while not stop.is_set():
            try:
                wait = await self.step()
            except Exception as err:  # the loop must go on, or this site would never lead (again)
                log.error("leader lease: %s", type(err).__name__)
                wait = min(self.lease / 3, 1.0)
            if self.term is not None:  # wake up in time to notice the local deadline passing
                wait = max(0.0, min(wait, self.term.valid_until - self.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            if self.term is not None and not self.is_leader:
                self._lose("the lease ran out before it could be renewed")
        await self.resign()

    async def resign(self) -> None:
        """At a clean stop: give the lease up, so the next site need not wait for it to run out."""
        if self.term is None:
            return
        token, self.term = self.term.token, None
        self._publish()
        try:
            await asyncio.wait_for(self.store.resign(self.site, token), 2.0)
        except LEASE_ERRORS as err:
            log.warning("leader lease not given up (%s): it runs out by itself", type(err).__name__)
