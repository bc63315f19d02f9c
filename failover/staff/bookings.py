"""Booking requests told to staff in batches: the requests of one portal that arrive within a
minute make ONE message with their count and numbers, so a flood (300 posts from one network)
pages staff once a minute, not 300 times.

- ``arrived(portal, id)`` (the web app, after the request is stored): the request waits in memory.
- ``flush_due()`` (every second): a portal's waiting requests are queued as one ``booking_request``
  message once the oldest has waited ``window`` seconds, and never sooner than ``window`` after
  that portal's previous message. Drill requests (from a drill's preview page) go in their own
  message, marked as a drill.
- ``sweep()`` (at start, then every minute): requests stored but never queued for staff (a crash
  between storing and queueing lost the memory) wait again. So every stored request reaches staff
  at least once, through the outbox.

A batch is queued under its own claim (``bookings:FIRST-LAST/COUNT``), then each request's claim
(``booking:ID``, which is what the sweep reads) is taken. A crash between the two makes the sweep
batch them again: the same batch is refused by its claim, a grown one is queued again (staff may
hear of a request twice, never not at all). Messages name request numbers only: patient details
stay behind /staff's login.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

from failover.store import BookingRequest, FencedOut, StoreError

if TYPE_CHECKING:
    from failover.staff.alerts import StaffAlerts
    from failover.store import AsyncStore

log = logging.getLogger("portalguard.staff")

WINDOW = 60.0  # requests within a minute make one message; at most one message a minute per portal
SWEEP_AGE = 86400.0  # older requests stored but never announced are left to /staff
SWEEP_LIMIT = 1000
_STORE_ERRORS = (StoreError, sqlite3.Error, OSError)

Batch = tuple[str, bool]  # (portal, drill)


def request_claim(request_id: int) -> str:
    return f"booking:{request_id}"


def batch_claim(numbers: list[int]) -> str:
    return f"bookings:{numbers[0]}-{numbers[-1]}/{len(numbers)}"


class BookingAnnouncer:
    def __init__(
        self, staff: StaffAlerts, store: AsyncStore, clock: Callable[[], float], window: float = WINDOW
    ) -> None:
        self.staff = staff
        self.store = store
        self.clock = clock
        self.window = window
        self._waiting: dict[Batch, dict[int, float]] = {}  # request number -> when it was stored
        self._last: dict[Batch, float] = {}  # when each batch's previous message was queued
        self._known: dict[int, float] = {}  # numbers waiting or queued by this process (the sweep skips them)

    async def arrived(self, portal: str, request_id: int) -> None:
        """A request was stored: it waits for its portal's next message."""
        request = await self.store.request(request_id)
        if request is not None:
            self._wait(request)

    async def sweep(self) -> int:
        """Requests stored but never queued for staff wait again; returns how many."""
        recent = self.clock() - SWEEP_AGE
        self._known = {n: created for n, created in self._known.items() if created >= recent}
        found = 0
        for req in await self.store.requests(status="new", limit=SWEEP_LIMIT):  # newest first
            if req.created < recent:
                break
            if req.id in self._known or await self.store.claimed(request_claim(req.id)):
                continue
            found += self._wait(req)
        return found

    async def flush_due(self, *, everything: bool = False) -> int:
        """Queue the batches whose time has come (``everything``: all, at shutdown); returns how
        many messages were queued."""
        now = self.clock()
        queued = 0
        for batch, waiting in list(self._waiting.items()):
            due = max(min(waiting.values()), self._last.get(batch, float("-inf"))) + self.window
            if waiting and (everything or now >= due):
                queued += await self._queue(batch, sorted(waiting), now)
        return queued

    def _forget(self, batch: Batch, numbers: list[int]) -> None:
        waiting = self._waiting.get(batch, {})
        for number in numbers:
            waiting.pop(number, None)
        if not waiting:
            self._waiting.pop(batch, None)

    def waiting(self) -> int:
        return sum(len(w) for w in self._waiting.values())

    def _wait(self, request: BookingRequest) -> bool:
        if request.id in self._known:
            return False
        batch = (request.portal, bool(request.data.get("drill")))
        self._waiting.setdefault(batch, {})[request.id] = request.created
        self._known[request.id] = request.created
        return True

    async def _queue(self, batch: Batch, numbers: list[int], now: float) -> int:
        portal, drill = batch
        try:
            # Told already (by another site leading meanwhile, or before a restart): not again.
            told = [n for n in numbers if await self.store.claimed(request_claim(n))]
            numbers = [n for n in numbers if n not in told]
            if not numbers:
                self._forget(batch, told)
                return 0
            await self.staff.enqueue(
                batch_claim(numbers), "booking_request", portal, drill=drill, count=len(numbers), numbers=numbers
            )
            for number in numbers:
                await self.store.claim(request_claim(number))
        except _STORE_ERRORS as err:  # they keep waiting: the next pass tries again
            log.error("staff not yet told of %d booking request(s) for %s: store: %s", len(numbers), portal, err)
            return 0
        except FencedOut as err:  # another site leads: its sweep finds them
            log.warning("booking request(s) for %s left to the leader: %s", portal, err)
            return 0
        self._forget(batch, [*told, *numbers])
        self._last[batch] = now
        log.info("staff told of %d booking request(s) for %s", len(numbers), portal)
        return 1
