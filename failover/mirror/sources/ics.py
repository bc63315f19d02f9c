"""``ics``: an iCalendar feed of the portal's reservations, parsed with the ``icalendar`` package.

One plain GET (no staff login; HTTP Basic when ``username``/``password`` are set, sent to the feed's
own origin only), under the same rules as every source: the feed's host only, the portal's timeout,
the body cap. UID is the id, DTSTART/DTEND (or DURATION) the time, converted to the clinic's zone;
SUMMARY the name unless ``fields`` says otherwise; ``STATUS:CANCELLED`` cancelled. All-day events
(a DTSTART that is a date) are no appointments and are ignored. A feed without events is a valid
empty listing of every day.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, Field, SecretStr, model_validator

from failover.mirror.model import DayResult, Listed, SyncFailure
from failover.mirror.sources.base import DayBook, clean, fail_all
from watchdog.config_types import HttpUrl, StrictModel
from watchdog.targets import Endpoint

if TYPE_CHECKING:
    from failover.mirror.session import StaffSession


def _property(name: str) -> str:
    if not re.match(r"^[A-Za-z][A-Za-z0-9-]*$", name):
        raise ValueError(f'"{name}" is not an iCalendar property name (use e.g. SUMMARY, DESCRIPTION, X-PHONE)')
    return name.upper()


Property = Annotated[str, AfterValidator(_property)]


class IcsFields(StrictModel):
    """Which event property holds what (UID is always the id, STATUS the status)."""

    name: Property = "SUMMARY"
    phone: Property | None = None  # e.g. X-PHONE
    menu: Property | None = None  # e.g. DESCRIPTION


class IcsSource(StrictModel):
    type: Literal["ics"]
    url: HttpUrl = Field(description="The iCalendar feed (all upcoming reservations).")
    username: str | None = None
    password: SecretStr | None = None
    fields: IcsFields = Field(default_factory=IcsFields)

    @model_validator(mode="after")
    def _pair(self) -> IcsSource:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together (set both for HTTP Basic, or neither)")
        return self

    def session_endpoint(self, endpoints: Mapping[str, Endpoint]) -> Endpoint:
        return Endpoint(url=self.url)  # its own host only; no login

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        if self.username is None or self.password is None:
            return None
        return self.username, self.password.get_secret_value()


async def fetch(cfg: IcsSource, session: StaffSession, days: Sequence[dt.date], tz: ZoneInfo) -> list[DayResult]:
    """One fetch of the feed; a result per day of ``days``, in order."""
    try:
        page = await session.get(cfg.url)
    except SyncFailure as failure:
        if failure.kind == "login":
            raise
        return fail_all(days, failure)
    return read(cfg, page.text, days, tz)


def read(cfg: IcsSource, text: str, days: Sequence[dt.date], tz: ZoneInfo) -> list[DayResult]:
    import icalendar

    try:
        calendar = icalendar.Calendar.from_ical(text)
    except (ValueError, IndexError, KeyError):
        # The parser's message quotes the offending line: patient data. Never passed on.
        return fail_all(days, SyncFailure("parse", "not an iCalendar feed"))
    book = DayBook(days)
    for number, event in enumerate(calendar.walk("VEVENT"), 1):
        try:
            placed = _event(cfg, event, tz, number)
        except SyncFailure as failure:  # an event that cannot be placed on a day: no day is complete
            return fail_all(days, failure)
        if placed is None:
            continue
        day, listed = placed
        if isinstance(listed, SyncFailure):
            book.fail(day, listed)
        else:
            book.add(day, listed, origin="feed")
    for day in days:
        book.read(day)
    return book.results()


def _event(cfg: IcsSource, event: Any, tz: ZoneInfo, number: int) -> tuple[dt.date, Listed | SyncFailure] | None:
    where = f"event {number}"  # never a property's value
    start = _moment(event, "DTSTART", tz, where)
    if start is None:
        raise SyncFailure("parse", f"{where}: no DTSTART")
    if not isinstance(start, dt.datetime):
        return None  # an all-day event (a holiday, a closing day): not an appointment
    # A recurring event (RRULE) is read as its first instance only: booking portals list each
    # appointment as an event of its own, so a rule would be something else (a staff's weekly slot).
    day = start.date()
    try:
        end = _moment(event, "DTEND", tz, where)
    except SyncFailure as failure:
        return day, failure
    if end is None and event.get("DURATION") is not None:
        try:
            end = start + event.decoded("DURATION")
        except (ValueError, TypeError):
            return day, SyncFailure("parse", f"{where}: DURATION not understood")
    if end is not None and not isinstance(end, dt.datetime):
        end = None
    ident, name = _text(event, "UID"), _text(event, cfg.fields.name)
    if not ident:
        return day, SyncFailure("parse", f"{where}: no UID")
    if not name:
        return day, SyncFailure("parse", f"{where}: no {cfg.fields.name} (fields.name)")
    status = _text(event, "STATUS")
    return day, Listed(
        id=ident,
        start=start,
        end=end,
        name=name,
        phone=_text(event, cfg.fields.phone) if cfg.fields.phone else "",
        menu=_text(event, cfg.fields.menu) if cfg.fields.menu else "",
        status=status,
        cancelled=status.upper() == "CANCELLED",
    )


def _moment(event: Any, key: str, tz: ZoneInfo, where: str) -> dt.date | dt.datetime | None:
    if event.get(key) is None:
        return None
    try:
        value = event.decoded(key)
    except (ValueError, TypeError, KeyError):
        raise SyncFailure("parse", f"{where}: {key} not understood") from None
    if isinstance(value, dt.datetime):
        # A "floating" time (no TZID, no Z) is the clinic's own local time.
        return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)
    if isinstance(value, dt.date):
        return value
    raise SyncFailure("parse", f"{where}: {key} not understood")


def _text(event: Any, key: str) -> str:
    value = event.get(key)
    if value is None:
        return ""
    if isinstance(value, list):  # a property given twice
        value = value[0]
    return clean(str(value))
