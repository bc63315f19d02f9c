"""``StoreReads``: the reads ``portalguard status`` makes, written once, as plain SQL with named
parameters, over a ``_select`` that runs them in one read transaction.

``Store`` (``sync.py``) runs them through SQLAlchemy like every other query; ``ReadOnlyStore``
(``readonly.py``) runs the very same methods over the standard library's ``sqlite3``, so ``status``
starts without importing SQLAlchemy (a quarter of a second). Plain SQL, because a SQLAlchemy Core
statement cannot be built without importing SQLAlchemy; the SQL is portable (quoted names, ``NOT``
for a flag, no SQLite-only syntax). Values come back as the driver gives them and are decoded here
for both: flags (``bool`` fields of the row dataclasses) by the field's type, the kv table's JSON.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from failover.mirror.model import MailFolderState, MirrorState
from failover.store.rows import ActionRow, EndpointRow, Lease, Maintenance, Override, PortalRow, SiteRow, SiteVerdict

R = TypeVar("R")
Query = tuple[str, Mapping[str, Any]]  # SQL with :named parameters, and their values
# The database's clock in seconds since the epoch: what the sites and the leader lease are timed on,
# so that no comparison ever involves two machines' clocks.
SQLITE_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
POSTGRES_NOW = "CAST(extract(epoch FROM clock_timestamp()) AS double precision)"


class StoreReads:
    """The reads every store offers (``Store`` and ``ReadOnlyStore``); subclasses give ``_select``."""

    path: str
    clock: Callable[[], float]
    now_sql: str = SQLITE_NOW  # ``Store`` on PostgreSQL: POSTGRES_NOW

    def _select(self, *queries: Query) -> list[list[dict[str, Any]]]:
        """Each query's rows (column name to the driver's value), all in one read transaction;
        database errors as ``StoreError`` naming the store, never a parameter."""
        raise NotImplementedError

    def _one(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        return self._select((sql, params))[0]

    def portal(self, portal: str) -> PortalRow:
        rows = self._one("SELECT * FROM portal_state WHERE portal = :portal", portal=portal)
        if not rows:
            return PortalRow(portal, False, 0, None, "", "unknown", None, False)
        return decoded(PortalRow, rows[0])

    def endpoints(self, portal: str) -> list[EndpointRow]:
        rows = self._one("SELECT * FROM endpoint_state WHERE portal = :portal ORDER BY endpoint", portal=portal)
        return [decoded(EndpointRow, r) for r in rows]

    def value(self, key: str, default: Any = None) -> Any:
        """A small named value (heartbeat, drill results): JSON in the kv table."""
        rows = self._one("SELECT value FROM kv WHERE key = :key", key=key)
        return json.loads(rows[0]["value"]) if rows else default

    def actions(self, portal: str) -> list[ActionRow]:
        rows = self._one("SELECT * FROM action_state WHERE portal = :portal ORDER BY action", portal=portal)
        return [decoded(ActionRow, r) for r in rows]

    def override(self, portal: str, now: float | None = None) -> Override | None:
        """The portal's override in force at ``now`` (an expired one is not in force)."""
        now = self.clock() if now is None else now
        sql = "SELECT * FROM overrides WHERE portal = :portal AND (expires IS NULL OR expires > :now)"
        rows = self._one(sql, portal=portal, now=now)
        return decoded(Override, rows[0]) if rows else None

    def active_maintenance(self, portal: str, now: float) -> Maintenance | None:
        """The window in force at ``now``; of overlapping ones, the latest added."""
        sql = (
            'SELECT * FROM maintenance WHERE portal = :portal AND "start" <= :now AND "end" > :now '
            "ORDER BY created DESC, id DESC LIMIT 1"
        )
        rows = self._one(sql, portal=portal, now=now)
        return decoded(Maintenance, rows[0]) if rows else None

    def mirror_state(self, portal: str, today: dt.date) -> MirrorState:
        """The portal's last sync and how many appointments are booked from ``today`` on."""
        sync, count = self._select(
            ("SELECT * FROM mirror_sync WHERE portal = :portal", {"portal": portal}),
            (
                'SELECT count(*) AS "n" FROM appointments WHERE portal = :portal AND NOT cancelled AND day >= :today',
                {"portal": portal, "today": today.isoformat()},
            ),
        )
        booked = int(count[0]["n"])
        if not sync:
            return MirrorState(portal, None, None, None, None, booked)
        s = sync[0]
        return MirrorState(portal, s["last_success"], s["last_attempt"], s["last_error_kind"], s["last_error"], booked)

    def mail_state(self, portal: str, folder: str | None = None) -> MailFolderState | None:
        """Where the reading of the portal's mailbox folder stands (its first folder if none is named),
        with how many unread mails are listed; None before its first check. No key needed."""
        which = "" if folder is None else " AND folder = :folder"
        state, unread = self._select(
            (
                f"SELECT * FROM mirror_mail_state WHERE portal = :portal{which} ORDER BY folder LIMIT 1",
                {"portal": portal, "folder": folder} if folder is not None else {"portal": portal},
            ),
            ('SELECT count(*) AS "n" FROM mirror_mail_unread WHERE portal = :portal', {"portal": portal}),
        )
        if not state:
            return None
        return decoded(MailFolderState, {**state[0], "unread": int(unread[0]["n"])})

    # -- several instances (sites) on one store -------------------------------------------------

    def sites(self) -> list[SiteRow]:
        """Every site that ever ran on this store, with how long ago it was last heard of."""
        return self.site_view()[0]

    def site_verdicts(self, portal: str | None = None) -> list[SiteVerdict]:
        """Each site's own verdict of each portal (of one portal), with its age."""
        return [v for v in self.site_view()[1] if portal is None or v.portal == portal]

    def lease(self) -> Lease | None:
        """The leader lease (expired or not), None before any instance took it."""
        return self.site_view()[2]

    def site_view(self) -> tuple[list[SiteRow], list[SiteVerdict], Lease | None]:
        """Sites, their verdicts and the lease in one snapshot, aged by the database's clock."""
        now = self.now_sql
        sites, verdicts, lease = self._select(
            (
                "SELECT site, host, pid, started, last_seen, stale_after, network_down, "
                f'{now} - last_seen AS "age" FROM sites ORDER BY site',
                {},
            ),
            (
                f'SELECT portal, site, health, since, {now} - seen AS "age" FROM site_verdicts ORDER BY portal, site',
                {},
            ),
            (f'SELECT site, token, since, expires - {now} AS "remaining" FROM leader_lease WHERE id = 1', {}),
        )
        return (
            [decoded(SiteRow, r) for r in sites],
            [decoded(SiteVerdict, r) for r in verdicts],
            decoded(Lease, lease[0]) if lease else None,
        )


def decoded(cls: type[R], row: Mapping[str, Any]) -> R:
    """A row dataclass from a row as the driver gave it: its ``bool`` fields made ``bool`` (SQLite
    stores 0/1), every other value as it is."""
    flags = _flag_fields(cls)
    return cls(**{k: (bool(v) if k in flags and v is not None else v) for k, v in row.items()})


@functools.cache
def _flag_fields(cls: type) -> frozenset[str]:
    # The row modules use postponed annotations: a field's type is its source text.
    return frozenset(f.name for f in dataclasses.fields(cls) if f.type in (bool, "bool", "bool | None"))
