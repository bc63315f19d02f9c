"""The store as the running service uses it: the ``AsyncStore`` API, where a write that fails (a full
disk, a read-only file, a lock held too long) never stops failover.

- The portals' state (failover switch, incident, fallback page switch) lives in memory, loaded at
  start: deciding and ``/book`` never wait for, nor depend on, the database.
- A state write that fails (a failover switch, the page switch, an action's row, a claim, a named
  value) is kept in a journal and answered from memory meanwhile; the journal is written again, in
  order, once the store takes writes (``replay_due``, every ``REPLAY_EVERY`` seconds at most).
- The staff outbox likewise: a message enqueued, or a delivery's state, that cannot be written is
  kept in memory and delivered from there (a full disk is exactly when staff must hear), then
  written with the journal.
- Fire-and-forget writes (heartbeat, endpoint rows, verdicts, audit events) that fail are dropped
  and counted: the next one supersedes them, or they are audit only.
- The appointment mirror's writes (``apply_mirror_day``, ``record_mirror_sync``) are neither kept
  nor answered from memory: one that fails raises to the sync (which counts it and tries the day
  again at its next run: a later listing supersedes it) and is counted here like any failed write.
  Deciding never waits for them. A ``DataKeyError`` (no data key, or the wrong one) is the
  config's problem, not the disk's: it raises without marking the store failing.
- ``health`` says whether the store is failing, since when and why: ``/healthz``, the metrics and
  the staff alert read it.

Only the service writes portal state, so memory is the truth while it runs. Claims kept in memory
are exactly-once within this process only: a crash before they are written may repeat a message,
which beats telling nobody while the disk is full. With several instances the same holds while this
process leads: it keeps a claim in memory only before its lease's local deadline (no other site can
lead before that), and drops what it kept when it loses the lease (``forget_unwritten``): the next
leader may send such a message again, never none.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from failover.crypto import DataKey
from failover.metrics import FailoverMetrics
from failover.mirror.model import DayChanges, DayListing
from failover.store import (
    ActionRow,
    AsyncStore,
    DataKeyError,
    FencedOut,
    OutboxRow,
    PortalRow,
    StoreError,
    describe_error,
)
from watchdog.clock import steady_time

log = logging.getLogger("portalguard.store")
T = TypeVar("T")

WRITE_ERRORS = (StoreError, sqlite3.Error, OSError)
REPLAY_EVERY = 5.0  # seconds between attempts to write the journal again
MAX_JOURNAL = 10_000  # writes kept; coalescing keeps it far below this (one row per action/value)
# A lock held by another process (a backup) clears by itself within seconds; a full disk does not.
ALERT_AFTER = 30.0
_PLAIN_FATAL = ("full", "readonly", "read-only", "disk i/o")
_MAYBE_DAMAGED = ("malformed", "not a database", "corrupt")
CHECK_DAMAGE_EVERY = 60.0  # PRAGMA quick_check reads the whole file: not at every failed write


class StoreHealth:
    """Whether the store takes writes; the metrics follow every change."""

    def __init__(self, metrics: FailoverMetrics | None, clock: Callable[[], float]) -> None:
        self.metrics = metrics
        self.clock = clock
        self.failing_since: float | None = None
        self.last_error = ""
        self.fatal = False  # the error will not clear by itself (disk full, read-only)
        self.errors = 0
        self.pending = 0
        self.damaged: str | None = None  # what PRAGMA quick_check found: restore from a backup

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def failed(self, err: BaseException) -> None:
        self.errors += 1
        self.last_error = describe_error(err)
        self.fatal = self.fatal or _fatal(err)
        if self.failing_since is None:
            self.failing_since = self.clock()
            log.error(
                "store cannot write (%s): failover goes on from memory; free disk space or fix the store "
                "file's permissions, it is written again by itself",
                self.last_error,
            )
        if self.metrics is not None:
            self.metrics.store_writable.set(0)
            self.metrics.store_up.set(0)

    def unreadable(self) -> None:
        """A read failed (the writes may not have been tried yet): the store does not answer. The
        next write that succeeds says it answers again (``ok``)."""
        if self.metrics is not None:
            self.metrics.store_up.set(0)

    def answered(self) -> None:
        """A write reached the store: it answers (``ok`` once nothing is left to write again)."""
        if self.metrics is not None:
            self.metrics.store_up.set(1)

    def ok(self) -> None:
        """A write reached the store and nothing is left to write again."""
        if self.failing_since is not None:
            log.warning("store writable again after %.0f s", self.clock() - self.failing_since)
        self.failing_since, self.fatal, self.damaged = None, False, None
        if self.metrics is not None:
            self.metrics.store_writable.set(1)
            self.metrics.store_up.set(1)
            self.metrics.store_damaged.set(0)

    def set_pending(self, n: int) -> None:
        self.pending = n

    def alert_due(self, now: float) -> bool:
        """Tell staff: the failure will not clear by itself, or has lasted ``ALERT_AFTER``."""
        return self.failing_since is not None and (
            self.fatal or self.damaged is not None or now - self.failing_since >= ALERT_AFTER
        )

    def found_damage(self, damage: str) -> None:
        if self.damaged is None:
            log.error("store damaged (%s): restore it from the latest backup (README: Running in production)", damage)
        self.damaged = damage
        if self.metrics is not None:
            self.metrics.store_damaged.set(1)
        if self.failing_since is None:
            self.failing_since = self.clock()


def _fatal(err: BaseException) -> bool:
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
        return True
    return any(word in str(err).lower() for word in _PLAIN_FATAL)


@dataclass(eq=False, slots=True)  # identity: the replay removes exactly the entry it wrote
class _Write:
    method: str
    args: tuple[Any, ...]
    key: tuple[str, ...] | None = None  # a later write with the same key supersedes this one
    kwargs: dict[str, Any] = field(default_factory=dict)


class ResilientStore(AsyncStore):
    def __init__(
        self,
        path: str | Path,
        clock: Callable[[], float] = steady_time,
        metrics: FailoverMetrics | None = None,
        *,
        data_key: DataKey | None = None,
    ) -> None:
        super().__init__(path, clock, data_key=data_key)
        self.health = StoreHealth(metrics, clock)
        self._portals: dict[str, PortalRow] = {}  # the truth while the service runs
        # Written but not yet in the store: answered from here until the journal is empty.
        self._actions: dict[tuple[str, str], ActionRow] = {}
        self._claims: set[str] = set()
        self._values: dict[str, Any] = {}
        self._outbox: dict[tuple[str, str], OutboxRow] = {}  # (claim, target): newer than the store's
        self._journal: list[_Write] = []
        self._damage_checked = -CHECK_DAMAGE_EVERY
        self._damage_checks: set[asyncio.Task[None]] = set()
        self._replay: asyncio.Task[None] | None = None
        self._next_replay = 0.0

    async def load(self, portals: Iterable[str]) -> None:
        """Read the portals' state into memory (at start, before anything asks)."""
        for pid in portals:
            self._portals[pid] = await super().portal(pid)

    # -- portals: memory first ----------------------------------------------------------------

    async def portal(self, portal: str) -> PortalRow:
        row = self._portals.get(portal)
        if row is None:
            row = self._portals[portal] = await super().portal(portal)
        return row

    async def set_failover(self, portal: str, on: bool, reason: str) -> PortalRow:
        row = _switched(await self.portal(portal), on, reason, self.clock())
        self._portals[portal] = row
        await self._write_or_keep(_Write("set_failover", (portal, on, reason)))  # never coalesced: incidents count
        return row

    async def set_page(self, portal: str, on: bool) -> None:
        self._portals[portal] = replace(await self.portal(portal), page_on=on)
        await self._write_or_keep(_Write("set_page", (portal, on), ("page", portal)))

    # -- rows and claims: memory while not written ----------------------------------------------

    async def action(self, portal: str, action: str) -> ActionRow:
        row = self._actions.get((portal, action))
        return row if row is not None else await super().action(portal, action)

    async def put_action(self, row: ActionRow) -> None:
        key = (row.portal, row.action)
        self._actions[key] = replace(row, updated=self.clock())  # as the store would stamp it
        if await self._write_or_keep(_Write("put_action", (row,), ("action", *key))):
            self._actions.pop(key, None)

    async def value(self, key: str, default: Any = None) -> Any:
        return self._values[key] if key in self._values else await super().value(key, default)

    async def set_value(self, key: str, value: Any) -> None:
        self._values[key] = value
        if await self._write_or_keep(_Write("set_value", (key, value), ("value", key))):
            self._values.pop(key, None)

    async def claim(self, key: str) -> bool:
        if key in self._claims:
            return False
        if not self._journal:
            try:
                won = await super().claim(key)
            except WRITE_ERRORS as err:
                self._failed("claim", err)
            else:
                self._succeeded()
                return won
        with contextlib.suppress(*WRITE_ERRORS):  # reading may still work on a full disk
            if await super().claimed(key):
                return False
        self._claims.add(key)
        self._keep(_Write("claim", (key,)))
        return True

    async def claimed(self, key: str) -> bool:
        return key in self._claims or await super().claimed(key)

    # -- the staff outbox: memory while not written ---------------------------------------------

    async def enqueue(self, claim: str, rows: list[OutboxRow]) -> bool:
        if claim in self._claims:
            return False
        if not self._journal:
            try:
                won = await super().enqueue(claim, rows)
            except WRITE_ERRORS as err:
                self._failed("enqueue", err)
            else:
                self._succeeded()
                return won
        with contextlib.suppress(*WRITE_ERRORS):
            if await super().claimed(claim):
                return False
        kept = [r for r in rows if r.after is None or await self._has_row(r.after, r.target)]
        self._claims.add(claim)
        for row in kept:
            self._outbox[(row.claim, row.target)] = row
        self._keep(_Write("enqueue", (claim, kept)))
        return True

    async def update_outbox_delivery(self, row: OutboxRow) -> None:
        key = (row.claim, row.target)
        self._outbox[key] = row  # also while the write is under way: the delivery loop reads it
        if await self._write_or_keep(_Write("update_outbox_delivery", (row,), ("outbox", *key))):
            self._outbox.pop(key, None)

    async def due_outbox(self, now: float, limit: int = 50) -> list[OutboxRow]:
        try:
            stored = await super().due_outbox(now, limit)
        except WRITE_ERRORS as err:  # delivering what memory holds goes on
            log.warning("store: outbox not read: %s", describe_error(err))
            stored = []
        due = [r for r in stored if (r.claim, r.target) not in self._outbox]
        for row in list(self._outbox.values()):
            if row.state == "pending" and row.next_try <= now and await self._first_sent(row):
                due.append(row)
        return due[:limit]

    async def outbox(self, claim: str | None = None) -> list[OutboxRow]:
        rows = {(r.claim, r.target): r for r in await super().outbox(claim)}
        rows.update({k: r for k, r in self._outbox.items() if claim is None or r.claim == claim})
        return sorted(rows.values(), key=lambda r: (r.created, r.claim, r.target))

    async def requeue_interrupted_sends(self) -> int:
        try:
            return await super().requeue_interrupted_sends()
        except WRITE_ERRORS as err:  # at start: written with the journal, delivered from then on
            self._failed("requeue_interrupted_sends", err)
            self._keep(_Write("requeue_interrupted_sends", (), ("requeue",)))
            return 0

    async def _has_row(self, claim: str, target: str) -> bool:
        try:
            return any(r.target == target for r in await self.outbox(claim))
        except WRITE_ERRORS:  # cannot tell: better a "recovered" too many than one missing
            return True

    async def _first_sent(self, row: OutboxRow) -> bool:
        if row.after is None:
            return True
        try:
            return any(r.target == row.target and r.state == "sent" for r in await self.outbox(row.after))
        except WRITE_ERRORS:
            return False

    async def add_request(self, portal: str, data: dict[str, Any]) -> int:
        # Never kept in memory: the patient is told it failed and to phone (a lost request is worse).
        try:
            number = await super().add_request(portal, data)
        except WRITE_ERRORS as err:
            self.health.failed(err)  # the web app logs it and answers 503 with the phone number
            raise
        self._succeeded()
        return int(number)

    async def add_form_request(self, portal: str, data: dict[str, Any], form: str) -> tuple[int, bool]:
        try:  # like add_request: never kept in memory
            number, new = await super().add_form_request(portal, data, form)
        except WRITE_ERRORS as err:
            self.health.failed(err)
            raise
        self._succeeded()
        return int(number), new

    # -- the appointment mirror: counted when it fails, never kept --------------------------------

    async def apply_mirror_day(self, portal: str, listing: DayListing, source: str, now: float) -> DayChanges:
        return await self._counted("apply_mirror_day", super().apply_mirror_day(portal, listing, source, now))

    async def record_mirror_sync(self, portal: str, now: float, error_kind: str | None, error: str | None) -> None:
        await self._counted("record_mirror_sync", super().record_mirror_sync(portal, now, error_kind, error))

    async def _counted(self, method: str, write: Awaitable[T]) -> T:
        try:
            result = await write
        except DataKeyError:
            raise  # the config's data_key, not the disk
        except WRITE_ERRORS as err:
            log.warning("store: %s not written: %s", method, describe_error(err))
            self.health.failed(err)
            self._maybe_check_damage(err)
            raise
        self._succeeded()
        return result

    async def writable(self) -> bool:
        """``Store.writable``'s test write, keeping the error's words for /healthz and staff; a
        success is a good moment to write what was kept."""
        try:
            await super().set_value("writable_check", self.clock())
        except WRITE_ERRORS as err:
            self.health.failed(err)  # a test write only: nothing to keep
            self._maybe_check_damage(err)
            return False
        self._succeeded()
        self.replay_due(self.clock())
        return True

    # -- fire-and-forget ------------------------------------------------------------------------

    def submit_write(self, method: str, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        if method == "set_verdict" and args and args[0] in self._portals:  # /staff shows it from memory
            pid, verdict, since = args
            self._portals[pid] = replace(self._portals[pid], verdict=verdict, verdict_since=since)
        return super().submit_write(method, *args, **kwargs)

    def write_succeeded(self, method: str) -> None:
        self._succeeded()

    def write_failed(self, method: str, err: BaseException) -> None:
        self.health.failed(err)  # dropped: superseded by the next one, or audit only

    # -- the journal ----------------------------------------------------------------------------

    async def _write_or_keep(self, write: _Write) -> bool:
        """Write now, or keep it for later; True if it reached the store."""
        if self._journal:  # behind the writes still waiting: the store sees them in order
            self._keep(write)
            return False
        try:
            await getattr(super(), write.method)(*write.args, **write.kwargs)
        except WRITE_ERRORS as err:
            self._failed(write.method, err)
            self._keep(write)
            return False
        self._succeeded()
        return True

    def _keep(self, write: _Write) -> None:
        if write.key is not None:
            self._journal = [w for w in self._journal if w.key != write.key]
        self._journal.append(write)
        if len(self._journal) > MAX_JOURNAL:
            dropped = self._journal.pop(0)
            log.error("store: %s dropped, %d writes already waiting for the store", dropped.method, MAX_JOURNAL)
        self.health.set_pending(len(self._journal))

    def _failed(self, method: str, err: BaseException) -> None:
        log.warning("store: %s kept in memory, not written yet: %s", method, describe_error(err))
        self.health.failed(err)
        self._maybe_check_damage(err)

    def _maybe_check_damage(self, err: BaseException) -> None:
        """A failure that may be damage: ask SQLite (``PRAGMA quick_check``), at most once a minute."""
        now = self.clock()
        words = describe_error(err).lower()
        if not any(w in words for w in _MAYBE_DAMAGED) or now - self._damage_checked < CHECK_DAMAGE_EVERY:
            return
        self._damage_checked = now
        task = asyncio.get_running_loop().create_task(self._check_damage())
        self._damage_checks.add(task)
        task.add_done_callback(self._damage_checks.discard)

    async def _check_damage(self) -> None:
        try:
            damage = await self.damage()
        except StoreError:  # closing: the next start checks again
            return
        if damage is not None:
            self.health.found_damage(damage)

    def _succeeded(self) -> None:
        self.health.answered()  # up, even while kept writes still wait for their replay
        if not self._journal:
            self.health.ok()

    @property
    def pending(self) -> int:
        return len(self._journal)

    def replay_due(self, now: float) -> None:
        """Try the kept writes again if it is time (called every tick; returns at once)."""
        if not self._journal or (self._replay is not None and not self._replay.done()) or now < self._next_replay:
            return
        self._next_replay = now + REPLAY_EVERY
        self._replay = asyncio.get_running_loop().create_task(self._write_journal(), name="store replay")

    async def _write_journal(self) -> None:
        written = 0
        while self._journal:
            write = self._journal[0]
            try:
                await getattr(super(), write.method)(*write.args, **write.kwargs)
            except WRITE_ERRORS as err:
                self.health.failed(err)
                return
            except FencedOut:  # kept while we led; another site leads now and decides afresh
                log.warning("store: %s kept in memory not written: no longer the leader", write.method)
                written -= 1
            with contextlib.suppress(ValueError):  # superseded meanwhile: already gone
                self._journal.remove(write)
            written += 1
            self.health.set_pending(len(self._journal))
        # Everything is in the store now: the overlays have nothing the store lacks.
        self._actions.clear()
        self._claims.clear()
        self._values.clear()
        self._outbox.clear()
        log.warning("store: %d write(s) kept in memory are written now", written)
        self.health.ok()

    async def refresh(self, portals: Iterable[str]) -> None:
        """A follower's view of the portals: the leader's writes, read again (``/book`` and ``/staff``
        answer from memory)."""
        for pid in portals:
            self._portals[pid] = await AsyncStore.portal(self, pid)

    def forget_unwritten(self) -> int:
        """No longer the leader: what it kept in memory is the next leader's to decide, not ours to
        write later (it may repeat a message, never lose one). Returns how many writes were dropped."""
        dropped = len(self._journal)
        self._journal.clear()
        self._actions.clear()
        self._claims.clear()
        self._values.clear()
        self._outbox.clear()
        self.health.set_pending(0)
        if dropped:
            log.warning("store: %d write(s) kept in memory dropped: another site leads now", dropped)
        return dropped

    async def flush(self) -> None:
        """Also the replay of kept writes, if one runs."""
        await super().flush()
        if self._replay is not None:
            await asyncio.gather(self._replay, return_exceptions=True)

    async def write_kept(self) -> None:
        """Every queued write, and one try at what was kept in memory: a leader's last step before it
        gives its lease up (after that its fenced writes are refused)."""
        await self.flush()
        if self._journal:
            await self._write_journal()

    async def close(self) -> None:
        await self.flush()
        if self._journal:  # one last try: what is not written now is lost
            await self._write_journal()
        if self._journal:
            log.error("store: %d state write(s) lost at shutdown (the store could not write)", len(self._journal))
        await asyncio.gather(*self._damage_checks, return_exceptions=True)
        await super().close()


def _switched(row: PortalRow, on: bool, reason: str, now: float) -> PortalRow:
    """What ``Store.set_failover`` makes of the row (a new incident with each switch on)."""
    if row.failover == on:
        return row
    row = replace(row, failover=on, since=now, reason=reason)
    if on:
        row = replace(row, incident=row.incident + 1, outage_since=now, outage_reason=reason)
    return row
