"""The mirror's sources: one module per way of reading a portal's appointments, and their table.

A source module holds its config model (``type: Literal["<kind>"]``) and its reader::

    async def fetch(cfg, session: StaffSession, days: Sequence[date], tz: ZoneInfo) -> list[DayResult]

which returns one ``DayListing`` or ``DayFailure`` per requested day, in the order of ``days``. A day
is listed completely or fails (a partial listing would mark the rest vanished). A failure that
affects every day (the staff login refused, the session not accepted) may raise ``SyncFailure``
instead. Failure details never hold patient data.

``SOURCES`` is the one table of kinds: the config's union of source types
(``failover.mirror.config.SourceConfig``) and the list of types in config errors derive from it.
Adding a source is its module, one line here and its test file. Source modules import their parser
(selectolax, icalendar) and httpx on first use: loading the config loads none of them.

For the sync: ``open_session(cfg, endpoints, client, settings, timeout)`` logs in once (sources with
``login``), then ``SOURCES[cfg.type].fetch(cfg, session, days, tz)``; ``read_days`` does both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from failover.mirror.model import DayResult
from failover.mirror.sources import admin_csv, admin_html, ics

if TYPE_CHECKING:
    import httpx

    from failover.mirror.session import StaffSession
    from watchdog.targets import Endpoint, ProbeSettings

Fetch = Callable[[Any, "StaffSession", Sequence[dt.date], ZoneInfo], Awaitable[list[DayResult]]]


@dataclass(frozen=True, slots=True)
class SourceKind:
    config: type[Any]  # the pydantic model of ``portals.P.mirror.source`` (``type: <kind>``)
    fetch: Fetch
    login: bool  # read through the staff login of an admin endpoint (else a plain GET of its own url)
    label: str  # what staff read (CLI, /staff)


SOURCES: dict[str, SourceKind] = {
    "admin_html": SourceKind(admin_html.AdminHtmlSource, admin_html.fetch, True, "管理画面の予約一覧"),
    "admin_csv": SourceKind(admin_csv.AdminCsvSource, admin_csv.fetch, True, "管理画面のCSV"),
    "ics": SourceKind(ics.IcsSource, ics.fetch, False, "iCalendar"),
}


async def open_session(
    cfg: Any,
    endpoints: Mapping[str, Endpoint],
    client: httpx.AsyncClient,
    settings: ProbeSettings,
    timeout: float,
) -> StaffSession:
    """A fresh session for one sync of source ``cfg``: logged in through its admin endpoint (once),
    or a plain one on the feed's own host. Raises ``SyncFailure`` (``login``, ``timeout``, ...)."""
    from failover.mirror.session import StaffSession

    endpoint = cfg.session_endpoint(endpoints)
    basic_auth = getattr(cfg, "basic_auth", None)
    if SOURCES[cfg.type].login:
        return await StaffSession.open(client, endpoint, settings, timeout)
    return StaffSession(client, endpoint, settings, timeout, basic_auth=basic_auth)


async def read_days(
    cfg: Any,
    endpoints: Mapping[str, Endpoint],
    client: httpx.AsyncClient,
    settings: ProbeSettings,
    timeout: float,
    days: Sequence[dt.date],
    tz: ZoneInfo,
) -> list[DayResult]:
    """One read of ``days`` from source ``cfg``: a result per day, in order; ``SyncFailure`` for all."""
    session = await open_session(cfg, endpoints, client, settings, timeout)
    return await SOURCES[cfg.type].fetch(cfg, session, days, tz)
