"""The level-triggered reconciler: every tick, decide each portal's failover state and move each
of its actions toward it until what is observed equals what is desired.

Actions run as independent tasks (one slow or failing action never blocks another, nor the tick).
Transient errors retry with exponential backoff and jitter, and alert staff once if they leave a
measure unswitched for ``ALERT_AFTER_FAILING``; permanent errors stop retrying and alert staff
once. Alerts are queued in the store's outbox (``StaffAlerts``), which delivers and retries them.
All state lives in the store, so a restart after ``kill -9`` resumes exactly.

The store never stops a tick: state it cannot write is kept in memory (``ResilientStore``), and
writes nobody waits on (heartbeat, verdicts, audit events) are fire-and-forget. A tick waits only
for the writes whose result it needs: failover switches, claims, action rows.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from failover.actions.base import Action, ActionError, Incident
from failover.decision import Decision, Inputs, decide
from failover.metrics import FailoverMetrics
from failover.redact import scrub_urls
from failover.resilient import ResilientStore
from failover.settings import Settings
from failover.store import ActionRow, FencedOut, Maintenance, Override, PortalRow, StoreError
from failover.store_url import is_database_url
from watchdog.clock import PUBLISHED_KEY, SteadyClock, steady_time
from watchdog.monitor import PortalHealth
from watchdog.result import FailureKind
from watchdog.targets import endpoint_role
from watchdog.verdict import SLACK, Health

if TYPE_CHECKING:
    from failover.staff import StaffAlerts

log = logging.getLogger("portalguard.failover")

HealthSource = Callable[[str], PortalHealth]
NetworkSource = Callable[[], bool | None]  # our own network down? None: not known yet (canaries unprobed)
CONVERGED_RECHECK = 60.0  # seconds between observe() calls once an action has converged
# Right after a switch or a start, look much more often: a mutation sent before a crash (the API
# slow to answer, applying it anyway) can land late and undo what was just converged; ads left
# spending after recovery must be caught within seconds, not a minute.
SETTLING_RECHECK = 5.0
SETTLING_FOR = 600.0
ACTION_DEADLINE = 300.0  # one observe/apply/observe round (with API timeouts and retries) at most
# A transient error is retried for ever, but a measure that stays unswitched (a campaign that keeps
# spending after recovery, or never started) needs a human: tell staff once when it lasts this long.
# Long enough that a blip the retries ride out (five attempts take ~20 s) pages nobody.
ALERT_AFTER_FAILING = 180.0
READ_ERRORS = (sqlite3.Error, StoreError, OSError)
CLOCK_REPUBLISH_CHANGE = 0.05  # seconds the steady clock's offset moved (slewing) before it is published again
# Our own network is told down only once every canary has failed for this many canary intervals: one
# slow canary probe (a busy start, a moment of load) is no outage, and pages nobody.
NETWORK_CONFIRM_INTERVALS = 1.5
CLOCK_REPUBLISH_EVERY = 60.0  # and at least this often (a lost fire-and-forget write is made good)


@dataclass(slots=True)
class _Seen:
    """What the store said of a portal last: deciding goes on with it if a read fails."""

    override: Override | None = None
    maintenance: Maintenance | None = None
    starts_last_hour: int = 0
    starts: tuple[float, ...] = ()  # when the failovers of the last hour started
    hold: dict[str, object] | str | None = "unknown"  # the flapping hold last published (without its since)
    hold_since: float = 0.0


def backoff(attempts: int, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: 2, 4, 8… seconds (capped), times 0.5–1."""
    return min(cap, 2.0 ** min(attempts, 30)) * (0.5 + rng.random() / 2)


class Orchestrator:
    def __init__(
        self,
        settings: Settings,
        store: ResilientStore,
        metrics: FailoverMetrics,
        staff: StaffAlerts,
        actions: dict[str, dict[str, Action]],  # portal -> action name -> action
        health: HealthSource,
        network_down: NetworkSource = lambda: False,
        clock: Callable[[], float] = steady_time,
        rng: random.Random | None = None,
        may_act: Callable[[], bool] = lambda: True,
    ) -> None:
        """``may_act``: whether this process holds the leader lease right now (``Leadership.is_leader``;
        always, for one instance): checked before every tick and every switch of an action."""
        self.settings = settings
        self.may_act = may_act
        self.store = store
        self.metrics = metrics
        self.staff = staff
        self.actions = actions
        self.health = health
        self.network_down = network_down
        # Persisted: a restart during a network outage is not a new episode (no second alert).
        self._network_was_down: bool | None = None  # read from the store at the first tick
        self._network_down_seen: float | None = None  # since when every canary fails, as seen here
        self.clock = clock
        self.rng = rng or random.Random()
        self._inflight: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._wake = asyncio.Event()  # a verdict changed: tick now rather than at the next second
        self.last_decision: dict[str, Decision] = {}
        self._started = clock()
        self._settling_until: dict[tuple[str, str], float] = {}  # after a switch; all at start
        self._seen: dict[str, _Seen] = {}
        self._episodes: dict[str, bool] = {}  # episode key -> open (told); unknown until read from the store
        self._switch_ons: dict[str, list[float]] = {}  # this process's, also when the event was not written
        self._store_alert: str | None = None  # the claim of the current store-failing episode's alert
        self._clock_published: tuple[float, float] | None = None  # (offset, when)
        for pid, acts in actions.items():
            metrics.declare_portal(pid, list(acts))

    async def run(self, stop: asyncio.Event) -> None:
        await self._close_lost_run()
        self.store.submit_write("add_event", "service", None, state="started")
        while not stop.is_set():
            try:
                await self.tick()
            except READ_ERRORS as err:  # writes never raise here; a read that failed: next tick
                self.store.health.unreadable()
                log.error("tick skipped: store error: %s", err)
            except FencedOut as err:  # another site leads now: it acts, we stop (the service ends this term)
                log.warning("orchestrator stops: %s", err)
                break
            await self._sleep(stop)
        await self.drain()

    async def _close_lost_run(self) -> None:
        """A run that ended without its "stopped" event (kill -9, a power cut) is closed at its last
        heartbeat: the availability report counts the time from there to this start as unobserved,
        never as up or down."""
        try:
            last = await self.store.events(None, kinds=("service",), limit=1)
            heartbeat = await self.store.value("heartbeat")
        except READ_ERRORS as err:  # the report will count the gap as observed until this start
            log.error("could not look for an unclean stop: store error: %s", err)
            return
        if last and last[0].detail.get("state") == "started" and heartbeat is not None:
            self.store.submit_write("add_event", "service", None, state="stopped", at=float(heartbeat), unclean=True)

    async def _sleep(self, stop: asyncio.Event) -> None:
        """Until the next tick, a verdict change, or stop, whichever comes first."""
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waits, timeout=self.settings.failover.tick, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        self._wake.clear()

    def _publish_clock(self, now: float) -> None:
        """With the heartbeat: how other processes on this host read our clock, so the CLI stamps
        overrides and maintenance windows on it rather than on a wall clock that may have stepped."""
        if not isinstance(self.clock, SteadyClock):
            return
        offset = self.clock.monotonic_offset()
        last = self._clock_published
        if last and abs(offset - last[0]) < CLOCK_REPUBLISH_CHANGE and now - last[1] < CLOCK_REPUBLISH_EVERY:
            return
        self.store.submit_write("set_value", PUBLISHED_KEY, {"monotonic_offset": offset})
        self._clock_published = (offset, now)

    def abandon(self) -> None:
        """The lease is lost: the action rounds in flight stop where they are (their writes would be
        refused anyway; this stops their calls to the outside world too)."""
        for task in list(self._inflight.values()):
            task.cancel()

    async def drain(self) -> None:
        """Wait for the action rounds in flight (bounded by their own deadline)."""
        while self._inflight:
            await asyncio.wait(list(self._inflight.values()))

    async def tick(self) -> None:
        """One pass over every portal: decide, persist, start action rounds that are due."""
        if not self.may_act():  # a leader whose lease ran out (frozen, cut off) decides nothing
            return
        now = self.clock()
        self.store.submit_write("set_value", "heartbeat", now)  # nobody waits on it: a full disk must not
        self._publish_clock(now)
        self.store.replay_due(now)
        await self._check_network(now)
        await self._check_store(now)
        for pid in self.settings.portals:
            row = await self._decide(pid, now)
            self._publish(pid, row)
            for name, action in self.actions.get(pid, {}).items():
                try:
                    await self._start_round(pid, name, action, row, now)
                except READ_ERRORS as err:  # its row unreadable: the other actions still go on
                    log.error("action %s/%s not started: store error: %s", pid, name, err)

    # -- decide -----------------------------------------------------------------------------------

    async def _decide(self, pid: str, now: float) -> PortalRow:
        health = self.health(pid)
        row = await self.store.portal(pid)  # memory: the truth while we run
        seen = await self._read_inputs(pid, now)
        decision = decide(
            Inputs(
                now=now,
                health=health.health,
                failover=row.failover,
                failover_since=row.since,
                override=seen.override,
                maintenance=seen.maintenance,
                min_failover=self.settings.portals[pid].min_failover,
                starts_last_hour=seen.starts_last_hour,
                max_starts_per_hour=self.settings.failover.max_switches_per_hour,
                starts=seen.starts,
            )
        )
        self.last_decision[pid] = decision
        await self._check_suppressed(pid, health, seen, decision.failover, now)
        await self._check_logins(pid, health, now)
        self._publish_hold(pid, decision, seen.starts_last_hour)
        if decision.flapping:
            await self._alert_once(
                f"flapping:{pid}:{row.incident}",
                "flapping",
                pid,
                cause=decision.cause,
                count=seen.starts_last_hour,
                held_until=decision.held_until,
            )
        if decision.failover != row.failover:
            reason = health.reason() if decision.failover and decision.cause == "portal down" else decision.cause
            row = await self.store.set_failover(pid, decision.failover, reason)  # memory even if not written
            to = "on" if decision.failover else "off"
            if decision.failover:
                self._switch_ons.setdefault(pid, []).append(now)
            self.store.submit_write(
                "add_event", "failover", pid, to=to, cause=decision.cause, reason=reason, incident=row.incident
            )
            self.metrics.transitions.labels(pid, to).inc()
            log.warning("portal %s: failover %s (%s)", pid, to.upper(), decision.cause)
        return row

    async def _episode(self, key: str, active: bool, since: float) -> int | None:
        """An episode (a condition staff are told of once) kept in the store under ``key``, across
        restarts: while ``active``, its number the first time (None once it is open); inactive,
        it is closed so the next one gets a new number."""
        known = self._episodes.get(key)
        if not active:
            if known is not False:  # unknown after a start: look, and close a stored open one
                episode = await self.store.value(key, {})
                if episode.get("open"):
                    await self.store.set_value(key, {**episode, "open": False})
                self._episodes[key] = False
            return None
        if known:
            return None
        self._episodes[key] = True
        episode = await self.store.value(key, {})
        if episode.get("open"):
            return None
        n = int(episode.get("n", 0)) + 1
        await self.store.set_value(key, {"n": n, "open": True, "since": since})
        return n

    async def _check_suppressed(self, pid: str, health: PortalHealth, seen: _Seen, failover: bool, now: float) -> None:
        """The portal is DOWN but a human keeps failover off (``failover off`` or a ``suppress``
        maintenance window): tell staff once per incident, so a forgotten override never leaves the
        clinic unbookable in silence. An incident lasts from DOWN until UP again (a flap through
        RECOVERING is the same one); its number is kept in the store, across restarts."""
        key = f"suppressed_down:{pid}"
        if health.health is Health.UP:
            await self._episode(key, False, now)
            return
        if health.health is not Health.DOWN or failover:
            return
        override, window = seen.override, seen.maintenance
        if override is not None and override.mode == "off":
            fields: dict[str, object] = {"by": "override", "why": override.reason, "until": override.expires}
        elif override is None and window is not None and window.mode == "suppress":
            fields = {"by": "maintenance", "why": window.reason, "until": window.end, "window": window.id}
        else:
            return
        n = await self._episode(key, True, health.since)
        if n is None:
            return
        self.store.submit_write("add_event", "suppressed_down", pid, by=fields["by"], reason=fields["why"])
        log.warning("portal %s: DOWN while failover is kept off (%s)", pid, fields["by"])
        await self._alert_once(
            f"suppressed_down:{pid}:{n}",
            "down_while_suppressed",
            pid,
            since=health.since,
            reason=health.reason(),
            **fields,
        )

    async def _check_logins(self, pid: str, health: PortalHealth, now: float) -> None:
        """A staff login (an admin endpoint with ``login``) refused for the portal's ``down_after``
        thresholds tells staff once per episode, whatever ``trigger`` counts: a changed password
        must not go unnoticed until the day the portal fails. Ends when that endpoint logs in again."""
        threshold = self.settings.portals[pid].down_after
        for name, view in health.endpoints.items():
            if endpoint_role(name) != "admin":
                continue
            refused = view.result.error_kind is FailureKind.LOGIN
            if refused and (view.streak < threshold.failures or view.checked - view.since < threshold.seconds - SLACK):
                continue  # not yet for long enough; neither a new episode nor the end of one
            n = await self._episode(f"login_failing:{pid}:{name}", refused, view.since)
            if n is None:
                continue
            self.store.submit_write("add_event", "login_failing", pid, endpoint=name, detail=view.result.detail)
            log.warning("portal %s: staff login of %s refused since %.0f", pid, name, view.since)
            await self._alert_once(
                f"login_failing:{pid}:{name}:{n}",
                "login_failed",
                pid,
                since=view.since,
                endpoint=name,
                error=view.result.detail or "login",
                config_key=f"portals.{pid}.endpoints.{name}.login",
            )

    def _publish_hold(self, pid: str, decision: Decision, starts: int) -> None:
        """A flapping hold, for `status` and /staff (store value ``flapping_hold:PID``): since when,
        the failovers of the hour, and when it ends if the portal stays up. Written when it changes."""
        seen = self._seen[pid]
        hold = {"count": starts, "until": decision.held_until} if decision.flapping else None
        if hold == seen.hold:
            return
        if hold is not None and seen.hold is None:
            seen.hold_since = self.clock()
        seen.hold = hold
        self.store.submit_write("set_value", f"flapping_hold:{pid}", hold and {**hold, "since": seen.hold_since})

    async def _read_inputs(self, pid: str, now: float) -> _Seen:
        """Override, maintenance window and recent switches; the last known ones if the store
        cannot be read (deciding must go on: the verdict alone still decides)."""
        seen = self._seen.setdefault(pid, _Seen())
        try:
            seen.override = await self.store.override(pid, now)
            seen.maintenance = await self.store.active_maintenance(pid, now)
            events = await self.store.events(pid, since=now - 3600, kinds=("failover",))
            stored = tuple(e.ts for e in events if e.detail.get("to") == "on")
        except READ_ERRORS as err:
            log.error("portal %s: store unreadable, deciding with what it said last: %s", pid, err)
            stored = tuple(t for t in seen.starts if t >= now - 3600)
        # Our own switches count too: their events may not be written yet (fire-and-forget, full disk).
        ours = self._switch_ons.setdefault(pid, [])
        ours[:] = [t for t in ours if t >= now - 3600]
        seen.starts = stored if len(stored) >= len(ours) else tuple(ours)
        seen.starts_last_hour = len(seen.starts)
        return seen

    def _publish(self, pid: str, row: PortalRow) -> None:
        self.metrics.failover_active.labels(pid).set(int(row.failover))
        override, window = self._seen[pid].override, self._seen[pid].maintenance
        for mode in ("on", "off"):
            self.metrics.override_active.labels(pid, mode).set(int(override is not None and override.mode == mode))
        for mode in ("suppress", "failover"):
            self.metrics.maintenance_active.labels(pid, mode).set(int(window is not None and window.mode == mode))

    # -- act --------------------------------------------------------------------------------------

    async def _start_round(self, pid: str, name: str, action: Action, portal: PortalRow, now: float) -> None:
        key = (pid, name)
        if key in self._inflight:
            return
        want = "on" if portal.failover else "off"
        row = await self.store.action(pid, name)
        if row.desired != want:  # a new goal: forget the old one's errors and backoff
            row = replace(
                row, desired=want, attempts=0, next_attempt=0.0, last_error=None, permanent=False, failing_since=None
            )
            await self.store.put_action(row)
        self.metrics.desired.labels(pid, name).set(int(want == "on"))
        if not self._due(row, now):
            return
        incident = _incident(portal, now)
        trusted = row.observed == row.desired and now - (row.updated or 0) < self._recheck_every(row, now)
        round_ = self._maintain(action, row, incident) if trusted else self._round(action, row, incident)
        task = asyncio.create_task(round_, name=f"action {pid}/{name}")
        self._inflight[key] = task
        task.add_done_callback(lambda _t: self._inflight.pop(key, None))

    def _due(self, row: ActionRow, now: float) -> bool:
        if row.permanent or now < row.next_attempt:
            return False
        if row.observed == row.desired:  # converged: look again now and then; upkeep while on
            return row.desired == "on" or now - (row.updated or 0) >= self._recheck_every(row, now)
        return True

    def _recheck_every(self, row: ActionRow, now: float) -> float:
        settling = self._settling_until.get((row.portal, row.action), self._started + SETTLING_FOR)
        return SETTLING_RECHECK if now < settling else CONVERGED_RECHECK

    async def _maintain(self, action: Action, row: ActionRow, incident: Incident) -> None:
        """A converged, recently observed action that is on: only its upkeep (reminders, caps — a cap
        pauses the ads: an effect like a switch, so the lease is checked first)."""
        await self._guarded(row, incident, self._upkeep(action, incident))

    async def _upkeep(self, action: Action, incident: Incident) -> None:
        await self._still_leader()
        await action.maintain(incident)

    async def _round(self, action: Action, row: ActionRow, incident: Incident) -> None:
        await self._guarded(row, incident, self._converge(action, row, incident, row.desired == "on"))

    async def _guarded(self, row: ActionRow, incident: Incident, work: Awaitable[bool | None]) -> None:
        pid, name = row.portal, row.action
        started = self.clock()
        try:
            async with asyncio.timeout(ACTION_DEADLINE):
                changed = await work
        except FencedOut as err:  # not a failure of the action: another site acts on it now
            log.warning("action %s/%s left to the leader: %s", pid, name, err)
        except ActionError as err:
            await self._failed(row, incident, err, started)
        except TimeoutError:
            await self._failed(row, incident, ActionError(f"{name}: no answer within {ACTION_DEADLINE:.0f}s"), started)
        except Exception as err:  # a bug in an action must not kill the reconciler
            # The type and the stack only: the exception's text may quote a URL or a token.
            stack = "".join(traceback.format_tb(err.__traceback__))
            log.error("action %s/%s crashed: %s\n%s", pid, name, type(err).__name__, stack)
            await self._failed(row, incident, ActionError(f"{name}: internal error {type(err).__name__}"), started)
        else:
            if changed is not None:  # None: upkeep only, nothing observed
                await self._succeeded(row, changed, started)

    async def _converge(self, action: Action, row: ActionRow, incident: Incident, want: bool) -> bool:
        """Observe, switch if needed, observe again. Returns whether a switch was made."""
        if await action.observe() == want:
            if want:
                await self._upkeep(action, incident)
            return False
        await self._still_leader()
        await (action.apply(incident) if want else action.revert(incident))
        if await action.observe() != want:
            raise ActionError(f"{row.action}: switched {row.desired} but still observed otherwise; will retry")
        return True

    async def _still_leader(self) -> None:
        """Right before a switch no store row records: the lease holds, in the store and here. (One
        instance on its own store has no lease: nothing to check, and a full disk stops nothing.)"""
        if self.store.sync.fence is not None:
            try:
                await self.store.fence_check()
            except READ_ERRORS as err:
                raise ActionError(f"the store does not answer ({type(err).__name__}): the switch waits") from None
        if not self.may_act():
            raise FencedOut("the leader lease ran out just now: the switch is left to the next leader")

    async def _succeeded(self, row: ActionRow, changed: bool, started: float) -> None:
        now = self.clock()
        if changed:
            self._settling_until[(row.portal, row.action)] = now + SETTLING_FOR
        on_since = (row.on_since or now) if row.desired == "on" else None
        converged = replace(
            row,
            observed=row.desired,
            last_error=None,
            attempts=0,
            next_attempt=0.0,
            on_since=on_since,
            failing_since=None,
        )
        await self.store.put_action(converged)
        self.metrics.observed.labels(row.portal, row.action).set(int(row.desired == "on"))
        if changed or row.attempts:
            self.store.submit_write(
                "add_event",
                "action",
                row.portal,
                row.action,
                op=row.desired,
                ok=True,
                attempt=row.attempts + 1,
                ms=round((now - started) * 1000),
            )
            log.info("action %s/%s: %s", row.portal, row.action, row.desired)

    async def _failed(self, row: ActionRow, incident: Incident, err: ActionError, started: float) -> None:
        now = self.clock()
        message = scrub_urls(err.message)  # actions never put secrets in errors; a URL slipping in is cut
        attempts = row.attempts + 1
        failing_since = row.failing_since if row.failing_since is not None else started
        # What the action knows it left behind (max_active paused the ads: off); else as it was.
        observed = row.observed if err.observed is None else ("on" if err.observed else "off")
        await self.store.put_action(
            replace(
                row,
                observed=observed,
                on_since=None if observed == "off" else row.on_since,
                last_error=message,
                permanent=err.permanent,
                attempts=attempts,
                next_attempt=now + backoff(attempts, self.settings.failover.backoff_max, self.rng),
                failing_since=failing_since,
            )
        )
        kind = "permanent" if err.permanent else "transient"
        self.metrics.errors.labels(row.portal, row.action, kind).inc()
        self.metrics.observed.labels(row.portal, row.action).set(-1 if err.observed is None else int(err.observed))
        self.store.submit_write(
            "add_event",
            "action",
            row.portal,
            row.action,
            op=row.desired,
            ok=False,
            observed=observed,  # "off" when the action left it off (max_active paused the ads)
            error=message,
            error_kind=kind,
            attempt=attempts,
            ms=round((now - started) * 1000),
        )
        log.warning("action %s/%s %s failed (%s): %s", row.portal, row.action, row.desired, kind, message)
        where = f"{row.portal}:{incident.number}:{row.action}:{row.desired}"
        fields = {"action": row.action, "error": message, "permanent": err.permanent}
        if err.permanent:
            await self._alert_once(f"{err.topic}:{where}", err.topic, row.portal, **{**fields, **err.details})
        elif observed != row.desired and now - failing_since >= ALERT_AFTER_FAILING:
            # Once per incident and goal, while the retries go on (its recovery shows in `status`).
            # A failing look at a measure that is already as wanted (an idle re-check) is no alert.
            await self._alert_once(f"action_failing:{where}", "action_failed", row.portal, **fields)

    async def _alert_once(
        self, claim: str, topic: str, pid: str | None, *, after: str | None = None, **fields: object
    ) -> None:
        """Tell staff once: claimed and queued in the store's outbox in one step; the outbox
        delivers it to every target, retrying across restarts. ``after``: each target gets it only
        once it has that message (no "restored" before its "degraded")."""
        await self.staff.enqueue(claim, topic, pid, after=after, **fields)

    # -- network degraded ---------------------------------------------------------------------------

    def on_verdict(self, health: PortalHealth, previous: Health) -> None:
        """Monitor listener: record transitions; announce our own network trouble once per episode."""
        # ``since``: when the verdict changed (the event is stamped when written, a moment later).
        detail: dict[str, object] = {"from": previous.value, "to": health.health.value, "since": health.since}
        if health.health is Health.DEGRADED:
            detail["first_failure"] = health.streak_since
            detail["reason"] = health.reason()
        # Fire-and-forget: the monitor calls this between probes, which must never wait for a disk.
        self.store.submit_write("set_verdict", health.portal, health.health.value, health.since)
        self._wake.set()
        self.store.submit_write("add_event", "verdict", health.portal, **detail)
        log.info("portal %s: %s -> %s %s", health.portal, previous.value, health.health.value, health.reason())

    async def _check_network(self, now: float) -> None:
        if self._network_was_down is None:
            self._network_was_down = bool(await self.store.value("network_down", False))
        down = self.network_down()
        if not down:
            self._network_down_seen = None
        elif self._network_down_seen is None:
            self._network_down_seen = now
        confirm = NETWORK_CONFIRM_INTERVALS * self.settings.canary_interval
        if down and not self._network_was_down and now - (self._network_down_seen or now) < confirm:
            return  # not yet for long enough: the next canary probe may answer
        # Unknown (after a restart, until every canary is probed) is no change: taking it for "up"
        # would announce a false recovery during our own outage, then a second "degraded".
        if down is not None and down != self._network_was_down:
            self._network_was_down = down
            await self.on_network(down, (self._network_down_seen or now) if down else now)

    async def on_network(self, down: bool, now: float) -> None:
        """Our own network went down (every canary fails) or came back: tell staff once per episode."""
        self.store.submit_write("add_event", "network", None, down=down)
        await self.store.set_value("network_down", down)
        episode = await self.store.value("network_episode", 0) + (1 if down else 0)
        if down:
            await self.store.set_value("network_episode", episode)
            await self.store.set_value("network_down_since", now)
            await self._alert_once(f"network:{episode}:network_degraded", "network_degraded", None, since=now)
        elif await self.store.claimed(f"network:{episode}:network_degraded"):
            since = await self.store.value("network_down_since", now)
            await self._alert_once(
                f"network:{episode}:network_restored",
                "network_restored",
                None,
                after=f"network:{episode}:network_degraded",
                since=since,
                ended=now,
            )

    # -- the store itself -----------------------------------------------------------------------------

    async def _check_store(self, now: float) -> None:
        """The store cannot write (a full disk): tell staff once per episode, and when it is over.
        The claims are kept in memory until the store can write them, like any other."""
        health = self.store.health
        if health.alert_due(now) and self._store_alert is None:
            since = health.failing_since or now
            self._store_alert = f"store:{since:.0f}:store_failing"
            # Damage needs a restore, not free space: the message says which (claimed as the same episode).
            topic = "store_damaged" if health.damaged is not None else "store_failing"
            error = health.damaged or health.last_error
            database = is_database_url(self.settings.store)  # the words fit a server, not a disk
            await self._alert_once(self._store_alert, topic, None, since=since, error=error, database=database)
        elif not health.failing and self._store_alert is not None:
            claim, self._store_alert = self._store_alert, None
            since = float(claim.split(":")[1])
            await self._alert_once(
                claim.replace("store_failing", "store_restored"),
                "store_restored",
                None,
                after=claim,
                since=since,
                ended=now,
            )


def _incident(portal: PortalRow, now: float) -> Incident:
    """The episode actions are told of: its start and cause as it went on, and once it is off, when
    it went off (the same on every retry of a revert). A store from before outage_since was kept
    falls back to the last switch."""
    since = portal.outage_since or portal.since or now
    ended = None if portal.failover else (portal.since or now)
    return Incident(portal.portal, portal.incident, portal.outage_reason or portal.reason, since, ended)
