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

A booking mail newer than the listing wins over it (``failover.mirror.mail``): a held row whose
``mail_at`` is at or after ``now`` (the listing was read after the sync began at ``now``, so the mail
arrived after the listing started) is left exactly as it is — neither updated nor vanished — until a
listing read after that mail decides. A row whose mail is older follows the listing like any other.

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

from failover.mirror.model import DayChanges, DayListing, Listed, MailBooking, Mirrored


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
        if old is not None and newer_mail(old, now):
            continue
        row = as_mirrored(portal, listing.day, a, source, now if old is None else old.first_seen, now)
        if old is not None:
            row = replace(row, mail_at=old.mail_at)
        if old is None:
            changes.added.append(aid)
            upserts.append(row)
        elif _content(old) == _content(row):
            seen.append(aid)
        else:
            (changes.cancelled if row.cancelled and not old.cancelled else changes.updated).append(aid)
            upserts.append(row)
    for aid, old in held.items():
        if aid in listed or old.day != listing.day or old.vanished_at is not None or newer_mail(old, now):
            continue
        (changes.updated if old.cancelled else changes.cancelled).append(aid)
        upserts.append(replace(old, cancelled=True, vanished_at=now, synced_at=now))
    return Reconciled(tuple(upserts), tuple(seen), changes)


def newer_mail(row: Mirrored, listed_at: float) -> bool:
    """A booking mail about ``row`` arrived at or after a listing read from ``listed_at`` on."""
    return row.mail_at is not None and row.mail_at >= listed_at


MAIL_STATUS = {"booked": "予約受付(メール)", "changed": "予約変更(メール)", "cancelled": "キャンセル(メール)"}


def apply_mail(portal: str, old: Mirrored | None, mail: MailBooking, now: float) -> tuple[Mirrored | None, str]:
    """What one booking mail makes of the row the mirror holds for its id (or of none): the row to
    write (None: nothing) and the outcome: added, updated, cancelled, unchanged, superseded (a listing
    or a mail newer than this mail already decided) or unknown (a change or a cancellation of an
    appointment the mirror does not hold, without the date to place it)."""
    if old is not None:
        # A complete listing read after the mail arrived listed the row (it is the listing's now) or
        # vanished it: the portal's own list knows better than an older mail.
        listed = old.source != "mail" and old.synced_at >= mail.received
        vanished = old.vanished_at is not None and old.vanished_at >= mail.received
        newer_listing = listed or vanished
        newer = old.mail_at is not None and old.mail_at > mail.received
        if newer_listing or newer:
            return None, "superseded"
    if old is None:
        if mail.start is None or mail.day is None:
            return None, "unknown"
        row = Mirrored(
            portal=portal,
            id=mail.id,
            day=mail.day,
            start=_epoch(mail.start, "start", mail.id),
            end=None if mail.end is None else _epoch(mail.end, "end", mail.id),
            name=mail.name or "",
            phone=mail.phone or "",
            menu=mail.menu or "",
            status=MAIL_STATUS[mail.kind],
            cancelled=mail.kind == "cancelled",
            vanished_at=None,
            source="mail",
            first_seen=now,
            synced_at=now,
            mail_at=mail.received,
        )
        return row, "cancelled" if row.cancelled else "added"
    row = replace(
        old,
        status=MAIL_STATUS[mail.kind],
        cancelled=mail.kind == "cancelled",
        vanished_at=None if mail.kind != "cancelled" else old.vanished_at,
        source="mail",
        synced_at=now,
        mail_at=mail.received,
    )
    if mail.start is not None and mail.day is not None:
        end = None if mail.end is None else _epoch(mail.end, "end", mail.id)
        row = replace(row, day=mail.day, start=_epoch(mail.start, "start", mail.id), end=end)
    for name in ("name", "phone", "menu"):
        value = getattr(mail, name)
        if value is not None:
            row = replace(row, **{name: value})
    if _content(row) == _content(old):
        return row, "unchanged"
    return row, "cancelled" if row.cancelled and not old.cancelled else "updated"
