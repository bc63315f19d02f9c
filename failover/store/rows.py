"""What the store hands out: one frozen dataclass per kind of row, the allowed values, the error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REQUEST_STATUSES = ("new", "contacted", "booked", "cancelled")
OVERRIDE_MODES = ("on", "off")
MAINTENANCE_MODES = ("suppress", "failover")
STAFF_ROLES = ("operator", "viewer")  # a viewer sees; an operator also decides
OUTBOX_STATES = ("pending", "sending", "sent", "failed")  # failed: permanently (the URL does not parse)


class StoreError(Exception):
    """The store cannot do what was asked; the message says why and what to do (never row data)."""


class DataKeyError(StoreError):
    """Patient data cannot be sealed or opened with the key the store was given (none, another one,
    or a value changed on disk): a configuration problem naming ``data_key``, not a failing disk."""


@dataclass(frozen=True, slots=True)
class PortalRow:
    portal: str
    failover: bool
    incident: int
    since: float | None
    reason: str
    verdict: str
    verdict_since: float | None
    page_on: bool
    outage_since: float | None = None  # when the current/last failover went on (``since``: last switch)
    outage_reason: str = ""  # why it went on (``reason``: why it last switched)


@dataclass(frozen=True, slots=True)
class EndpointRow:
    portal: str
    endpoint: str
    ok: bool
    status: int | None
    error_kind: str | None
    detail: str
    since: float
    checked: float


@dataclass(frozen=True, slots=True)
class ActionRow:
    portal: str
    action: str
    desired: str  # "on" | "off"
    observed: str  # "on" | "off" | "unknown"
    last_error: str | None
    permanent: bool
    attempts: int
    next_attempt: float
    on_since: float | None
    updated: float | None
    failing_since: float | None = None  # first failure since the last success or new goal


@dataclass(frozen=True, slots=True)
class Override:
    portal: str
    mode: str  # "on" | "off"
    reason: str
    created: float
    expires: float | None


@dataclass(frozen=True, slots=True)
class Maintenance:
    id: int
    portal: str
    start: float
    end: float
    mode: str  # "suppress" | "failover"
    reason: str
    created: float


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    ts: float
    portal: str | None
    kind: str
    action: str | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BookingRequest:
    id: int
    portal: str
    created: float
    status: str
    updated: float | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One staff message for one target, rendered when it was claimed (never patient data: a
    booking message carries only the request number). The target's URL is not here: it is a secret,
    looked up by ``target`` in the configuration at each attempt."""

    claim: str  # the message's claim key (``claims`` holds it too)
    target: str  # "notify-action-name#index"
    topic: str
    portal: str | None
    language: str  # the rendering's, so a marker added later speaks it too
    title: str
    body: str
    created: float
    state: str = "pending"  # OUTBOX_STATES
    attempts: int = 0
    next_try: float = 0.0
    last_error: str | None = None  # redacted
    after: str | None = None  # a claim that must have been sent to the same target first
    possible_duplicate: bool = False  # a send a crash may have cut is being repeated
    sent_at: float | None = None


@dataclass(frozen=True, slots=True)
class StaffAccount:
    """One staff login. ``password`` is the encoded KDF hash: never shown, never logged."""

    name: str
    role: str
    password: str
    created: float
    updated: float
    failures: int = 0  # wrong passwords since the last right one
    next_login: float = 0.0  # no login is tried before this unix time (the throttle)


class FencedOut(Exception):
    """A write that makes an external effect (a claim, an action's state, a failover switch) refused:
    this instance no longer holds the leader lease it was given (another site leads, or it expired
    while this process was frozen or cut off). Not a ``StoreError``: nothing is kept to write again."""


@dataclass(frozen=True, slots=True)
class SiteRow:
    """One instance (a site) as the store last heard of it; times on the database's clock."""

    site: str
    host: str
    pid: int
    started: float
    last_seen: float
    age: float  # seconds since last_seen, by the database's clock now
    stale_after: float
    network_down: bool | None

    @property
    def alive(self) -> bool:
        return self.age <= self.stale_after


@dataclass(frozen=True, slots=True)
class SiteVerdict:
    """One site's own verdict of one portal (``health``: a ``Health`` value)."""

    portal: str
    site: str
    health: str
    since: float  # on that site's clock: for showing, never compared across sites
    age: float  # seconds since it was written, by the database's clock now


@dataclass(frozen=True, slots=True)
class Lease:
    """The leader lease: who holds it, its fencing token, and how long it still runs (database clock)."""

    site: str
    token: int
    remaining: float  # ≤ 0: expired
    since: float  # when this term began

    @property
    def held(self) -> bool:
        return self.remaining > 0
