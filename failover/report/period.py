"""The period a report covers: a local month or local dates, as unix times in the clinic's zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class PeriodError(ValueError):
    """A period that cannot be: its message says what to type instead."""


@dataclass(frozen=True, slots=True)
class Period:
    start: float  # unix time, included
    end: float  # unix time, excluded
    label: str  # what the reader asked for: "2026-03" or "2026-03-01 – 2026-03-15"


def local_midnight(day: date, tz: ZoneInfo) -> float:
    """The start of ``day`` in ``tz`` (a DST day is 23 or 25 hours long: never add 86400 to it)."""
    return datetime.combine(day, time(0), tz).timestamp()


def month(text: str, tz: ZoneInfo) -> Period:
    """``2026-03``: from the 1st 00:00 local to the next month's 1st 00:00 local."""
    found = _MONTH.match(text)
    if not found or not 1 <= int(found[2]) <= 12:
        raise PeriodError(f"{text!r} is not a month: write it as YYYY-MM, e.g. 2026-03")
    year, number = int(found[1]), int(found[2])
    first = date(year, number, 1)
    following = date(year + number // 12, number % 12 + 1, 1)
    return Period(local_midnight(first, tz), local_midnight(following, tz), text)


def days(start: str, end: str, tz: ZoneInfo) -> Period:
    """``--from 2026-03-01 --to 2026-03-15``: both local dates, both included (the 15th's last second too)."""
    first, last = _date(start, "--from"), _date(end, "--to")
    if last < first:
        raise PeriodError(f"--to {end} is before --from {start}: give the earlier date to --from")
    label = start if first == last else f"{start} – {end}"
    return Period(local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz), label)


def this_month(now: float, tz: ZoneInfo) -> str:
    """The month ``now`` falls in, locally, as YYYY-MM."""
    return datetime.fromtimestamp(now, tz).strftime("%Y-%m")


def shift(text: str, months: int) -> str:
    """The month ``months`` after (before, negative) the month ``text`` (YYYY-MM, already valid)."""
    year, number = (int(part) for part in text.split("-"))
    index = year * 12 + number - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{option} {text!r} is not a date: write it as YYYY-MM-DD, e.g. 2026-03-01") from None
