"""The health of one portal, judged from a stream of observations: a pure state machine.

No I/O and no clock inside: every step gets ``now``. Hysteresis both ways:
DOWN needs ``down_after.failures`` consecutive failing observations spanning ``down_after.seconds``;
UP again needs ``up_after.successes`` consecutive good ones spanning ``up_after.seconds``.
While every canary fails the verdict is UNKNOWN: our own network is the problem, never the portal.
And with canaries, DEGRADED turns DOWN only once a canary has answered a probe started during the
failure streak: until then the failures may be our network dying, not yet noticed by a canary.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from watchdog.targets import Recovery, Threshold

# Observations are timed by when their probe started, on a fixed schedule; the scheduler starts
# probes a few milliseconds late at times. Without this slack a threshold that is an exact multiple
# of the interval (3 failures, 15 s apart, "30s") would wait a whole extra interval half the time.
SLACK = 0.25


class Health(StrEnum):
    UP = "up"
    DEGRADED = "degraded"  # failing, not yet for long enough
    DOWN = "down"
    RECOVERING = "recovering"  # answering again, not yet for long enough
    UNKNOWN = "unknown"  # no evidence yet, or our own network is down


@dataclass(frozen=True, slots=True)
class Verdict:
    health: Health = Health.UNKNOWN
    since: float = 0.0  # when ``health`` last changed
    settled: Health | None = None  # the last UP or DOWN: what UNKNOWN falls back to
    streak: int = 0  # consecutive observations counting toward the next transition
    streak_since: float = 0.0  # time of the first of them
    held: bool = False  # DEGRADED with the DOWN thresholds met, waiting for a canary to vouch for our network

    @classmethod
    def start(cls, now: float, settled: Health | None = None) -> Verdict:
        """A fresh verdict; ``settled=DOWN`` after a restart in failover keeps recovery hysteretic."""
        return cls(Health.UNKNOWN, now, settled)


@dataclass(frozen=True, slots=True)
class Observation:
    failing: bool  # the trigger's endpoints fail (see ``portal_failing``)
    network_down: bool = False  # every canary fails
    # A canary answered in a probe started at or after the failure streak began (or there are no
    # canaries): our own network worked while the portal failed, so the failures may mean DOWN.
    network_confirmed: bool = True


def step(v: Verdict, obs: Observation, now: float, down_after: Threshold, up_after: Recovery) -> Verdict:
    """The verdict after one more observation."""
    if obs.network_down:
        return v if v.health is Health.UNKNOWN else _move(v, Health.UNKNOWN, now)
    if obs.failing:
        return _on_failure(v, now, down_after, obs.network_confirmed)
    return _on_success(v, now, up_after)


def confirm_network(v: Verdict, now: float) -> Verdict:
    """The verdict once a canary has vouched for our network since the failure streak began.

    Not an observation of the portal: nothing is counted. Only a held DEGRADED (its thresholds
    already met) moves, to DOWN at once, so the gate never delays a failover by more than it must.
    """
    return _move(v, Health.DOWN, now) if v.held and v.health is Health.DEGRADED else v


def _on_failure(v: Verdict, now: float, down_after: Threshold, network_confirmed: bool) -> Verdict:
    if v.health is Health.DOWN:
        return v
    if v.health is Health.RECOVERING or (v.health is Health.UNKNOWN and v.settled is Health.DOWN):
        # It never really came back; not gated: failover is still on (RECOVERING and UNKNOWN keep it).
        return _move(v, Health.DOWN, now)
    if v.health is Health.DEGRADED:
        v = replace(v, streak=v.streak + 1)
    else:  # UP, or UNKNOWN with no settled DOWN: start counting
        v = replace(_move(v, Health.DEGRADED, now), streak=1, streak_since=now)
    if v.streak >= down_after.failures and now - v.streak_since >= down_after.seconds - SLACK:
        return _move(v, Health.DOWN, now) if network_confirmed else replace(v, held=True)
    return v


def _on_success(v: Verdict, now: float, up_after: Recovery) -> Verdict:
    if v.health is Health.UP:
        return v
    if v.health is Health.DEGRADED or (v.health is Health.UNKNOWN and v.settled is not Health.DOWN):
        return _move(v, Health.UP, now)  # a blip, or a first look at a healthy portal
    if v.health is Health.RECOVERING:
        v = replace(v, streak=v.streak + 1)
    else:  # DOWN, or UNKNOWN after DOWN: recovery must be sustained
        v = replace(_move(v, Health.RECOVERING, now), streak=1, streak_since=now)
    if v.streak >= up_after.successes and now - v.streak_since >= up_after.seconds - SLACK:
        return _move(v, Health.UP, now)
    return v


def _move(v: Verdict, health: Health, now: float) -> Verdict:
    settled = health if health in (Health.UP, Health.DOWN) else v.settled
    return Verdict(health, now, settled, 0, now)


def trigger_roles(trigger: str) -> frozenset[str]:
    """The endpoint roles whose results can move the verdict of a portal with this trigger."""
    return frozenset({trigger}) if trigger in ("public", "admin") else frozenset({"public", "admin"})


def portal_failing(trigger: str, failing_by_role: dict[str, bool]) -> bool:
    """Whether the portal counts as failing, given which endpoint roles currently fail.

    ``failing_by_role`` maps ``public``/``admin`` to whether any endpoint of that role fails
    (roles with no result yet are absent). ``any``: either role fails; ``all``: every role fails.
    """
    if trigger in ("public", "admin"):
        return failing_by_role.get(trigger, False)
    if trigger == "any":
        return any(failing_by_role.values())
    return bool(failing_by_role) and all(failing_by_role.values()) and len(failing_by_role) == 2
