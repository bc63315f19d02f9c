"""One day's complete listing against what the mirror holds: what to write, and what changed (pure).

``held`` is what the mirror holds for the listing's day **and** every row, of whatever day, whose id
the listing names (an appointment moved from another day is one row, found by its id). Then:

- a listed id not held is *added*; a held one whose fields differ (day, times, patient fields,
  status, cancelled, source, or it had vanished) is *updated* — or *cancelled* if the portal now
  says cancelled and it was not; an unchanged one is only *seen* (``synced_at``);
- a row held **for this day** that the listing lacks *vanishes*: cancelled, ``vanished_at=now``,
  kept (never deleted before retention); one that vanished before is left exactly as it is;
- a row's ``day`` is the day of the listing it was last seen in, so a day's listing alone decides
  its rows.

So the result of syncing several days does not depend on their order: an appointment moved from
day A to day B is, after both listings, on B and not vanished — whether A's listing (which
vanishes it) or B's (which moves it back to life on B) came first. A day whose listing failed is
not reconciled at all; its rows change only if another day's listing names them (a move).
If a listing names an id twice (a source's bug), the last one counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace

from failover.mirror.model import DayChanges, DayListing, Listed, Mirrored


@dataclass(frozen=True, slots=True)
class Reconciled:
    upserts: tuple[Mirrored, ...]  # rows to write whole: new, changed, vanished
    seen: tuple[str, ...]  # ids listed and unchanged: only their ``synced_at`` becomes ``now``
    changes: DayChanges


def _epoch(moment: dt.datetime, what: str, appointment_id: str) -> float:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"appointment {appointment_id}: its {what} time has no time zone")
    return moment.timestamp()


def _content(row: Mirrored) -> tuple[object, ...]:
    """What a listing can change (not when it was first or last seen)."""
    return (
        row.day,
        row.start,
        row.end,
        row.name,
        row.phone,
        row.menu,
        row.status,
        row.cancelled,
        row.vanished_at,
        row.source,
    )


def as_mirrored(portal: str, day: dt.date, a: Listed, source: str, first_seen: float, now: float) -> Mirrored:
    end = None if a.end is None else _epoch(a.end, "end", a.id)
    return Mirrored(
        portal=portal,
        id=a.id,
        day=day,
        start=_epoch(a.start, "start", a.id),
        end=end,
        name=a.name,
        phone=a.phone,
        menu=a.menu,
        status=a.status,
        cancelled=a.cancelled,
        vanished_at=None,
        source=source,
        first_seen=first_seen,
        synced_at=now,
    )


def reconcile(portal: str, held: Mapping[str, Mirrored], listing: DayListing, source: str, now: float) -> Reconciled:
    changes = DayChanges(listing.day)
    upserts: list[Mirrored] = []
    seen: list[str] = []
    listed = {a.id: a for a in listing.appointments}  # the last of a repeated id wins
    for aid, a in listed.items():
        old = held.get(aid)
        row = as_mirrored(portal, listing.day, a, source, now if old is None else old.first_seen, now)
        if old is None:
            changes.added.append(aid)
            upserts.append(row)
        elif _content(old) == _content(row):
            seen.append(aid)
        else:
            (changes.cancelled if row.cancelled and not old.cancelled else changes.updated).append(aid)
            upserts.append(row)
    for aid, old in held.items():
        if aid in listed or old.day != listing.day or old.vanished_at is not None:
            continue
        (changes.updated if old.cancelled else changes.cancelled).append(aid)
        upserts.append(replace(old, cancelled=True, vanished_at=now, synced_at=now))
    return Reconciled(tuple(upserts), tuple(seen), changes)
