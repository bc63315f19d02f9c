"""What the sources share: the days a listing is gathered into, and small helpers.

Light to import (no httpx, no parser): the config loads the sources' table, and loading the config
must load none of the heavy libraries (``tests/failover/test_cli_startup.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from failover.mirror.model import DayFailure, DayListing, DayResult, Listed, SyncFailure
from watchdog.config_types import StrictModel
from watchdog.targets import endpoint_role

if TYPE_CHECKING:
    from watchdog.targets import Endpoint

# After these, the portal is not answering: the remaining days fail alike without being asked,
# so a sync of a dead portal costs one timeout, not one per day.
GIVE_UP_KINDS = ("timeout", "connect")


class LoginSource(StrictModel):
    """A source read through the staff login of one of the portal's admin endpoints."""

    endpoint: str | None = None  # which endpoint's login; default: the first admin endpoint with one

    def session_endpoint(self, endpoints: Mapping[str, Endpoint]) -> Endpoint:
        name = admin_endpoint(endpoints, self.endpoint)
        if name is None:  # the config check (``failover.settings``) refuses such a config
            raise ValueError("no admin endpoint with a login")
        return endpoints[name]


def admin_endpoint(endpoints: Mapping[str, Endpoint], name: str | None) -> str | None:
    """The endpoint whose login session a source reads through: ``name`` if it has a login, else the
    first ``admin``/``admin-*`` endpoint with a login; None when there is none."""
    if name is not None:
        endpoint = endpoints.get(name)
        return name if endpoint is not None and endpoint.login is not None else None
    return next((n for n, e in endpoints.items() if endpoint_role(n) == "admin" and e.login is not None), None)


def is_cancelled(status: str, needles: Iterable[str]) -> bool:
    return any(needle in status for needle in needles)


def clean(text: str) -> str:
    """Whitespace collapsed and trimmed; the text itself kept as the portal shows it."""
    return " ".join(text.split())


def fail_all(days: Sequence[dt.date], failure: SyncFailure) -> list[DayResult]:
    return [DayFailure(day, failure) for day in days]


class DayBook:
    """Appointments gathered into the requested days, each day complete or failed, never partial.

    ``origin`` is the read an appointment came from (one day's pages, one export): an id twice within
    one origin is a ``parse`` failure of its day; the same appointment, identical, from two origins
    (a page listing a neighbouring day's row) is kept once.
    """

    def __init__(self, days: Sequence[dt.date]) -> None:
        self.days = list(days)
        self._rows: dict[dt.date, dict[str, tuple[object, Listed]]] = {day: {} for day in self.days}
        self._failed: dict[dt.date, SyncFailure] = {}
        self._proved_empty: set[dt.date] = set()
        self._read: set[dt.date] = set()

    def wants(self, day: dt.date) -> bool:
        return day in self._rows

    def add(self, day: dt.date, listed: Listed, origin: object) -> None:
        if day in self._failed or day not in self._rows:
            return
        seen = self._rows[day].get(listed.id)
        if seen is None:
            self._rows[day][listed.id] = (origin, listed)
        elif seen[0] == origin or seen[1] != listed:
            self.fail(day, SyncFailure("parse", "an appointment id is listed twice"))

    def fail(self, day: dt.date, failure: SyncFailure) -> None:
        if day in self._rows:
            self._failed.setdefault(day, failure)

    def fail_rest(self, failure: SyncFailure) -> None:
        """Every day not yet failed fails with ``failure`` (a read that covers them all)."""
        for day in self.days:
            self.fail(day, failure)

    def read(self, day: dt.date, *, proved_empty: bool = True) -> None:
        """``day``'s own list was read completely; ``proved_empty``: it may be empty (an empty text)."""
        self._read.add(day)
        if proved_empty:
            self._proved_empty.add(day)

    def results(self) -> list[DayResult]:
        out: list[DayResult] = []
        for day in self.days:
            rows = self._rows[day]
            if day in self._failed:
                out.append(DayFailure(day, self._failed[day]))
            elif day not in self._read:
                out.append(DayFailure(day, SyncFailure("parse", "the day's list was not read")))
            elif not rows and day not in self._proved_empty:
                detail = "no appointments listed and no text saying there are none"
                out.append(DayFailure(day, SyncFailure("empty", detail)))
            else:
                listed = sorted((entry for _, entry in rows.values()), key=lambda a: (a.start, a.id))
                out.append(DayListing(day, tuple(listed)))
        return out
