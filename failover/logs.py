"""The service's log: bounded however often one thing goes wrong, timed in the clinic's zone.

An attack (or a full disk, or descriptors run out) can make the same line, traceback and all, be
logged thousands of times a second: 72 MB in 40 s once. The handler of ``portalguard run`` lets
each kind of line through a few times per ``window`` seconds; the first one after a quiet spell
says how many were left out. A library's line (uvicorn, asyncio, httpx) is counted by its *template*
(logger, level, format string), ``burst`` times a window, so lines that differ only in an address
or a port — an attacker picks those — still count as one. portalguard's own lines are counted by
their text, once a window: "portal A failed over" must not hide "portal B failed over", while the
same line every tick (a full disk) is shown once a minute with its count.

Times are ISO 8601 with the clinic's UTC offset, as the CLI and the incident reports show them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

WINDOW = 60.0
BURST = 10  # a library's lines of one template per window
OWN_BURST = 1  # portalguard's identical lines per window
MAX_KINDS = 2000  # memory stays bounded whatever is logged
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RateLimitFilter(logging.Filter):
    def __init__(
        self,
        window: float = WINDOW,
        burst: int = BURST,
        clock: Callable[[], float] = time.monotonic,
        own_burst: int = OWN_BURST,
    ) -> None:
        super().__init__()
        self.window = window
        self.burst = burst
        self.own_burst = own_burst
        self.clock = clock
        self._seen: dict[tuple[str, int, str], list[float]] = {}  # kind -> [window start, passed, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        ours = _ours(record)
        key = (record.name, record.levelno, record.getMessage() if ours else str(record.msg))
        entry = self._seen.get(key)
        if entry is None or now - entry[0] >= self.window:
            suppressed = int(entry[2]) if entry else 0
            self._remember(key, [now, 1, 0])
            if suppressed:
                record.msg, record.args = (
                    f"{record.getMessage()} [{suppressed} more like this in the last {self.window:g}s not logged]",
                    None,
                )
            return True
        if entry[1] < (self.own_burst if ours else self.burst):
            entry[1] += 1
            return True
        entry[2] += 1
        return False

    def _remember(self, key: tuple[str, int, str], entry: list[float]) -> None:
        self._seen.pop(key, None)
        self._seen[key] = entry
        if len(self._seen) > MAX_KINDS:
            del self._seen[next(iter(self._seen))]


def _ours(record: logging.LogRecord) -> bool:
    return record.name == "portalguard" or record.name.startswith("portalguard.")


class ClinicTimeFormatter(logging.Formatter):
    """``2026-12-02T09:15:04.123+09:00``: the same clock face as ``portalguard events``."""

    def __init__(self, tz: ZoneInfo, fmt: str = FORMAT) -> None:
        super().__init__(fmt)
        self.tz = tz

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, self.tz).isoformat(timespec="milliseconds")


def service_log_handler(tz: ZoneInfo) -> logging.Handler:
    """The stderr handler of ``portalguard run``: rate-limited on the handler itself (a filter on a
    logger would miss its children's lines), times in the clinic's zone."""
    handler = logging.StreamHandler()
    handler.addFilter(RateLimitFilter())
    handler.setFormatter(ClinicTimeFormatter(tz))
    return handler
