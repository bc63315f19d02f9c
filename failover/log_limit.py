"""Keeps the log bounded when one thing goes wrong many times a second.

An attack (or a full disk, or descriptors run out) can make the same line, traceback and all, be
logged thousands of times a second: 72 MB in 40 s once. A filter on the handlers lets each message
*template* (logger, level, format string) through ``burst`` times per ``window`` seconds; the first
one after a quiet spell says how many were left out. Templates, not formatted text, are counted, so
lines that differ only in an address or a port (an attacker picks those) still count as one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

WINDOW = 60.0
BURST = 10
MAX_TEMPLATES = 2000  # memory stays bounded whatever is logged


class RateLimitFilter(logging.Filter):
    def __init__(self, window: float = WINDOW, burst: int = BURST, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self.burst = burst
        self.clock = clock
        self._seen: dict[tuple[str, int, str], list[float | int]] = {}  # key -> [window start, passed, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        key = (record.name, record.levelno, str(record.msg))
        entry = self._seen.get(key)
        if entry is None or now - entry[0] >= self.window:
            suppressed = int(entry[2]) if entry else 0
            self._remember(key, [now, 1, 0])
            if suppressed:
                # No "%" in the text added: the record's own args still format it.
                record.msg = f"{record.msg} [{suppressed} more like this in the last {self.window:g}s not logged]"
            return True
        if entry[1] < self.burst:
            entry[1] += 1
            return True
        entry[2] += 1
        return False

    def _remember(self, key: tuple[str, int, str], entry: list[float | int]) -> None:
        self._seen.pop(key, None)
        self._seen[key] = entry
        if len(self._seen) > MAX_TEMPLATES:
            del self._seen[next(iter(self._seen))]


def install_log_rate_limit(window: float = WINDOW, burst: int = BURST) -> RateLimitFilter:
    """Put one filter on every handler of the root logger (where every logger's records end up)."""
    limiter = RateLimitFilter(window, burst)
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RateLimitFilter) for f in handler.filters):
            handler.addFilter(limiter)
    return limiter
