"""What the mirror is made of: a source's listing of one day, and the copy the store keeps.

Plain data that imports nothing of the application (rank 0): the store, the sources, the sync, the
web page and the CLI all speak it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

# Why a sync (or one day of it) failed, as counted in portalguard_mirror_sync_errors_total{kind}.
FAILURE_KINDS = (
    "login",  # the staff login was refused or its success text missing
    "http_status",  # an HTTP error status (>= 400)
    "timeout",  # no answer in time
    "connect",  # refused, reset, DNS, TLS handshake
    "redirect",  # led to another host or too many redirects
    "maintenance",  # an ``expect.not_contains`` text on the page
    "parse",  # rows that cannot be read: a changed layout, a missing field, a date or time not understood
    "empty",  # zero rows and no ``empty_contains`` text: a portal in trouble often serves an empty list
    "store",  # the listing was read but could not be written (a full disk): the mirror keeps what it had
)


class SyncFailure(Exception):
    """A source could not list a day (or any day). ``detail`` is for staff and logs: never patient data."""

    def __init__(self, kind: str, detail: str) -> None:
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}")
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Listed:
    """One appointment as the portal lists it. Times are aware (the clinic's zone)."""

    id: str
    start: dt.datetime
    end: dt.datetime | None
    name: str
    phone: str = ""
    menu: str = ""
    status: str = ""  # the portal's own status text, as shown ("予約確定", "キャンセル")
    cancelled: bool = False  # the status says cancelled (``cancelled_contains``, STATUS:CANCELLED)


@dataclass(frozen=True, slots=True)
class DayListing:
    """Every appointment the portal listed for ``day`` (the clinic's date), read completely.

    Only a complete listing may be reconciled: rows the mirror holds for that day and the listing
    lacks are marked vanished. A listing that covers a range (CSV, iCalendar) gives one per day.
    """

    day: dt.date
    appointments: tuple[Listed, ...]


@dataclass(frozen=True, slots=True)
class DayFailure:
    day: dt.date
    failure: SyncFailure


DayResult = DayListing | DayFailure


@dataclass(frozen=True, slots=True)
class Mirrored:
    """One appointment as the mirror keeps it (decrypted). Times are epoch seconds (UTC)."""

    portal: str
    id: str
    day: dt.date  # the clinic's date of ``start``
    start: float
    end: float | None
    name: str
    phone: str
    menu: str
    status: str
    cancelled: bool  # cancelled on the portal, or vanished from its listing
    vanished_at: float | None  # when a complete listing of its day no longer showed it
    source: str  # admin_html | admin_csv | ics | mail
    first_seen: float
    synced_at: float  # the last sync that saw it (or marked it vanished)
    mail_at: float | None = None  # when the last booking mail applied to it arrived (the mail source)


@dataclass(slots=True)
class DayChanges:
    """What reconciling one day changed, by appointment id (counts go to the CLI and the log)."""

    day: dt.date
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)  # newly cancelled or vanished

    @property
    def counts(self) -> tuple[int, int, int]:
        return len(self.added), len(self.updated), len(self.cancelled)


@dataclass(frozen=True, slots=True)
class MirrorState:
    """A portal's mirror at a glance (status, metrics, the outage message): counts, never names."""

    portal: str
    last_success: float | None
    last_attempt: float | None
    last_error_kind: str | None
    last_error: str | None  # the failure's detail (no patient data)
    booked: int  # booked (not cancelled) appointments from today on


# -- the mail source ---------------------------------------------------------------------------------

# Why a check of the mailbox failed (status, the log). "tls" and "login" are permanent: retried only
# after a restart (a certificate or a password does not fix itself, and retrying may lock the account).
MAIL_FAILURE_KINDS = ("connect", "timeout", "tls", "login", "folder", "protocol", "store")
PERMANENT_MAIL_FAILURES = ("tls", "login")
# Why a mail from an allowed sender was not read (listed for staff, counted).
UNREAD_REASONS = (
    "template",  # no template's subject matched
    "body",  # a template's subject matched, its body did not (or gave no id)
    "date",  # a booked or changed mail whose date or time cannot be read
)


class MailFailure(Exception):
    """The mailbox could not be read. ``detail`` names the host, never the user or the password."""

    def __init__(self, kind: str, detail: str) -> None:
        if kind not in MAIL_FAILURE_KINDS:
            raise ValueError(f"unknown mail failure kind {kind!r}")
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail

    @property
    def permanent(self) -> bool:
        return self.kind in PERMANENT_MAIL_FAILURES


@dataclass(frozen=True, slots=True)
class MailBooking:
    """What one booking mail says of one appointment. ``None``: the mail does not say (a changed or a
    cancelled mail names only what changed); times are aware."""

    kind: str  # booked | changed | cancelled
    id: str
    received: float  # when the mail arrived (epoch seconds): the admin listing wins if it is newer
    day: dt.date | None = None  # the clinic's date of ``start``
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    name: str | None = None
    phone: str | None = None
    menu: str | None = None


@dataclass(frozen=True, slots=True)
class UnreadMail:
    """A mail from an allowed sender that no template could read: staff see its date and subject."""

    key: str  # the mail's identity (a hash of its Message-ID): one row however often it is read
    received: float
    subject: str  # may hold a patient's name: sealed in the store
    reason: str  # UNREAD_REASONS


MailEffect = MailBooking | UnreadMail | None  # None: a mail from another sender, skipped


@dataclass(frozen=True, slots=True)
class MailFolderState:
    """Where the reading of one mailbox folder stands (the store's ``mirror_mail_state``)."""

    portal: str
    folder: str
    uidvalidity: int | None
    last_uid: int
    last_success: float | None
    last_attempt: float | None
    last_error_kind: str | None
    last_error: str | None
    unread: int  # unread mails listed (from allowed senders, no template read them)


@dataclass(frozen=True, slots=True)
class MailApplied:
    """What applying one mail did (``Store.apply_mail``)."""

    appointment: str | None  # added | updated | cancelled | unchanged | superseded | unknown; None: no booking
    unread_new: bool  # a new unread mail was listed (the counter counts it once)
