"""Repeated identical warning and error lines, at most once a minute: a failure that repeats every
tick (a full disk) must not fill the disk with its own log on top."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

REPEAT_EVERY = 60.0
_MAX_KEYS = 1024  # distinct lines remembered; beyond, start afresh (a few repeats slip through)


class RepeatFilter(logging.Filter):
    """Lets an identical WARNING-or-worse line through once per ``every`` seconds; the next one
    after the window says how many were held back. INFO and below pass untouched."""

    def __init__(self, every: float = REPEAT_EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every = every
        self.clock = clock
        self._seen: dict[tuple[str, int, str], list[float]] = {}  # key -> [last shown, held back]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        text = record.getMessage()
        key = (record.name, record.levelno, text)
        now = self.clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.every:
            seen[1] += 1
            return False
        if seen is not None and seen[1]:
            record.msg, record.args = f"{text} [{int(seen[1])} more like this in the last {now - seen[0]:.0f} s]", None
        if len(self._seen) >= _MAX_KEYS:
            self._seen.clear()
        self._seen[key] = [now, 0]
        return True


def repeat_limited_handler() -> logging.Handler:
    """The service's stderr handler (for ``logging.basicConfig(handlers=…)``): on the handler, as a
    filter on a logger would miss its children's lines."""
    handler = logging.StreamHandler()
    handler.addFilter(RepeatFilter())
    return handler
