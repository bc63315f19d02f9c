"""The mail source's loop: every portal's mailbox watched, each new mail read once.

Per portal, a task (the mailbox has nothing to do with the portal being up: it keeps its mails when
the portal dies, which is the point) that connects, EXAMINEs the folder and reads every mail after
the last UID processed; then it waits with IDLE when the server offers it (a booking mail is in the
mirror within seconds), else ``every``, and reads again. Each mail's effect and its UID are written
in one transaction (``Store.apply_mail``); a changed UIDVALIDITY reads the folder again from its
start (``Store.open_mail_folder``). The blocking ``imaplib`` calls run on a thread of the portal's own.

A connection that fails is retried with exponential backoff and jitter (1 s .. 5 min); a permanent
failure (a certificate that does not verify, a refused login) stops that portal's mailbox until a
restart, logged once. Logs carry counts and the host, never a name, a subject or the password.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from failover.mirror.mail.config import ImapUrl, MailSource
from failover.mirror.mail.decode import parse_mail
from failover.mirror.mail.imap import Mailbox
from failover.mirror.mail.templates import read
from failover.mirror.model import MailApplied, MailEffect, MailFailure, MailFolderState, UnreadMail
from failover.resilient import WRITE_ERRORS

log = logging.getLogger("portalguard.mirror.mail")

IDLE_WAIT = 300.0  # an IDLE is ended and the folder read again this often (RFC 2177: below 29 min)
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 300.0


class MailStore(Protocol):
    async def open_mail_folder(self, portal: str, folder: str, uidvalidity: int) -> MailFolderState: ...

    async def apply_mail(
        self, portal: str, folder: str, uidvalidity: int, uid: int, effect: MailEffect, now: float
    ) -> MailApplied: ...

    async def record_mail_check(
        self, portal: str, folder: str, now: float, error_kind: str | None, error: str | None
    ) -> None: ...


class MailGauges(Protocol):
    def mail_checked(self, portal: str, now: float) -> None: ...

    def mail_unparsed_one(self, portal: str) -> None: ...

    def mail_ignored_one(self, portal: str) -> None: ...


@dataclass(frozen=True, slots=True)
class MailJob:
    portal: str
    cfg: MailSource

    @property
    def url(self) -> ImapUrl:
        return self.cfg.url


@dataclass(slots=True)
class CheckReport:
    """One read of the new mails of a folder: counts by outcome (the log, tests)."""

    portal: str
    mails: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    unread: int = 0  # newly listed for staff
    ignored: int = 0  # from senders not in ``from``
    last_uid: int = 0  # the folder's last UID processed


class MailWatch:
    def __init__(
        self,
        jobs: Mapping[str, MailJob],
        store: MailStore,
        tz: ZoneInfo,
        clock: Callable[[], float],
        metrics: MailGauges | None = None,
        mailbox: Callable[..., Mailbox] = Mailbox,
    ) -> None:
        self.jobs = dict(jobs)
        self.store = store
        self.tz = tz
        self.clock = clock
        self.metrics = metrics
        self.mailbox = mailbox
        self._stop = threading.Event()  # seen by an IDLE waiting in its thread
        self.permanent: dict[str, MailFailure] = {}

    # -- one check -----------------------------------------------------------------------------------

    async def check(self, portal: str) -> CheckReport:
        """Connect, read every new mail once, disconnect (``appointments sync``, tests). Raises
        ``MailFailure``; the outcome is recorded."""
        job = self.jobs[portal]
        pool = ThreadPoolExecutor(1, thread_name_prefix=f"mail-{portal}")
        box = self.mailbox(job.url, ca_file=job.cfg.ca_file)
        try:
            uidvalidity = await self._run(pool, box.open)
            state = await self._opened(job, uidvalidity)
            return await self._read_new(job, box, pool, uidvalidity, state.last_uid)
        except MailFailure as failure:
            await self._record(job, failure)
            raise
        finally:
            await self._run(pool, box.close)
            pool.shutdown(wait=False)

    async def _opened(self, job: MailJob, uidvalidity: int) -> MailFolderState:
        try:
            state = await self.store.open_mail_folder(job.portal, job.url.folder, uidvalidity)
        except WRITE_ERRORS as err:
            raise MailFailure("store", type(err).__name__) from None
        if state.last_uid == 0:
            log.info("mail %s: reading %s from its first mail (UIDVALIDITY %d)", job.portal, job.url.where, uidvalidity)
        return state

    async def _read_new(
        self, job: MailJob, box: Mailbox, pool: ThreadPoolExecutor, uidvalidity: int, last_uid: int
    ) -> CheckReport:
        report = CheckReport(job.portal, last_uid=last_uid)
        for uid in await self._run(pool, box.uids_after, last_uid):
            fetched = await self._run(pool, box.fetch, uid)
            now = self.clock()
            effect: MailEffect = None
            if fetched is not None:
                raw, arrived = fetched
                received = now if arrived is None else min(arrived, now)
                effect = read(job.cfg, parse_mail(raw), received, self.tz).effect
                if effect is None:
                    report.ignored += 1
            try:
                applied = await self.store.apply_mail(job.portal, job.url.folder, uidvalidity, uid, effect, now)
            except WRITE_ERRORS as err:  # nothing of this mail was written: it is read again next time
                raise MailFailure("store", type(err).__name__) from None
            report.mails += 1
            report.last_uid = uid
            if applied.appointment is not None:
                report.outcomes[applied.appointment] = report.outcomes.get(applied.appointment, 0) + 1
            if applied.unread_new:
                report.unread += 1
                if self.metrics is not None:
                    self.metrics.mail_unparsed_one(job.portal)
            if effect is None and self.metrics is not None:
                self.metrics.mail_ignored_one(job.portal)
        await self._record(job, None)
        if report.mails:
            counts = " ".join(f"{k}={v}" for k, v in sorted(report.outcomes.items()))
            log.info(
                "mail %s: %d new mail(s): %s; %d unread (check the templates), %d from other senders",
                job.portal,
                report.mails,
                counts or "no bookings",
                report.unread,
                report.ignored,
            )
            if report.unread:
                log.warning(
                    "mail %s: %d mail(s) no template could read: see /staff/appointments", job.portal, report.unread
                )
        return report

    async def _record(self, job: MailJob, failure: MailFailure | None) -> None:
        now = self.clock()
        kind, detail = (failure.kind, failure.detail) if failure else (None, None)
        try:
            await self.store.record_mail_check(job.portal, job.url.folder, now, kind, detail)
        except WRITE_ERRORS as err:
            log.warning("mail %s: check outcome not recorded (store: %s)", job.portal, type(err).__name__)
        if failure is None and self.metrics is not None:
            self.metrics.mail_checked(job.portal, now)

    @staticmethod
    async def _run(pool: ThreadPoolExecutor, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    # -- the loop ------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Watch every portal's mailbox until ``stop`` (or cancelled)."""
        stop = stop or asyncio.Event()
        self._stop.clear()
        tasks = [asyncio.create_task(self._watch(job, stop), name=f"mail {pid}") for pid, job in self.jobs.items()]
        relay = asyncio.create_task(self._relay(stop), name="mail stop")
        try:
            await asyncio.gather(*tasks)
        finally:
            self._stop.set()
            for task in [*tasks, relay]:
                task.cancel()
            await asyncio.gather(*tasks, relay, return_exceptions=True)

    async def _relay(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stop.set()  # an IDLE waiting in its thread ends within a second

    async def _watch(self, job: MailJob, stop: asyncio.Event) -> None:
        backoff = BACKOFF_FIRST
        while not stop.is_set():
            try:
                await self._session(job, stop)
                return
            except MailFailure as failure:
                await self._record(job, failure)
                if failure.permanent:
                    self.permanent[job.portal] = failure
                    log.error("mail %s: %s — not retried until portalguard restarts", job.portal, failure)
                    return
                log.warning("mail %s: %s; retrying in %.0fs", job.portal, failure, backoff)
            except Exception:  # a bug must not stop the other portals' mailboxes
                log.exception("mail %s: the mailbox check failed unexpectedly", job.portal)
            await _wait(stop, backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def _session(self, job: MailJob, stop: asyncio.Event) -> None:
        """One connection: read, wait (IDLE or ``every``), read again, until ``stop`` or a failure."""
        pool = ThreadPoolExecutor(1, thread_name_prefix=f"mail-{job.portal}")
        box = self.mailbox(job.url, ca_file=job.cfg.ca_file)
        try:
            uidvalidity = await self._run(pool, box.open)
            last_uid = (await self._opened(job, uidvalidity)).last_uid
            while not stop.is_set():
                started = time.monotonic()
                last_uid = (await self._read_new(job, box, pool, uidvalidity, last_uid)).last_uid
                if box.can_idle:
                    await self._run(pool, box.idle, IDLE_WAIT, self._stop)
                else:
                    await _wait(stop, max(0.0, job.cfg.every - (time.monotonic() - started)))
        finally:
            # After an IDLE still waiting in the thread (it sees the stop flag within a second).
            pool.submit(box.close)
            pool.shutdown(wait=False)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


__all__ = ["CheckReport", "MailJob", "MailWatch", "UnreadMail"]
