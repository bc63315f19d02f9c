"""What the templates read from one decoded mail: a booking change, an unread mail, or nothing.

- A mail none of whose senders is in ``from`` is nothing (``None``): another sender's mail is not ours
  to read (it is counted, never listed).
- The first template whose ``subject`` is found in the subject decides the kind; its ``body`` must
  then be found in the body and give an ``id``. Otherwise the mail is *unread* (``template`` or
  ``body``), listed for staff: never dropped silently.
- ``date`` and ``time`` read as the admin sources read them (``failover.mirror.dates``); a year left
  out is the one nearest the mail's own date. A booked mail needs both (else it is unread, ``date``);
  a changed mail may give them or not; a cancelled one needs neither.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from failover.mirror.dates import at, parse_date, parse_times
from failover.mirror.mail.decode import Mail
from failover.mirror.model import MailBooking, MailEffect, UnreadMail
from failover.mirror.sources.base import clean

if TYPE_CHECKING:
    from failover.mirror.mail.config import MailSource, MailTemplate


@dataclass(frozen=True, slots=True)
class Reading:
    """What ``mail-test`` shows: the template that matched (its index), the groups it read, the result."""

    allowed: bool
    template: int | None
    kind: str | None
    fields: dict[str, str]
    effect: MailEffect
    problem: str | None  # why it is unread (for staff: no patient data)


def read(cfg: MailSource, mail: Mail, received: float, tz: ZoneInfo) -> Reading:
    allowed = any(sender in cfg.senders for sender in mail.senders)
    template, index = _template(cfg.templates, mail.subject)
    if template is None:
        effect = UnreadMail(mail.key, received, mail.subject, "template") if allowed else None
        return Reading(allowed, None, None, {}, effect, "no template's subject matches")
    match = template.body_re.search(mail.body)
    fields = {k: clean(v) for k, v in (match.groupdict() if match else {}).items() if v is not None}
    if not fields.get("id"):
        effect = UnreadMail(mail.key, received, mail.subject, "body") if allowed else None
        problem = "the template's body does not match" if match is None else "the body gives no id"
        return Reading(allowed, index, template.kind, fields, effect, problem)
    try:
        start, end = _times(fields, mail, received, tz)
    except ValueError as err:
        effect = UnreadMail(mail.key, received, mail.subject, "date") if allowed else None
        return Reading(allowed, index, template.kind, fields, effect, str(err))
    if template.kind == "booked" and start is None:
        effect = UnreadMail(mail.key, received, mail.subject, "date") if allowed else None
        return Reading(allowed, index, template.kind, fields, effect, "a booked mail needs date and time")
    booking = MailBooking(
        kind=template.kind,
        id=fields["id"],
        received=received,
        day=None if start is None else start.astimezone(tz).date(),
        start=start,
        end=end,
        name=fields.get("name"),
        phone=fields.get("phone"),
        menu=fields.get("menu"),
    )
    return Reading(allowed, index, template.kind, fields, booking if allowed else None, None)


def _template(templates: list[MailTemplate], subject: str) -> tuple[MailTemplate | None, int | None]:
    for i, template in enumerate(templates):
        if template.subject_re.search(subject):
            return template, i
    return None, None


def _times(
    fields: dict[str, str], mail: Mail, received: float, tz: ZoneInfo
) -> tuple[dt.datetime | None, dt.datetime | None]:
    if "date" not in fields and "time" not in fields:
        return None, None
    if "date" not in fields or "time" not in fields:
        raise ValueError("the template reads a date without a time, or a time without a date")
    sent = mail.date.astimezone(tz) if mail.date is not None else dt.datetime.fromtimestamp(received, tz)
    day = parse_date(fields["date"], sent.date())
    begins, ends = parse_times(fields["time"])
    return at(day, begins, ends, tz)
