"""``/staff/appointments``: one day of the appointment mirror as the front desk reads it (and prints
it on A4), with the booking requests the fallback page received that day beside it.

Pure view building: the handler in ``failover.web.app`` reads the store and renders the template.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from failover.mirror.model import Mirrored, MirrorState, UnreadMail
from failover.store import BookingRequest

STALE_AFTER_INTERVALS = 3  # as the MirrorStale alert: the copy may be missing recent changes
UNREAD_SHOWN_FOR = 7 * 86400.0  # booking mails no template could read, listed this long after they arrived


@dataclass(frozen=True, slots=True)
class UnreadRow:
    portal: str
    received: str  # "12/02 10:20"
    subject: str  # may name a patient: shown to staff only, like the appointments


@dataclass(frozen=True, slots=True)
class Row:
    time: str  # "10:00–10:30"
    portal: str
    name: str
    phone: str
    phone_href: str
    menu: str
    status: str  # booked | cancelled | vanished
    status_text: str  # the portal's own words, when it gave any
    vanished: str  # when it vanished from the portal's listing (HH:MM), else ""


@dataclass(frozen=True, slots=True)
class Freshness:
    portal: str
    synced: str  # "12/02 10:20", or "" if never
    stale: bool
    error_kind: str | None


@dataclass(frozen=True, slots=True)
class DayView:
    day: dt.date
    previous: dt.date
    next: dt.date
    rows: list[Row]
    booked: int
    cancelled: int
    freshness: list[Freshness]
    requests: list[BookingRequest]
    unread: list[UnreadRow] = field(default_factory=list)


def day_view(
    day: dt.date,
    appointments: Iterable[Mirrored],
    states: Sequence[MirrorState],
    intervals: dict[str, float],
    requests: Iterable[BookingRequest],
    tz: ZoneInfo,
    now: float,
    unread: Iterable[tuple[str, UnreadMail]] = (),
) -> DayView:
    rows = [_row(a, tz) for a in sorted(appointments, key=lambda a: (a.start, a.portal, a.id))]
    booked = sum(r.status == "booked" for r in rows)
    return DayView(
        day=day,
        previous=day - dt.timedelta(days=1),
        next=day + dt.timedelta(days=1),
        rows=rows,
        booked=booked,
        cancelled=len(rows) - booked,
        freshness=[_freshness(s, intervals.get(s.portal, 600.0), tz, now) for s in states],
        requests=[r for r in requests if dt.datetime.fromtimestamp(r.created, tz).date() == day],
        unread=[UnreadRow(portal, _clock(m.received, tz), m.subject) for portal, m in unread],
    )


def _row(a: Mirrored, tz: ZoneInfo) -> Row:
    start = dt.datetime.fromtimestamp(a.start, tz).strftime("%H:%M")
    end = dt.datetime.fromtimestamp(a.end, tz).strftime("%H:%M") if a.end is not None else ""
    status = "vanished" if a.vanished_at is not None else "cancelled" if a.cancelled else "booked"
    return Row(
        time=f"{start}–{end}" if end else start,
        portal=a.portal,
        name=a.name,
        phone=a.phone,
        phone_href="tel:" + "".join(c for c in a.phone if c.isdigit() or c == "+"),
        menu=a.menu,
        status=status,
        status_text=a.status,
        vanished=_clock(a.vanished_at, tz) if a.vanished_at is not None else "",
    )


def _freshness(state: MirrorState, every: float, tz: ZoneInfo, now: float) -> Freshness:
    last = state.last_success
    stale = last is None or now - last > STALE_AFTER_INTERVALS * every
    return Freshness(state.portal, _clock(last, tz) if last else "", stale, state.last_error_kind)


def _clock(ts: float, tz: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(ts, tz).strftime("%m/%d %H:%M")
