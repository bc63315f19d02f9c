"""The date and time texts of Japanese admin screens, read into dates and aware datetimes.

Rank 0: plain functions of their text (and the day a page was asked for); no I/O, no clock. Texts are
NFKC-normalised first, so full-width digits and punctuation (「１０：００～１０：３０」) read like ASCII.

Dates: ``2026/12/02``, ``2026-12-02``, ``2026年12月2日``, ``12月2日(水)``, ``12/2``. A date without a
year takes the year that puts it nearest to the day asked for (a list of 30 Dec .. 5 Jan works).
Times: ``10:00``, ``10:00〜10:30``, ``10:00-10:30``, ``10:00～10:30`` (and ``~``, ``－``, ``–``).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from zoneinfo import ZoneInfo

# A weekday in brackets after a date: (水), （水）, (水・祝); never checked against the date.
_WEEKDAY = r"(?:\s*[(（][^)）]{1,6}[)）])?"
_WITH_YEAR = re.compile(r"(\d{4})\s*(?:[/\-.]\s*(\d{1,2})\s*[/\-.]\s*(\d{1,2})|年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日)")
_WITHOUT_YEAR = re.compile(r"(?:(\d{1,2})\s*/\s*(\d{1,2})|(\d{1,2})\s*月\s*(\d{1,2})\s*日)")
_YEAR_DATE = re.compile(rf"^{_WITH_YEAR.pattern}{_WEEKDAY}$")
_SHORT_DATE = re.compile(rf"^{_WITHOUT_YEAR.pattern}{_WEEKDAY}$")
_CLOCK = r"(\d{1,2})\s*[:：]\s*(\d{2})"
# 〜 (U+301C wave dash) survives NFKC; ～ (U+FF5E) becomes ~, full-width － becomes -.
_TIME = re.compile(rf"^{_CLOCK}(?:\s*[〜~\-–—ー]\s*(?:{_CLOCK})?)?$")


def normalise(text: str) -> str:
    """NFKC, whitespace collapsed and trimmed."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def parse_date(text: str, near: dt.date) -> dt.date:
    """The date ``text`` names; ``near`` (the day asked for) supplies a missing year.

    Raises ``ValueError`` (whose message never repeats the text) when it is not a date.
    """
    value = normalise(text)
    if match := _YEAR_DATE.match(value):
        year, month, day = int(match[1]), int(match[2] or match[4]), int(match[3] or match[5])
        return _date(year, month, day)
    if match := _SHORT_DATE.match(value):
        month, day = int(match[1] or match[3]), int(match[2] or match[4])
        candidates = []
        for year in (near.year - 1, near.year, near.year + 1):
            try:
                candidates.append(dt.date(year, month, day))
            except ValueError:
                continue  # 2/29 of a year without it
        if not candidates:
            raise ValueError("not a calendar date")
        return min(candidates, key=lambda d: abs((d - near).days))
    raise ValueError("not a date text the mirror reads (2026/12/02, 2026-12-02, 12月2日, 12/2)")


def _date(year: int, month: int, day: int) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueError("not a calendar date") from None


def parse_times(text: str) -> tuple[dt.time, dt.time | None]:
    """Start and (if given) end of ``10:00``, ``10:00〜10:30`` and the like; ``ValueError`` otherwise."""
    match = _TIME.match(normalise(text))
    if match is None:
        raise ValueError("not a time text the mirror reads (10:00, 10:00〜10:30)")
    start = _clock(match[1], match[2])
    end = _clock(match[3], match[4]) if match[3] else None
    return start, end


def _clock(hours: str, minutes: str) -> dt.time:
    h, m = int(hours), int(minutes)
    if h == 24 and m == 0:
        return dt.time(0, 0)  # "24:00" ends a day; the caller moves it to the next one
    if h > 23 or m > 59:
        raise ValueError("not a time of day")
    return dt.time(h, m)


def at(day: dt.date, start: dt.time, end: dt.time | None, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime | None]:
    """Aware start and end on ``day`` in ``tz``; an end not after the start is on the next day."""
    begins = dt.datetime.combine(day, start, tzinfo=tz)
    if end is None:
        return begins, None
    ends = dt.datetime.combine(day, end, tzinfo=tz)
    if ends <= begins:
        ends = dt.datetime.combine(day + dt.timedelta(days=1), end, tzinfo=tz)
    return begins, ends


def upcoming(today: dt.date, days_ahead: int) -> list[dt.date]:
    """``today`` .. ``today + days_ahead - 1``: the days a sync lists."""
    return [today + dt.timedelta(days=n) for n in range(days_ahead)]


def clinic_day(moment: dt.datetime, tz: ZoneInfo) -> dt.date:
    """The clinic's date of an aware moment."""
    return moment.astimezone(tz).date()


def named_day(text: str | None, today: dt.date) -> dt.date | None:
    """The day a person names: ``today`` (or nothing), ``tomorrow``, or ``YYYY-MM-DD``; None if it is
    none of these (the CLI's argument and ``/staff/appointments?date=`` alike)."""
    if not text or text == "today":
        return today
    if text == "tomorrow":
        return today + dt.timedelta(days=1)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None
