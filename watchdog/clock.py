"""portalguard's one clock: unix time that never steps.

Every duration in portalguard (a verdict's ``down_after.seconds``, ``min_failover``, a retry's
backoff, a reminder, ``max_active``, a rate limit) is a difference of two readings of this clock, and
every record (events, ``since``, booking requests) is a reading of it. It starts at the system's wall
time and then advances with the monotonic clock, so an NTP step of an hour mid-outage neither fires
a failover early nor holds a retry back for an hour. It follows a stepped system clock only
gradually (``SLEW``: at most 1 % of the time that passes), so records drift back to true wall time
without any measured duration changing by more than that.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("portalguard.clock")

SLEW = 0.01  # at most 10 ms of correction per second: durations stay within 1 %
STEP_WARNING = 2.0  # seconds between wall and steady time worth one log line


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


# The process's clock: the service and the CLI read time only through this (or one injected in tests).
steady_time = SteadyClock()
