"""The contract every failover action fulfils, and the error type actions raise."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import httpx

    from failover.settings import FailoverPortal, Settings
    from failover.staff import TargetResult
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
    """What the notify action asks of staff delivery (``failover.staff.StaffAlerts``)."""

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
    ) -> list[TargetResult]: ...

    def validate(self, action: str) -> list[str]: ...


@dataclass(slots=True)
class ActionDeps:
    """What an action may use. Injected, so tests give real local servers and a fake clock."""

    settings: Settings
    portal_id: str
    portal: FailoverPortal
    store: AsyncStore  # in the service: the ResilientStore (state kept in memory when it cannot write)
    http: httpx.AsyncClient  # outbound HTTP (webhooks, own /book check); not the probe client
    staff: StaffNotifier
    clock: object = field(default=None)  # callable returning unix time; time.time if None

    def now(self) -> float:
        import time

        return self.clock() if callable(self.clock) else time.time()


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
