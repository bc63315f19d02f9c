"""The level-triggered reconciler: every tick, decide each portal's failover state and move each
of its actions toward it until what is observed equals what is desired.

Actions run as independent tasks (one slow or failing action never blocks another, nor the tick).
Transient errors retry with exponential backoff and jitter, and alert staff once if they leave a
measure unswitched for ``ALERT_AFTER_FAILING``; permanent errors stop retrying and alert staff
once. All state lives in the store, so a restart after ``kill -9`` resumes exactly.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from failover.actions.base import Action, ActionError, Incident
from failover.decision import Decision, Inputs, decide
from failover.messages import scrub_urls
from failover.metrics import FailoverMetrics
from failover.settings import Settings
from failover.staff import Delivery
from failover.store import ActionRow, PortalRow, Store, StoreError
from watchdog.monitor import PortalHealth
from watchdog.verdict import Health

if TYPE_CHECKING:
    from failover.staff import StaffAlerts

log = logging.getLogger("portalguard.failover")

HealthSource = Callable[[str], PortalHealth]
NetworkSource = Callable[[], bool | None]  # our own network down? None: not known yet (canaries unprobed)
CONVERGED_RECHECK = 60.0  # seconds between observe() calls once an action has converged
ACTION_DEADLINE = 300.0  # one observe/apply/observe round (with API timeouts and retries) at most
# A transient error is retried for ever, but a measure that stays unswitched (a campaign that keeps
# spending after recovery, or never started) needs a human: tell staff once when it lasts this long.
# Long enough that a blip the retries ride out (five attempts take ~20 s) pages nobody.
ALERT_AFTER_FAILING = 180.0


@dataclass(slots=True)
class _Alert:
    topic: str
    portal: str | None
    fields: dict[str, object]
    attempts: int = 0
    next_try: float = float("inf")  # set after a failed delivery


def backoff(attempts: int, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: 2, 4, 8… seconds (capped), times 0.5–1."""
    return min(cap, 2.0 ** min(attempts, 30)) * (0.5 + rng.random() / 2)


class Orchestrator:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        metrics: FailoverMetrics,
        staff: StaffAlerts,
        actions: dict[str, dict[str, Action]],  # portal -> action name -> action
        health: HealthSource,
        network_down: NetworkSource = lambda: False,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.staff = staff
        self.actions = actions
        self.health = health
        self.network_down = network_down
        # Persisted: a restart during a network outage is not a new episode (no second alert).
        self._network_was_down = bool(store.value("network_down", False))
        self.clock = clock
        self.rng = rng or random.Random()
        self._inflight: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._wake = asyncio.Event()  # a verdict changed: tick now rather than at the next second
        self._alerts: dict[str, _Alert] = {}  # staff alerts not yet delivered to every target
        self.last_decision: dict[str, Decision] = {}
        for pid, acts in actions.items():
            metrics.declare_portal(pid, list(acts))

    async def run(self, stop: asyncio.Event) -> None:
        self.store.add_event("service", None, state="started")
        while not stop.is_set():
            try:
                await self.tick()
            except (sqlite3.Error, StoreError) as err:  # e.g. the store locked by a backup: next tick
                log.error("tick skipped: store error: %s", err)
            await self._sleep(stop)
        await self.drain()

    async def _sleep(self, stop: asyncio.Event) -> None:
        """Until the next tick, a verdict change, or stop, whichever comes first."""
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waits, timeout=self.settings.failover.tick, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        self._wake.clear()

    async def drain(self) -> None:
        """Wait for the action rounds in flight (bounded by their own deadline)."""
        if self._inflight:
            await asyncio.wait(list(self._inflight.values()))

    async def tick(self) -> None:
        """One pass over every portal: decide, persist, start action rounds that are due."""
        now = self.clock()
        self.store.set_value("heartbeat", now)
        self._check_network(now)
        self._retry_alerts(now)
        for pid in self.settings.portals:
            row = self._decide(pid, now)
            self._publish(pid, row, now)
            for name, action in self.actions.get(pid, {}).items():
                self._start_round(pid, name, action, row, now)

    # -- decide -----------------------------------------------------------------------------------

    def _decide(self, pid: str, now: float) -> PortalRow:
        health = self.health(pid)
        row = self.store.portal(pid)
        decision = decide(
            Inputs(
                now=now,
                health=health.health,
                failover=row.failover,
                failover_since=row.since,
                override=self.store.override(pid, now),
                maintenance=self.store.active_maintenance(pid, now),
                min_failover=self.settings.portals[pid].min_failover,
                starts_last_hour=self._starts_last_hour(pid, now),
                max_starts_per_hour=self.settings.failover.max_switches_per_hour,
            )
        )
        self.last_decision[pid] = decision
        if decision.flapping:
            self._alert_once(f"flapping:{pid}:{row.incident}", "flapping", pid, cause=decision.cause)
        if decision.failover != row.failover:
            reason = health.reason() if decision.failover and decision.cause == "portal down" else decision.cause
            row = self.store.set_failover(pid, decision.failover, reason)
            to = "on" if decision.failover else "off"
            self.store.add_event("failover", pid, to=to, cause=decision.cause, reason=reason, incident=row.incident)
            self.metrics.transitions.labels(pid, to).inc()
            log.warning("portal %s: failover %s (%s)", pid, to.upper(), decision.cause)
        return row

    def _starts_last_hour(self, pid: str, now: float) -> int:
        events = self.store.events(pid, since=now - 3600, kinds=("failover",))
        return sum(1 for e in events if e.detail.get("to") == "on")

    def _publish(self, pid: str, row: PortalRow, now: float) -> None:
        self.metrics.failover_active.labels(pid).set(int(row.failover))
        override = self.store.override(pid, now)
        for mode in ("on", "off"):
            self.metrics.override_active.labels(pid, mode).set(int(override is not None and override.mode == mode))
        window = self.store.active_maintenance(pid, now)
        for mode in ("suppress", "failover"):
            self.metrics.maintenance_active.labels(pid, mode).set(int(window is not None and window.mode == mode))

    # -- act --------------------------------------------------------------------------------------

    def _start_round(self, pid: str, name: str, action: Action, portal: PortalRow, now: float) -> None:
        key = (pid, name)
        if key in self._inflight:
            return
        want = "on" if portal.failover else "off"
        row = self.store.action(pid, name)
        if row.desired != want:  # a new goal: forget the old one's errors and backoff
            row = replace(
                row, desired=want, attempts=0, next_attempt=0.0, last_error=None, permanent=False, failing_since=None
            )
            self.store.put_action(row)
        self.metrics.desired.labels(pid, name).set(int(want == "on"))
        if not self._due(row, now):
            return
        incident = _incident(portal, now)
        trusted = row.observed == row.desired and now - (row.updated or 0) < CONVERGED_RECHECK
        round_ = self._maintain(action, row, incident) if trusted else self._round(action, row, incident)
        task = asyncio.create_task(round_, name=f"action {pid}/{name}")
        self._inflight[key] = task
        task.add_done_callback(lambda _t: self._inflight.pop(key, None))

    def _due(self, row: ActionRow, now: float) -> bool:
        if row.permanent or now < row.next_attempt:
            return False
        if row.observed == row.desired:  # converged: look again now and then; upkeep while on
            return row.desired == "on" or now - (row.updated or 0) >= CONVERGED_RECHECK
        return True

    async def _maintain(self, action: Action, row: ActionRow, incident: Incident) -> None:
        """A converged, recently observed action that is on: only its upkeep (reminders, caps)."""
        await self._guarded(row, incident, action.maintain(incident))

    async def _round(self, action: Action, row: ActionRow, incident: Incident) -> None:
        await self._guarded(row, incident, self._converge(action, row, incident, row.desired == "on"))

    async def _guarded(self, row: ActionRow, incident: Incident, work: Awaitable[bool | None]) -> None:
        pid, name = row.portal, row.action
        started = self.clock()
        try:
            async with asyncio.timeout(ACTION_DEADLINE):
                changed = await work
        except ActionError as err:
            self._failed(row, incident, err, started)
        except TimeoutError:
            self._failed(row, incident, ActionError(f"{name}: no answer within {ACTION_DEADLINE:.0f}s"), started)
        except Exception as err:  # a bug in an action must not kill the reconciler
            # The type and the stack only: the exception's text may quote a URL or a token.
            stack = "".join(traceback.format_tb(err.__traceback__))
            log.error("action %s/%s crashed: %s\n%s", pid, name, type(err).__name__, stack)
            self._failed(row, incident, ActionError(f"{name}: internal error {type(err).__name__}"), started)
        else:
            if changed is not None:  # None: upkeep only, nothing observed
                self._succeeded(row, changed, started)

    async def _converge(self, action: Action, row: ActionRow, incident: Incident, want: bool) -> bool:
        """Observe, switch if needed, observe again. Returns whether a switch was made."""
        if await action.observe() == want:
            if want:
                await action.maintain(incident)
            return False
        await (action.apply(incident) if want else action.revert(incident))
        if await action.observe() != want:
            raise ActionError(f"{row.action}: switched {row.desired} but still observed otherwise; will retry")
        return True

    def _succeeded(self, row: ActionRow, changed: bool, started: float) -> None:
        now = self.clock()
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
        self.store.put_action(converged)
        self.metrics.observed.labels(row.portal, row.action).set(int(row.desired == "on"))
        if changed or row.attempts:
            self.store.add_event(
                "action",
                row.portal,
                row.action,
                op=row.desired,
                ok=True,
                attempt=row.attempts + 1,
                ms=round((now - started) * 1000),
            )
            log.info("action %s/%s: %s", row.portal, row.action, row.desired)

    def _failed(self, row: ActionRow, incident: Incident, err: ActionError, started: float) -> None:
        now = self.clock()
        message = scrub_urls(err.message)  # actions never put secrets in errors; a URL slipping in is cut
        attempts = row.attempts + 1
        failing_since = row.failing_since if row.failing_since is not None else started
        # What the action knows it left behind (max_active paused the ads: off); else as it was.
        observed = row.observed if err.observed is None else ("on" if err.observed else "off")
        self.store.put_action(
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
        self.store.add_event(
            "action",
            row.portal,
            row.action,
            op=row.desired,
            ok=False,
            error=message,
            error_kind=kind,
            attempt=attempts,
            ms=round((now - started) * 1000),
        )
        log.warning("action %s/%s %s failed (%s): %s", row.portal, row.action, row.desired, kind, message)
        where = f"{row.portal}:{incident.number}:{row.action}:{row.desired}"
        fields = {"action": row.action, "error": message, "permanent": err.permanent}
        if err.permanent:
            self._alert_once(f"{err.topic}:{where}", err.topic, row.portal, **{**fields, **err.details})
        elif observed != row.desired and now - failing_since >= ALERT_AFTER_FAILING:
            # Once per incident and goal, while the retries go on (its recovery shows in `status`).
            # A failing look at a measure that is already as wanted (an idle re-check) is no alert.
            self._alert_once(f"action_failing:{where}", "action_failed", row.portal, **fields)

    def _alert_once(self, claim: str, topic: str, pid: str | None, **fields: object) -> None:
        """Tell staff once (claimed in the store); a failed delivery is retried with backoff, also
        after a restart (a claim whose delivery is still failing is taken up again)."""
        if claim in self._alerts:
            return
        if self.store.claimed(claim) and self.staff.delivery(claim, pid) is not Delivery.FAILING:
            return
        self._alerts[claim] = _Alert(topic, pid, fields)
        self._send_alert(claim)

    def _send_alert(self, claim: str) -> None:
        task = asyncio.create_task(self._alert(claim))
        self._inflight[("alert", claim)] = task
        task.add_done_callback(lambda _t: self._inflight.pop(("alert", claim), None))

    async def _alert(self, claim: str) -> None:
        alert = self._alerts[claim]
        try:
            await self.staff.send(alert.topic, alert.portal, claim=claim, **alert.fields)
        except ActionError as err:
            log.warning("staff alert %s not sent: %s", alert.topic, scrub_urls(err.message))
        if self.staff.delivery(claim, alert.portal) is Delivery.SENT:
            del self._alerts[claim]
        else:
            alert.attempts += 1
            alert.next_try = self.clock() + backoff(alert.attempts, self.settings.failover.backoff_max, self.rng)

    def _retry_alerts(self, now: float) -> None:
        for claim, alert in self._alerts.items():
            if now >= alert.next_try and ("alert", claim) not in self._inflight:
                self._send_alert(claim)

    # -- network degraded ---------------------------------------------------------------------------

    def on_verdict(self, health: PortalHealth, previous: Health) -> None:
        """Monitor listener: record transitions; announce our own network trouble once per episode."""
        detail: dict[str, object] = {"from": previous.value, "to": health.health.value}
        if health.health is Health.DEGRADED:
            detail["first_failure"] = health.streak_since
            detail["reason"] = health.reason()
        self.store.set_verdict(health.portal, health.health.value, health.since)
        self._wake.set()
        self.store.add_event("verdict", health.portal, **detail)
        log.info("portal %s: %s -> %s %s", health.portal, previous.value, health.health.value, health.reason())

    def _check_network(self, now: float) -> None:
        down = self.network_down()
        # Unknown (after a restart, until every canary is probed) is no change: taking it for "up"
        # would announce a false recovery during our own outage, then a second "degraded".
        if down is not None and down != self._network_was_down:
            self._network_was_down = down
            self.on_network(down, now)

    def on_network(self, down: bool, now: float) -> None:
        """Our own network went down (every canary fails) or came back: tell staff once per episode."""
        self.store.add_event("network", None, down=down)
        self.store.set_value("network_down", down)
        episode = self.store.value("network_episode", 0) + (1 if down else 0)
        if down:
            self.store.set_value("network_episode", episode)
            self.store.set_value("network_down_since", now)
            self._alert_once(f"network:{episode}:network_degraded", "network_degraded", None, since=now)
        elif self.store.claimed(f"network:{episode}:network_degraded"):
            since = self.store.value("network_down_since", now)
            self._alert_once(f"network:{episode}:network_restored", "network_restored", None, since=since, ended=now)


def _incident(portal: PortalRow, now: float) -> Incident:
    """The episode actions are told of: its start and cause as it went on, and once it is off, when
    it went off (the same on every retry of a revert). A store from before outage_since was kept
    falls back to the last switch."""
    since = portal.outage_since or portal.since or now
    ended = None if portal.failover else (portal.since or now)
    return Incident(portal.portal, portal.incident, portal.outage_reason or portal.reason, since, ended)
