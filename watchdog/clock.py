"""portalguard's one clock: unix time that never steps.

Every duration in portalguard (a verdict's ``down_after.seconds``, ``min_failover``, a retry's
backoff, a reminder, ``max_active``, a rate limit) is a difference of two readings of this clock, and
every record (events, ``since``, booking requests) is a reading of it. It starts at the system's wall
time and then advances with the monotonic clock, so an NTP step of an hour mid-outage neither fires
a failover early nor holds a retry back for an hour. It follows a stepped system clock only
gradually (``SLEW``: at most 1 % of the time that passes), so records drift back to true wall time
without any measured duration changing by more than that.

Other processes on the host (the CLI) read the running service's clock, not their own wall clock:
the service publishes ``monotonic_offset()`` in its store (``PUBLISHED_KEY``) with its heartbeat,
and ``time.monotonic()`` plus that offset is the service's time (the monotonic clock is the host's,
shared by every process). ``steady_at`` and ``wall_at`` convert between wall times people type or
read ("14:00") and readings of a steady clock that is still slewing toward the wall clock.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

log = logging.getLogger("portalguard.clock")

SLEW = 0.01  # at most 10 ms of correction per second: durations stay within 1 %
STEP_WARNING = 2.0  # seconds between wall and steady time worth one log line
PUBLISHED_KEY = "steady_clock"  # the store value: {"monotonic_offset": steady - monotonic}


class SteadyClock:
    """A callable returning unix time (float seconds), monotonic, slewed toward the wall clock.

    ``wall`` and ``monotonic`` are the two sources (injected: tests step ``wall`` and watch nothing
    jump). Safe to call from any thread.
    """

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        slew: float = SLEW,
    ) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self._slew = slew
        self._lock = threading.Lock()
        self._last = monotonic()
        self._offset = wall() - self._last  # steady time = monotonic + offset
        self._warned_for = 0.0

    def __call__(self) -> float:
        with self._lock:
            now = self._monotonic()
            elapsed = max(now - self._last, 0.0)
            self._last = now
            gap = (self._wall() - now) - self._offset
            room = elapsed * self._slew
            self._offset += max(-room, min(room, gap))
            self._note_step(gap)
            return now + self._offset

    def monotonic_offset(self) -> float:
        """This clock minus the monotonic clock (as of its last reading): another process on this host
        reads this clock as ``time.monotonic() + monotonic_offset()``."""
        with self._lock:
            return self._offset

    def _note_step(self, gap: float) -> None:
        if abs(gap) < STEP_WARNING:
            self._warned_for = 0.0
        elif abs(gap - self._warned_for) >= STEP_WARNING:
            self._warned_for = gap
            log.warning(
                "the system clock differs from portalguard's steady time by %+.0fs (a clock step?): durations are "
                "unaffected; records follow the system clock gradually (at most %.0f%% faster or slower)",
                gap,
                self._slew * 100,
            )


def steady_at(wall_ts: float, wall_now: float, steady_now: float, slew: float = SLEW) -> float:
    """What a steady clock reading ``steady_now`` while the wall clock reads ``wall_now`` will read
    when the wall clock reads ``wall_ts``: the gap between them closes at ``slew`` from now on (for a
    past ``wall_ts``, the gap of now)."""
    gap = steady_now - wall_now
    closed = min(abs(gap), slew * max(wall_ts - wall_now, 0.0))
    return wall_ts + gap - math.copysign(closed, gap)


def wall_at(steady_ts: float, wall_now: float, steady_now: float, slew: float = SLEW) -> float:
    """The inverse of ``steady_at``: the wall time at which the steady clock reads ``steady_ts``."""
    gap = steady_now - wall_now
    if steady_ts <= steady_now:
        return steady_ts - gap
    ahead = (steady_ts - steady_now) / (1.0 - math.copysign(slew, gap))  # wall seconds from now
    return wall_now + ahead if slew * ahead < abs(gap) else steady_ts  # once the gap is closed, equal


# The process's clock: the service and the CLI read time only through this (or one injected in tests).
steady_time = SteadyClock()
