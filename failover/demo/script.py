"""The scenario: phases of an outage and recovery, each a scene-setting move and the steps that
must then be seen on the timeline, each within a bound derived from the demo's timings.

Steps match timeline entries (store events and what the fakes received). A step is looked for only
after the step it follows (``after``; by default the one before it), so "DOWN" can never be matched
by a line that came before "DEGRADED". The actions of a failover run concurrently, so their steps
all follow "failover ON" rather than each other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from failover.demo.stage import Timings
from failover.demo.timeline import Entry

Match = Callable[[Entry], bool]
ACTION_BOUND = 45.0  # one action round: the Ads client's first call includes its OAuth refresh


@dataclass(frozen=True, slots=True)
class Step:
    key: str
    label: str
    match: Match
    bound: float  # seconds, from when the demo starts waiting for it
    after: str | None = ""  # "" = the step before it; None = the start of the phase


@dataclass
class Phase:
    title: str
    steps: list[Step]
    start: Callable[[], Awaitable[None]] | None = None  # the scenario's move, after the title
    finish: Callable[[], Awaitable[None]] | None = None  # after every step was seen
    resolved: list[Step] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Resolve the default "after the previous step" once, so the player needs no special case.
        previous: str | None = None
        for step in self.steps:
            after = previous if step.after == "" else step.after
            self.resolved.append(Step(step.key, step.label, step.match, step.bound, after))
            previous = step.key


def event(kind: str, **fields: Any) -> Match:
    """A store event of ``kind`` whose detail has ``fields`` (e.g. ``to="down"``)."""
    return lambda e: e.source == "store" and e.data.get("kind") == kind and _has(e, fields)


def action(name: str, op: str) -> Match:
    """A successful switch of action ``name`` to ``op`` (on/off)."""
    return lambda e: (
        e.source == "store" and e.data.get("kind") == "action" and _has(e, {"action": name, "op": op, "ok": True})
    )


def received(source: str, **fields: Any) -> Match:
    """Something a fake received: ``ads``, ``inbox``, ``webhook``, ``web`` (booking requests)."""
    return lambda e: e.source == source and _has(e, fields)


def _has(e: Entry, fields: dict[str, Any]) -> bool:
    return all(e.data.get(k) == v for k, v in fields.items())


# -- the bounds -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bounds:
    """How long each kind of step may take, from the timings (with room for a slow machine)."""

    first_probe: float
    degraded: float
    down: float
    failover: float
    recovering: float
    up: float
    failover_off: float
    action: float = ACTION_BOUND

    @classmethod
    def of(cls, t: Timings) -> Bounds:
        interval, timeout = _seconds(t.interval), _seconds(t.timeout)
        probe = interval * 1.5 + timeout + 3.0  # the next probe (jitter included) and its answer
        return cls(
            first_probe=probe + 10.0,  # the service starts too
            degraded=probe,
            down=t.down_seconds + interval * (t.down_failures + 1) + timeout + 3.0,
            failover=5.0,  # the orchestrator ticks every second
            recovering=probe,
            up=t.up_seconds + interval * (t.up_successes + 1) + timeout + 3.0,
            failover_off=_seconds(t.min_failover) + 5.0,
        )


def _seconds(text: str) -> float:
    from watchdog.duration import parse_duration

    return parse_duration(text)


# -- the phases -------------------------------------------------------------------------------------


def startup_steps(b: Bounds) -> list[Step]:
    return [
        Step("service_started", "portalguard started", event("service", state="started"), b.first_probe),
        Step("portal_up", "portal verdict UP", event("verdict", to="up"), b.first_probe, after=None),
    ]


def outage_steps(b: Bounds) -> list[Step]:
    return [
        Step("degraded", "verdict DEGRADED (first failed probe)", event("verdict", to="degraded"), b.degraded),
        Step("down", "verdict DOWN (failures sustained)", event("verdict", to="down"), b.down),
        Step("failover_on", "failover ON", event("failover", to="on"), b.failover),
        Step("page_on", "fallback page ON", action("page", "on"), b.action, after="failover_on"),
        Step("ads_on", "Google Ads action ON", action("ads", "on"), b.action, after="failover_on"),
        Step("campaign_enabled", "campaign ENABLED", received("ads", status="ENABLED"), b.action, after="failover_on"),
        Step("webhook_on", "IVR webhook ON", action("ivr", "on"), b.action, after="failover_on"),
        Step("staff_notified", "staff notified", event("notify", topic="outage", sent=True), b.action, "failover_on"),
        Step("staff_inbox", "outage message in the staff inbox", received("inbox"), b.action, after="failover_on"),
    ]


def booking_steps(b: Bounds) -> list[Step]:
    return [
        Step("request_stored", "booking request stored", received("web"), b.action, after=None),
        Step(
            "request_announced",
            "staff told of the booking request",
            event("notify", topic="booking_request", sent=True),
            b.action,
            after=None,
        ),
    ]


def recovery_steps(b: Bounds) -> list[Step]:
    return [
        Step("recovering", "verdict RECOVERING", event("verdict", to="recovering"), b.recovering),
        Step("up", "verdict UP (recovery sustained)", event("verdict", to="up"), b.up),
        Step("failover_off", "failover OFF", event("failover", to="off"), b.failover_off),
        Step("page_off", "fallback page OFF", action("page", "off"), b.action, after="failover_off"),
        Step("ads_off", "Google Ads action OFF", action("ads", "off"), b.action, after="failover_off"),
        Step("campaign_paused", "campaign PAUSED", received("ads", status="PAUSED"), b.action, after="failover_off"),
        Step("webhook_off", "IVR webhook OFF", action("ivr", "off"), b.action, after="failover_off"),
        Step("staff_off", "staff notify action OFF", action("staff", "off"), b.action, after="failover_off"),
        Step(
            "recovered_message",
            "recovered message sent",
            event("notify", topic="recovered", sent=True),
            b.action,
            after="failover_off",
        ),
    ]


STEP_ORDER = [
    s.key for steps in (startup_steps, outage_steps, booking_steps, recovery_steps) for s in steps(Bounds.of(Timings()))
]
