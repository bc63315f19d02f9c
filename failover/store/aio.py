"""``AsyncStore``: the store for code on the event loop. The loop never waits on the database.

Every write goes to one writer thread that owns its own connection (a queue and one thread, as
datasette does it): writes are serialised here rather than on SQLite's lock, run in the order they
were submitted, and an fsync or another process holding the write lock stalls that thread only.
Reads run on a few reader threads, each with its own connection; in WAL mode they go on while the
writer (ours or another process's) holds the write lock.

The queries themselves are ``Store``'s (``.sync``): each async method hands the same-named
``Store`` method to the right thread. ``submit_write`` queues a write nobody waits for (heartbeat,
endpoint rows, events); its failures are logged, rate-limited, without data. Durable writes
(booking requests, claims) are awaited: ``await store.add_request(...)`` returns once it is on disk.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection

from failover.crypto import DataKey
from failover.mirror.model import (
    DayChanges,
    DayListing,
    MailApplied,
    MailEffect,
    MailFolderState,
    Mirrored,
    MirrorState,
    UnreadMail,
)
from failover.store.rows import (
    ActionRow,
    BookingRequest,
    EndpointRow,
    Event,
    Lease,
    Maintenance,
    OutboxRow,
    Override,
    PortalRow,
    SiteRow,
    SiteVerdict,
    StaffAccount,
    StoreError,
)
from failover.store.sites import SiteBeat
from failover.store.sync import Portals, Store
from watchdog.clock import steady_time

log = logging.getLogger("portalguard.store")
T = TypeVar("T")
READERS = 3
FAILURE_LOG_EVERY = 60.0  # seconds between two reports of failed fire-and-forget writes


class FailureLog:
    """Reports failed fire-and-forget writes at most once per ``every`` seconds, with a count: a
    store that stays locked must not flood the log. Names the method and the error's type (and a
    StoreError's message, which never holds row data), never the arguments."""

    def __init__(self, every: float = FAILURE_LOG_EVERY, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.every, self.monotonic = every, monotonic
        self._lock = threading.Lock()
        self._last: float | None = None
        self._unreported = 0

    def record(self, method: str, err: BaseException) -> None:
        with self._lock:
            self._unreported += 1
            now = self.monotonic()
            if self._last is not None and now - self._last < self.every:
                return
            count, self._unreported, self._last = self._unreported, 0, now
        reason = str(err) if isinstance(err, StoreError) else type(err).__name__
        log.error("store write %s not saved: %s (%d failed write(s) since the last report)", method, reason, count)


class AsyncStore:
    def __init__(
        self,
        path: str | Path,
        clock: Callable[[], float] = steady_time,
        *,
        readers: int = READERS,
        data_key: DataKey | None = None,
    ) -> None:
        # The queries, and a door for code that must stay synchronous; ``data_key`` as for ``Store``.
        self.sync = Store(path, clock, data_key=data_key)
        self.path, self.clock = self.sync.path, clock
        self.failures = FailureLog()
        self._connections: list[Connection] = []
        self._connections_lock = threading.Lock()
        self._writer = ThreadPoolExecutor(1, "store-writer", initializer=self._own_connection)
        self._readers = ThreadPoolExecutor(readers, "store-reader", initializer=self._own_connection)
        # The leader lease and the heartbeat: never queued behind other writes (a slow one must not
        # cost this process its lease), on a thread and connection of their own.
        self._lease = ThreadPoolExecutor(1, "store-lease", initializer=self._own_connection)
        self._closed = False
        self._submitted: set[asyncio.Future[Any]] = set()

    def _own_connection(self) -> None:
        # A SQLite thread keeps one connection for its life. A PostgreSQL thread checks one out of the
        # engine's pool per call instead: a kept connection dies with a server restart, and a pool
        # checkout is pinged and replaced. Never raises: a failing initializer breaks the whole pool
        # for good (every later call would fail), where a failing call fails only itself.
        if self.sync.engine.dialect.name != "sqlite":
            return
        try:
            conn = self.sync.own_thread_connection()
        except Exception as err:  # the call that needs it reports the failure again, with its own words
            log.warning("store %s: a thread starts without its own connection: %s", self.path, type(err).__name__)
            return
        with self._connections_lock:
            self._connections.append(conn)

    # -- plumbing -----------------------------------------------------------------------------

    def _submit(self, pool: ThreadPoolExecutor, method: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        try:
            return pool.submit(method, *args, **kwargs)
        except RuntimeError:  # the pool is shut down
            raise StoreError(f"store {self.path} is closed") from None

    async def _read(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.wrap_future(self._submit(self._readers, method, *args, **kwargs))

    async def on_reader(self, work: Callable[[Store], T]) -> T:
        """``work(store)`` on a reader thread: several reads that make one page (the availability report)."""
        return await self._read(work, self.sync)

    async def _write(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.wrap_future(self._submit(self._writer, method, *args, **kwargs))

    def submit_write(self, method: str, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        """Queue the write ``Store.<method>(*args, **kwargs)`` and return at once (e.g.
        ``store.submit_write("add_event", "tick")``). It runs after every write submitted before it;
        a failure is logged (rate-limited) and told to ``write_failed``, never raised. By name, so a
        subclass can keep what failed and write it again (``failover.resilient``)."""
        future = asyncio.wrap_future(self._submit(self._writer, getattr(self.sync, method), *args, **kwargs))
        self._submitted.add(future)
        future.add_done_callback(functools.partial(self._submitted_done, method))
        return future

    def _submitted_done(self, method: str, future: asyncio.Future[Any]) -> None:
        self._submitted.discard(future)
        if future.cancelled():
            return
        err = future.exception()  # retrieved: never "exception was never retrieved"
        if err is None:
            self.write_succeeded(method)
        else:
            self.failures.record(method, err)
            self.write_failed(method, err)

    def write_succeeded(self, method: str) -> None:
        """Hook: a submitted write reached the store."""

    def write_failed(self, method: str, err: BaseException) -> None:
        """Hook: a submitted write failed (already logged)."""

    async def flush(self) -> None:
        """Wait until every submitted write has run (tests, shutdown)."""
        while self._submitted:
            await asyncio.gather(*list(self._submitted), return_exceptions=True)

    async def close(self) -> None:
        """Wait for every queued write (fire-and-forget ones too), then close the connections."""
        if self._closed:
            return
        await self.flush()
        self._closed = True
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self._lease.shutdown(wait=True)
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self.sync.close()

    # -- the Store's methods, on the right thread ---------------------------------------------

    async def schema_version(self) -> int:
        return await self._read(self.sync.schema_version)

    async def writable(self) -> bool:
        return await self._write(self.sync.writable)

    async def damage(self) -> str | None:
        return await self._read(self.sync.damage)

    async def portal(self, portal: str) -> PortalRow:
        return await self._read(self.sync.portal, portal)

    async def set_failover(self, portal: str, on: bool, reason: str) -> PortalRow:
        return await self._write(self.sync.set_failover, portal, on, reason)

    async def set_verdict(self, portal: str, verdict: str, since: float) -> None:
        await self._write(self.sync.set_verdict, portal, verdict, since)

    async def set_page(self, portal: str, on: bool) -> None:
        await self._write(self.sync.set_page, portal, on)

    async def put_endpoint(self, row: EndpointRow) -> None:
        await self._write(self.sync.put_endpoint, row)

    async def endpoints(self, portal: str) -> list[EndpointRow]:
        return await self._read(self.sync.endpoints, portal)

    async def set_value(self, key: str, value: Any) -> None:
        await self._write(self.sync.set_value, key, value)

    async def value(self, key: str, default: Any = None) -> Any:
        return await self._read(self.sync.value, key, default)

    async def action(self, portal: str, action: str) -> ActionRow:
        return await self._read(self.sync.action, portal, action)

    async def actions(self, portal: str) -> list[ActionRow]:
        return await self._read(self.sync.actions, portal)

    async def put_action(self, row: ActionRow) -> None:
        await self._write(self.sync.put_action, row)

    async def clear_permanent_errors(self, portal: str | None = None) -> int:
        return await self._write(self.sync.clear_permanent_errors, portal)

    async def set_override(self, portal: str, mode: str, reason: str, expires: float | None) -> None:
        await self._write(self.sync.set_override, portal, mode, reason, expires)

    async def clear_override(self, portal: str) -> bool:
        return await self._write(self.sync.clear_override, portal)

    async def override(self, portal: str, now: float | None = None) -> Override | None:
        return await self._read(self.sync.override, portal, now)

    async def add_maintenance(self, portal: str, start: float, end: float, mode: str, reason: str) -> int:
        return await self._write(self.sync.add_maintenance, portal, start, end, mode, reason)

    async def remove_maintenance(self, window_id: int) -> bool:
        return await self._write(self.sync.remove_maintenance, window_id)

    async def maintenance(self, portal: str | None = None, include_past: bool = False) -> list[Maintenance]:
        return await self._read(self.sync.maintenance, portal, include_past)

    async def active_maintenance(self, portal: str, now: float) -> Maintenance | None:
        return await self._read(self.sync.active_maintenance, portal, now)

    async def add_event(self, kind: str, portal: str | None = None, action: str | None = None, **detail: Any) -> None:
        await self._write(self.sync.add_event, kind, portal, action, **detail)

    async def events(
        self,
        portal: str | None = None,
        since: float | None = None,
        kinds: tuple[str, ...] = (),
        limit: int = 10_000,
    ) -> list[Event]:
        return await self._read(self.sync.events, portal, since, kinds, limit)

    async def purge_audit(
        self,
        older_than: float,
        claims_older_than: float | None = None,
        kept_kinds: tuple[str, ...] = (),
        kept_older_than: float | None = None,
    ) -> int:
        return await self._write(self.sync.purge_audit, older_than, claims_older_than, kept_kinds, kept_older_than)

    async def claim(self, key: str) -> bool:
        return await self._write(self.sync.claim, key)

    async def claimed(self, key: str) -> bool:
        return await self._read(self.sync.claimed, key)

    async def enqueue(self, claim: str, rows: list[OutboxRow]) -> bool:
        return await self._write(self.sync.enqueue, claim, rows)

    async def due_outbox(self, now: float, limit: int = 50) -> list[OutboxRow]:
        return await self._read(self.sync.due_outbox, now, limit)

    async def outbox(self, claim: str | None = None) -> list[OutboxRow]:
        return await self._read(self.sync.outbox, claim)

    async def update_outbox_delivery(self, row: OutboxRow) -> None:
        await self._write(self.sync.update_outbox_delivery, row)

    async def requeue_interrupted_sends(self) -> int:
        return await self._write(self.sync.requeue_interrupted_sends)

    async def add_request(self, portal: str, data: dict[str, Any]) -> int:
        return await self._write(self.sync.add_request, portal, data)

    async def add_form_request(self, portal: str, data: dict[str, Any], form: str) -> tuple[int, bool]:
        return await self._write(self.sync.add_form_request, portal, data, form)

    async def request(self, request_id: int) -> BookingRequest | None:
        return await self._read(self.sync.request, request_id)

    async def requests(
        self, status: str | None = None, portal: Portals = None, limit: int = 10_000
    ) -> list[BookingRequest]:
        return await self._read(self.sync.requests, status, portal, limit)

    async def add_staff_account(self, name: str, role: str, password_hash: str) -> bool:
        return await self._write(self.sync.add_staff_account, name, role, password_hash)

    async def staff_account(self, name: str) -> StaffAccount | None:
        return await self._read(self.sync.staff_account, name)

    async def staff_accounts(self) -> list[StaffAccount]:
        return await self._read(self.sync.staff_accounts)

    async def set_staff_password(self, name: str, password_hash: str) -> bool:
        return await self._write(self.sync.set_staff_password, name, password_hash)

    async def set_staff_role(self, name: str, role: str) -> bool:
        return await self._write(self.sync.set_staff_role, name, role)

    async def remove_staff_account(self, name: str) -> bool:
        return await self._write(self.sync.remove_staff_account, name)

    async def record_staff_login(self, name: str, failures: int, next_login: float) -> bool:
        return await self._write(self.sync.record_staff_login, name, failures, next_login)

    async def set_request_status(self, request_id: int, status: str) -> bool:
        return await self._write(self.sync.set_request_status, request_id, status)

    async def purge_requests(self, older_than: float) -> int:
        return await self._write(self.sync.purge_requests, older_than)

    async def count_requests(self, portal: str | None = None) -> int:
        return await self._read(self.sync.count_requests, portal)

    async def seal_plaintext_requests(self) -> int:
        return await self._write(self.sync.seal_plaintext_requests)

    async def apply_mirror_day(self, portal: str, listing: DayListing, source: str, now: float) -> DayChanges:
        return await self._write(self.sync.apply_mirror_day, portal, listing, source, now)

    async def record_mirror_sync(self, portal: str, now: float, error_kind: str | None, error: str | None) -> None:
        await self._write(self.sync.record_mirror_sync, portal, now, error_kind, error)

    async def appointments(self, portal: Portals, first_day: dt.date, last_day: dt.date) -> list[Mirrored]:
        return await self._read(self.sync.appointments, portal, first_day, last_day)

    async def mirror_state(self, portal: str, today: dt.date) -> MirrorState:
        return await self._read(self.sync.mirror_state, portal, today)

    async def count_appointments(self, portal: str, day: dt.date) -> int:
        return await self._read(self.sync.count_appointments, portal, day)

    async def purge_appointments(
        self, started_before: float, portal: str | None = None, *, other_than: Collection[str] = ()
    ) -> int:
        return await self._write(self.sync.purge_appointments, started_before, portal, other_than=other_than)

    # -- the mirror's mail source ---------------------------------------------------------------

    async def open_mail_folder(self, portal: str, folder: str, uidvalidity: int) -> MailFolderState:
        return await self._write(self.sync.open_mail_folder, portal, folder, uidvalidity)

    async def apply_mail(
        self, portal: str, folder: str, uidvalidity: int, uid: int, effect: MailEffect, now: float
    ) -> MailApplied:
        return await self._write(self.sync.apply_mail, portal, folder, uidvalidity, uid, effect, now)

    async def record_mail_check(
        self, portal: str, folder: str, now: float, error_kind: str | None, error: str | None
    ) -> None:
        await self._write(self.sync.record_mail_check, portal, folder, now, error_kind, error)

    async def mail_state(self, portal: str, folder: str | None = None) -> MailFolderState | None:
        return await self._read(self.sync.mail_state, portal, folder)

    async def unread_mails(self, portal: str | None = None, since: float = 0.0) -> list[tuple[str, UnreadMail]]:
        return await self._read(self.sync.unread_mails, portal, since)

    async def purge_unread_mails(self, received_before: float) -> int:
        return await self._write(self.sync.purge_unread_mails, received_before)

    # -- several instances: heartbeat, verdicts, the leader lease (on the lease thread) -------------

    async def beat(self, beat: SiteBeat) -> None:
        await asyncio.wrap_future(self._submit(self._lease, self.sync.beat, beat))

    async def leave(self, site: str) -> None:
        await asyncio.wrap_future(self._submit(self._lease, self.sync.leave, site))

    async def take_lease(self, site: str, seconds: float, token: int | None) -> Lease:
        return await asyncio.wrap_future(self._submit(self._lease, self.sync.take_lease, site, seconds, token))

    async def resign(self, site: str, token: int) -> bool:
        return await asyncio.wrap_future(self._submit(self._lease, self.sync.resign, site, token))

    async def site_view(self) -> tuple[list[SiteRow], list[SiteVerdict], Lease | None]:
        return await self._read(self.sync.site_view)

    async def fence_check(self) -> None:
        """In order with the writes before it: the fence holds right now, or ``FencedOut``."""
        await self._write(self.sync.fence_check)


def describe_error(err: BaseException) -> str:
    """A store error for logs, /healthz and staff: the database's words never quote the values written."""
    return f"{type(err).__name__}: {err}"[:200]
