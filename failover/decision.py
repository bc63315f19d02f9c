"""Should a portal be in failover? A pure function of the inputs (no I/O, no clock).

Precedence: manual override > maintenance window > the verdict. The verdict only moves the state
on DOWN (on) and UP (off); DEGRADED, RECOVERING and UNKNOWN keep what is. Damping holds failover
on for ``min_failover``, and a portal that failed over too often within an hour is flapping: it
is held in failover (no ads toggling) until the failovers of the last hour fall below the cap, and
staff are asked to decide sooner (an override ends the hold).
"""

from __future__ import annotations

from dataclasses import dataclass

from failover.store import Maintenance, Override
from watchdog.duration import format_duration
from watchdog.verdict import Health


@dataclass(frozen=True, slots=True)
class Inputs:
    now: float
    health: Health
    failover: bool  # the current state
    failover_since: float | None
    override: Override | None
    maintenance: Maintenance | None
    min_failover: float
    starts_last_hour: int  # failovers started within the last hour
    max_starts_per_hour: int
    starts: tuple[float, ...] = ()  # when they started, if known: when a flapping hold ends


@dataclass(frozen=True, slots=True)
class Decision:
    failover: bool
    cause: str  # why, for the audit log and `status`
    flapping: bool = False
    held_until: float | None = None  # flapping: when the hold ends if the portal stays up (None: not known)


def decide(i: Inputs) -> Decision:
    if i.override is not None:
        return Decision(i.override.mode == "on", f"override {i.override.mode}: {i.override.reason}")
    if i.maintenance is not None:
        on = i.maintenance.mode == "failover"
        return Decision(on, f"maintenance window #{i.maintenance.id} ({i.maintenance.mode})")
    if i.health is Health.DOWN:
        return Decision(True, "portal down")
    if i.health is not Health.UP or not i.failover:
        return Decision(i.failover, f"verdict {i.health.value}: keep")
    return _switch_off(i)


def _switch_off(i: Inputs) -> Decision:
    held_for = 0.0 if i.failover_since is None else i.now - i.failover_since
    if held_for < i.min_failover:
        return Decision(True, f"portal up; held {format_duration(i.min_failover - held_for)} more (min_failover)")
    if i.starts_last_hour >= i.max_starts_per_hour:
        return Decision(
            True,
            f"portal up but failed over {i.starts_last_hour}× within an hour: held on (flapping)",
            True,
            hold_end(i.starts, i.max_starts_per_hour),
        )
    return Decision(False, "portal up")


def hold_end(starts: tuple[float, ...], cap: int) -> float | None:
    """When fewer than ``cap`` of ``starts`` fall within the last hour: the hold's end, unless the
    portal fails over again. None if the times are not known (fewer than ``cap`` of them)."""
    if len(starts) < cap:
        return None
    return sorted(starts)[len(starts) - cap] + 3600.0
