"""The contract every failover action fulfils, and the error type actions raise."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import httpx

    from failover.clinic import Clinic
    from failover.store import AsyncStore


class ActionError(Exception):
    """An action could not do its work. ``permanent`` errors are not retried and alert staff at once.

    The message says what failed, where (config key, URL host, campaign id) and what to do next,
    and never contains a secret. ``observed`` is the measure's state after the failure when the
    action knows it (a spend guard that paused the campaigns itself: False), None when it cannot
    tell. ``topic`` is the staff message a permanent error sends (``failover.staff.messages``), with
    ``details`` as its extra fields.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        observed: bool | None = None,
        topic: str = "action_failed",
        details: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.observed = observed
        self.topic = topic
        self.details = dict(details or {})


@dataclass(frozen=True, slots=True)
class Incident:
    """What an action is told when it is switched: one failover episode of one portal."""

    portal: str
    number: int  # increments with each failover of the portal; keys exactly-once claims
    reason: str  # human text, e.g. "public: http_status (HTTP 503)"
    since: float  # unix time the failover went on
    ended: float | None = None  # unix time it went off (revert only)
    drill: bool = False  # a rehearsal: no effect on patients or spend


class StaffNotifier(Protocol):
    """What the notify action asks of staff delivery (``failover.staff.StaffAlerts``, a rank above:
    actions are handed it, never import it)."""

    async def enqueue(
        self,
        claim: str,
        topic: str,
        portal: str | None,
        *,
        via: str | None = None,
        after: str | None = None,
        drill: bool = False,
        **fields: object,
    ) -> bool: ...

    async def send_now(
        self, topic: str, portal: str | None, *, via: str | None = None, drill: bool = True, **fields: object
    ) -> list[Any]: ...  # failover.staff.TargetResult, one per target

    def validate(self, action: str) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class PortalLinks:
    """The URLs an action of one portal deals in."""

    book_url: str  # where /book sends patients while the portal is up (the redirect's target)
    own_url: str  # our own /book/PORTAL on loopback, for self-checks
    fallback_url: str | None  # the fallback page as patients reach it; None without server.public_url


@dataclass(frozen=True, slots=True)
class Measure:
    """One of the portal's measures as people read it in messages ("Google 広告 (ads)")."""

    name: str  # the action's name in the config
    labels: Mapping[str, str]  # by language
    tells_staff: bool = False  # the staff notification itself


@dataclass(slots=True)
class ActionContext:
    """What an action may use, as data: never the whole config. Injected, so tests give real local
    servers and a fake clock."""

    portal_id: str
    links: PortalLinks
    clinic: Clinic
    measures: tuple[Measure, ...]  # every action of the portal, this one included
    store: AsyncStore  # in the service: the ResilientStore (state kept in memory when it cannot write)
    http: httpx.AsyncClient  # outbound HTTP (webhooks, own /book check); not the probe client
    staff: StaffNotifier
    preview_query: Callable[[], str]  # "?preview=TOKEN": the fallback page on a staff-only link (drills)
    clock: Callable[[], float]
    mirrored: bool = False  # the portal has an appointment mirror: the outage message gives its counts

    def now(self) -> float:
        return self.clock()


class Action(Protocol):
    """One fallback measure of one portal. All methods are idempotent.

    ``observe`` returns True when the measure is in effect, False when not, None when it is partly
    in effect (some campaigns on, some off: neither state, so the orchestrator converges it either
    way); it raises ActionError when it cannot tell. ``apply``/``revert`` switch it on/off
    ("already on" is success) and raise ActionError on failure. ``maintain`` is called every tick
    while the measure is on (reminders, spend caps). ``check`` is the preflight: it returns a short
    "ready" detail or raises ActionError. ``drill`` rehearses ``apply`` without effect on patients
    or spend and returns a detail.
    """

    name: str

    async def observe(self) -> bool | None: ...

    async def apply(self, incident: Incident) -> None: ...

    async def revert(self, incident: Incident) -> None: ...

    async def maintain(self, incident: Incident) -> None: ...

    async def check(self) -> str: ...

    async def drill(self, incident: Incident) -> str: ...
