"""Telling staff: renders a message (``failover.staff.messages``) and delivers it through Apprise to
the targets of the notify actions, at least once per claim and target, through the store's outbox.

- ``enqueue``: the message is claimed and rendered per target (in the target's language, at claim
  time) in one store transaction. Nothing is sent yet; a claim seen before queues nothing.
- ``run``: the delivery loop. Each due row is marked ``sending`` (committed) before Apprise is
  called, then ``sent``, or ``pending`` again with exponential backoff and jitter, or ``failed`` for
  good when its URL does not parse. The state is in the store, so a restart goes on where it was.
- A row still ``sending`` at start is a send a crash may have cut after staff got it: it goes out
  once more, marked as a possible duplicate. Staff may get a message twice, never not at all.
- A row with ``after`` waits until that target has the ``after`` message ("recovered" after the
  "outage" of the same incident), so no one hears of an end before its beginning.
- ``send_now``: drills only, claimed by nobody, with a result per target.

Apprise URLs carry tokens: they are never logged, stored (rows name the target, not its URL), put
in events or errors; only ``scheme://host:port`` is shown, and Apprise's own logger is redacted.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from failover.actions.base import ActionError
from failover.links import fallback_url
from failover.redact import install_log_redaction, redact, url_origin
from failover.staff.directory import StaffDirectory, Target
from failover.staff.messages import render
from failover.store import FencedOut, OutboxRow, StoreError
from failover.threads import OwnThreads

if TYPE_CHECKING:
    import apprise

    from failover.store import AsyncStore

log = logging.getLogger("portalguard.staff")

_GRACE = 5.0  # beyond Apprise's own deadline, before we stop waiting for its thread
_DETAIL_MAX = 160  # characters of Apprise's reason shown per failed target
_WORKERS = 4  # Apprise's own threads (failover/threads.py says why)
BACKOFF_CAP = 300.0  # a target down for long is tried every 2.5–5 minutes
DELIVERY_EVERY = 1.0  # the loop looks for due rows at least this often
_BATCH = 50  # rows taken per pass
DUPLICATE_MARKER = {"ja": "※重複して届いている可能性があります", "en": "(possibly a duplicate)"}
_STORE_ERRORS = (StoreError, sqlite3.Error, OSError)


@dataclass(frozen=True, slots=True)
class TargetResult:
    """One target's answer to a direct send (drills)."""

    target: Target
    ok: bool
    detail: str = ""  # why it failed; redacted
    permanent: bool = False  # retrying cannot help (the URL itself is wrong)


def backoff(attempts: int, rng: random.Random, cap: float = BACKOFF_CAP) -> float:
    """Exponential backoff with full jitter: 2, 4, 8… seconds (capped), times 0.5–1."""
    return min(cap, 2.0 ** min(attempts, 30)) * (0.5 + rng.random() / 2)


class StaffAlerts:
    def __init__(
        self,
        directory: StaffDirectory,
        store: AsyncStore,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.directory = directory
        self.store = store
        self.clock = clock
        self.rng = rng or random.Random()
        self._threads = OwnThreads(_WORKERS, "apprise")
        # Sends wait here, not in the pool's queue: Apprise's deadline starts when a thread has it.
        self._slots = asyncio.Semaphore(_WORKERS)
        self._wake = asyncio.Event()
        self._inflight: dict[tuple[str, str], asyncio.Task[None]] = {}
        # Whether this process holds the leader lease (several instances on one store): checked again
        # right before each send, after the row is marked ``sending`` under the fence.
        self.may_send: Callable[[], bool] = lambda: True
        install_log_redaction()

    def close(self) -> None:
        """Let Apprise's threads go at shutdown; a delivery still running ends at its own deadline."""
        self._threads.close()

    # -- queueing -----------------------------------------------------------------------------------

    async def enqueue(
        self,
        claim: str,
        topic: str,
        portal: str | None,
        *,
        via: str | None = None,
        after: str | None = None,
        drill: bool = False,
        **fields: Any,
    ) -> bool:
        """Claim ``claim`` and queue ``topic`` for the targets (see ``StaffDirectory.targets``),
        rendered now. False if it was claimed before, or there is no target (nothing is claimed
        then). With ``after``: each target gets it only after it got the message ``after``."""
        targets = self.directory.targets(portal, via)
        if not targets:
            # Every group target is also the clinic's own: told through it, so claimed, with no rows.
            return self.directory.covered(portal, via) and await self.store.enqueue(claim, [])
        now = self.clock()
        rendered = self._render(topic, portal, {t.language for t in targets}, now, drill, fields)
        rows = [
            OutboxRow(claim, t.id, topic, portal, t.language, *rendered[t.language], created=now, after=after)
            for t in targets
        ]
        queued = await self.store.enqueue(claim, rows)
        if queued:
            self._wake.set()
        return queued

    # -- delivery -----------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """The delivery loop, until ``stop``; then waits for the sends in flight (each bounded)."""
        try:
            await self.requeue_interrupted()
        except FencedOut as err:
            log.warning("staff outbox left to the leader: %s", err)
            return
        while not stop.is_set():
            try:
                await self._start_due()
            except _STORE_ERRORS as err:  # the next pass reads again
                log.error("staff outbox not read: %s", err)
            await self._sleep(stop)
        await asyncio.gather(*self._inflight.values(), return_exceptions=True)

    async def deliver_due(self) -> int:
        """One pass: send every due row (not already in flight) and wait for those sends. Returns
        how many were sent or tried."""
        started = await self._start_due()
        await asyncio.gather(*started, return_exceptions=True)
        return len(started)

    async def requeue_interrupted(self) -> int:
        """Rows left ``sending`` by a crash go out once more, marked as possible duplicates."""
        try:
            n = await self.store.requeue_interrupted_sends()
        except _STORE_ERRORS as err:
            log.error("staff outbox: interrupted sends not requeued (%s); they are once the store writes", err)
            return 0
        if n:
            log.warning("staff outbox: %d send(s) a stop may have cut go out again, marked as possible duplicates", n)
        return n

    async def _sleep(self, stop: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waits, timeout=DELIVERY_EVERY, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        self._wake.clear()

    async def _start_due(self) -> list[asyncio.Task[None]]:
        started = []
        for row in await self.store.due_outbox(self.clock(), _BATCH):
            key = (row.claim, row.target)
            if key in self._inflight:
                continue
            task = asyncio.create_task(self._deliver(row), name=f"staff {row.topic}")
            self._inflight[key] = task
            task.add_done_callback(lambda _t, key=key: self._inflight.pop(key, None))  # type: ignore[misc]
            started.append(task)
        return started

    async def _deliver(self, row: OutboxRow) -> None:
        target = self.directory.target(row.target)
        if target is None:
            await self._record(replace(row, state="failed", last_error="target no longer configured"), None)
            return
        sending = replace(row, state="sending", attempts=row.attempts + 1)
        try:
            await self.store.update_outbox_delivery(sending)  # committed before Apprise has it
        except _STORE_ERRORS as err:  # not marked: not sent either, the next pass tries again
            log.error("staff outbox: %s to %s not sent: store: %s", row.topic, target.where, err)
            return
        except FencedOut as err:  # another site leads: it sends
            log.warning("staff outbox: %s left to the leader: %s", row.topic, err)
            return
        if not self.may_send():  # the lease ran out since: the next leader sends it (marked)
            return
        result = await self._send(target, row.title, _with_marker(row))
        now = self.clock()
        if result.ok:
            done = replace(sending, state="sent", sent_at=now, last_error=None)
        elif result.permanent:
            done = replace(sending, state="failed", last_error=result.detail)
        else:
            wait = backoff(sending.attempts, self.rng)
            done = replace(sending, state="pending", next_try=now + wait, last_error=result.detail)
        await self._record(done, target)

    async def _record(self, done: OutboxRow, target: Target | None) -> None:
        try:
            await self.store.update_outbox_delivery(done)
        except _STORE_ERRORS as err:  # left ``sending``: sent again, marked, after a restart
            log.error("staff outbox: delivery of %s not recorded: %s", done.topic, err)
        except FencedOut:  # left ``sending``: the leader sends it again, marked as a possible duplicate
            log.warning("staff outbox: delivery of %s not recorded: no longer the leader", done.topic)
        if done.state == "sent":
            self._wake.set()  # a row waiting for this one (``after``) is due now
        else:
            where = target.where if target is not None else f"target {done.target}"
            log.warning(
                "staff %s to %s not delivered (attempt %d, %s): %s",
                done.topic,
                where,
                done.attempts,
                "given up: fix the notify action's URL" if done.state == "failed" else "will retry",
                done.last_error,
            )
        self.store.submit_write(  # audit: topic and outcome only, never the message's text
            "add_event",
            "notify",
            done.portal,
            done.target.rpartition("#")[0],
            topic=done.topic,
            sent=done.state == "sent",
            target=done.target,
            attempt=done.attempts,
            state=done.state,
            duplicate=done.possible_duplicate,
            claim=done.claim,
            error=done.last_error,
        )

    # -- drills -------------------------------------------------------------------------------------

    async def send_now(
        self, topic: str, portal: str | None, *, via: str | None = None, drill: bool = True, **fields: Any
    ) -> list[TargetResult]:
        """Send at once, unclaimed and unqueued (drills: each run is its own rehearsal); the result
        of every target. Nothing is retried."""
        targets = self.directory.targets(portal, via)
        rendered = self._render(topic, portal, {t.language for t in targets}, self.clock(), drill, fields)
        results = list(await asyncio.gather(*(self._send(t, *rendered[t.language]) for t in targets)))
        self.store.submit_write(
            "add_event",
            "notify",
            portal,
            via,
            topic=topic,
            sent=any(r.ok for r in results),
            targets=len(results),
            failed=sum(not r.ok for r in results),
            drill=drill,
        )
        return results

    def targets(self, portal: str | None, via: str | None = None) -> list[Target]:
        return self.directory.targets(portal, via)

    def validate(self, action: str) -> list[str]:
        """Preflight of one notify action: every URL parses as an Apprise URL. Sends nothing.

        Returns the targets' origins; raises a permanent ActionError naming the bad entry.
        """
        targets = self.directory.targets(None, action)
        for t in targets:
            if not _apprise_for(t.url):
                raise ActionError(
                    f"notify {action}: {t.where} is not a valid Apprise URL; fix it in the config "
                    "(syntax: https://github.com/caronc/apprise/wiki)",
                    permanent=True,
                )
        return [url_origin(t.url) for t in targets]

    # -- rendering and sending ----------------------------------------------------------------------

    def _render(
        self, topic: str, portal: str | None, languages: set[str], now: float, drill: bool, fields: dict[str, Any]
    ) -> dict[str, tuple[str, str]]:
        d = self.directory
        values = {
            "portal": d.names.get(portal, portal) if portal else None,  # the name people read
            "portal_id": portal,  # the id the commands in the messages take
            "clinic": d.clinic_of(portal),
            "tz": d.timezone,
            "now": now,
            "staff_url": d.staff_url,
            "fallback_url": fallback_url(d.public_url, portal) if portal else None,
            **fields,
            "drill": drill,
        }
        return {lang: render(topic, lang, **values) for lang in languages}

    async def _send(self, target: Target, title: str, body: str) -> TargetResult:
        ap = _apprise_for(target.url)
        if ap is None:
            return TargetResult(target, False, "not a valid Apprise URL; fix it in the config", permanent=True)
        async with self._slots:
            try:
                # Apprise is synchronous; its own deadline stops waiting, ours guards the thread hand-off.
                async with asyncio.timeout(target.timeout + _GRACE):
                    result = await self._threads.run(ap.notify, body, title, body_format="text", timeout=target.timeout)
            except TimeoutError:
                return TargetResult(target, False, f"no answer within {target.timeout:g}s")
            except Exception as err:  # a plugin bug: its text may quote the URL, so show the type only
                return TargetResult(target, False, f"Apprise failed ({type(err).__name__})")
        if result:
            return TargetResult(target, True)
        return TargetResult(target, False, redact(_reason(result, target.timeout), target.url)[:_DETAIL_MAX])


def _with_marker(row: OutboxRow) -> str:
    if not row.possible_duplicate:
        return row.body
    return f"{row.body}\n\n{DUPLICATE_MARKER.get(row.language, DUPLICATE_MARKER['en'])}"


def failure_message(topic: str, results: list[TargetResult]) -> str | None:
    """What a direct send's failed targets tell the operator, or None if every target took it."""
    failed = [r for r in results if not r.ok]
    if not failed:
        return None
    actions = ", ".join(sorted({r.target.action for r in failed}))
    where = "; ".join(f"{r.target.where}: {r.detail}" for r in failed)
    return (
        f"notify {actions}: {len(failed)} of {len(results)} targets did not take the {topic} message — {where}. "
        "Check that the service is reachable and that the URL and its token are valid."
    )


def _apprise_for(url: str) -> apprise.Apprise | None:
    # Imported on first use: loading the config (every CLI command does) must not load Apprise.
    import apprise

    ap = apprise.Apprise()
    return ap if ap.add(url) else None


def _reason(result: Any, timeout: float) -> str:
    """Apprise's own words for a failure (its last captured warning); the caller redacts it."""
    import apprise

    if getattr(result, "status", None) == apprise.AppriseResultStatus.TIMEOUT:
        return f"no answer within {timeout:g}s"
    lines = [entry.message for service in result for entry in service.logs()]
    return lines[-1] if lines else "the service refused it"
