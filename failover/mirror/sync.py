"""One sync of a portal's mirror, and the loop that keeps syncing while the portal is up.

A sync reads the upcoming days through the portal's source (``reader``: the composition root binds
the source type, its config and a fresh logged-in session), reconciles every day that was listed
completely, and leaves every other day exactly as it was. It records the outcome (``mirror_sync``)
and the metrics. Nothing personal is logged: counts only.

The loop syncs each portal every ``every`` while the portal is not DOWN: a dead admin screen would
only add errors, and the copy it holds is what staff read meanwhile. On recovery the next sync runs
at once (its last attempt is older than ``every`` by then, or it was skipped while DOWN).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from failover.mirror.model import DayChanges, DayFailure, DayListing, DayResult, MirrorState, SyncFailure
from failover.resilient import WRITE_ERRORS

log = logging.getLogger("portalguard.mirror")

Reader = Callable[[Sequence[dt.date]], Awaitable[list[DayResult]]]
LOOP_TICK = 5.0  # how soon a due sync, or a portal's recovery, is noticed


class MirrorStore(Protocol):
    """What a sync needs of the store (``failover.store.AsyncStore`` / ``ResilientStore``)."""

    async def apply_mirror_day(self, portal: str, listing: DayListing, source: str, now: float) -> DayChanges: ...

    async def record_mirror_sync(self, portal: str, now: float, error_kind: str | None, error: str | None) -> None: ...

    async def mirror_state(self, portal: str, today: dt.date) -> MirrorState: ...


class MirrorGauges(Protocol):
    """The mirror's metrics (``failover.metrics.MirrorMetrics``)."""

    def synced(self, portal: str, report: SyncReport, booked: int | None) -> None: ...


@dataclass(frozen=True, slots=True)
class MirrorJob:
    portal: str
    every: float
    days_ahead: int
    source: str  # the source type, recorded with each appointment
    read: Reader


@dataclass(slots=True)
class SyncReport:
    portal: str
    started: float  # the clock's time (records)
    duration: float  # seconds, measured on the monotonic clock
    changes: list[DayChanges] = field(default_factory=list)
    failures: list[DayFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def first_failure(self) -> SyncFailure | None:
        return self.failures[0].failure if self.failures else None

    def totals(self) -> tuple[int, int, int]:
        added = sum(len(c.added) for c in self.changes)
        updated = sum(len(c.updated) for c in self.changes)
        return added, updated, sum(len(c.cancelled) for c in self.changes)


def window(now: float, tz: ZoneInfo, days_ahead: int) -> list[dt.date]:
    """Today (the clinic's date at ``now``) and the ``days_ahead - 1`` days after it."""
    today = dt.datetime.fromtimestamp(now, tz).date()
    return [today + dt.timedelta(days=n) for n in range(days_ahead)]


class MirrorSync:
    def __init__(
        self,
        jobs: Mapping[str, MirrorJob],
        store: MirrorStore,
        tz: ZoneInfo,
        clock: Callable[[], float],
        metrics: MirrorGauges | None = None,
        is_down: Callable[[str], bool] = lambda portal: False,
    ) -> None:
        self.jobs = dict(jobs)
        self.store = store
        self.tz = tz
        self.clock = clock
        self.metrics = metrics
        self.is_down = is_down
        self._attempted: dict[str, float] = {}
        self._locks = {pid: asyncio.Lock() for pid in self.jobs}

    async def sync(self, portal: str) -> SyncReport:
        """One sync of ``portal`` now (never two at once for one portal)."""
        async with self._locks[portal]:
            return await self._sync(self.jobs[portal])

    async def _sync(self, job: MirrorJob) -> SyncReport:
        now = self.clock()
        self._attempted[job.portal] = now
        started = time.monotonic()
        days = window(now, self.tz, job.days_ahead)
        report = SyncReport(job.portal, now, 0.0)
        for result in await self._read(job, days):
            if isinstance(result, DayListing):
                await self._apply(job, result, now, report)
            else:
                report.failures.append(result)
        report.duration = time.monotonic() - started
        await self._record(job.portal, now, report)
        return report

    @staticmethod
    async def _read(job: MirrorJob, days: list[dt.date]) -> list[DayResult]:
        try:
            results = await job.read(days)
        except SyncFailure as failure:  # one that concerns every day: the login, the feed
            return [DayFailure(day, failure) for day in days]
        listed = {r.day for r in results}
        missing = [DayFailure(d, SyncFailure("parse", "the source did not answer for this day")) for d in days]
        return [*results, *(f for f in missing if f.day not in listed)]

    async def _apply(self, job: MirrorJob, listing: DayListing, now: float, report: SyncReport) -> None:
        try:
            report.changes.append(await self.store.apply_mirror_day(job.portal, listing, job.source, now))
        except WRITE_ERRORS as err:  # a full disk, a lock held too long: this day keeps what it had
            report.failures.append(DayFailure(listing.day, SyncFailure("store", type(err).__name__)))

    async def _record(self, portal: str, now: float, report: SyncReport) -> None:
        failure = report.first_failure
        added, updated, cancelled = report.totals()
        if failure is None:
            log.info("mirror %s synced: +%d ~%d -%d in %.1fs", portal, added, updated, cancelled, report.duration)
        else:
            log.warning(
                "mirror %s: %d of %d day(s) not synced (%s); the mirror keeps what it had for them",
                portal,
                len(report.failures),
                len(report.failures) + len(report.changes),
                failure,
            )
        booked: int | None = None
        try:
            kind = failure.kind if failure else None
            await self.store.record_mirror_sync(portal, now, kind, failure.detail if failure else None)
            state = await self.store.mirror_state(portal, dt.datetime.fromtimestamp(now, self.tz).date())
            booked = state.booked
        except WRITE_ERRORS as err:
            log.warning("mirror %s: sync outcome not recorded (store: %s)", portal, type(err).__name__)
        if self.metrics is not None:
            self.metrics.synced(portal, report, booked)

    # -- the loop ------------------------------------------------------------------------------------

    def due(self, portal: str, now: float) -> bool:
        last = self._attempted.get(portal)
        return not self.is_down(portal) and (last is None or now - last >= self.jobs[portal].every)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Sync every portal when due, until ``stop`` (or cancelled)."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            for portal in self.jobs:
                if self.due(portal, self.clock()):
                    await self._run_one(portal)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), LOOP_TICK)

    async def _run_one(self, portal: str) -> None:
        try:
            await self.sync(portal)
        except Exception:  # a bug in one portal's source must not stop the others' copies
            log.exception("mirror %s: sync failed unexpectedly", portal)


def summary(report: SyncReport) -> list[dict[str, Any]]:
    """Per day, in order: what `portalguard appointments sync` prints."""
    rows: list[dict[str, Any]] = [
        {"day": c.day, "added": len(c.added), "updated": len(c.updated), "cancelled": len(c.cancelled), "error": None}
        for c in report.changes
    ]
    rows += [{"day": f.day, "error": f"{f.failure.kind}: {f.failure.detail}"} for f in report.failures]
    return sorted(rows, key=lambda r: r["day"])
