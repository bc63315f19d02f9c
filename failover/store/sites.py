"""The store's side of several instances: each site's heartbeat and verdicts, the leader lease and its
fencing token (``Store`` inherits ``SiteWrites``; the reads are ``StoreReads.site_view``).

Every time here is the database's clock (``now_sql``), read inside the transaction that uses it: the
lease never depends on two machines' clocks agreeing, only on each process measuring its own
intervals (``failover/leadership.py``).

The lease is one row (``leader_lease``): taken when absent or expired, renewed by its holder, and
taken over at once by a restart of the holder's own site (one process per site: its service lock).
Each new term increases the token. ``fence`` is the (site, token) this process acts with; a write
made ``fenced`` checks it against the row in its own transaction (which holds the write lock, as a
lease change does) and raises ``FencedOut`` instead of writing if it no longer holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select, text, update

from failover.store import schema as t
from failover.store.rows import FencedOut, Lease
from failover.store.upsert import upsert


@dataclass(frozen=True, slots=True)
class SiteBeat:
    """What one site writes every second: that it lives, and its own verdict of every portal."""

    site: str
    host: str
    pid: int
    stale_after: float
    network_down: bool | None
    verdicts: Mapping[str, tuple[str, float]] = field(default_factory=dict)  # portal -> (health, since)


class SiteWrites:
    """Mixed into ``Store``: ``_write`` and ``now_sql`` are its."""

    now_sql: str
    fence: tuple[str, int] | None = None  # (site, token) the service acts with; None: no check (the CLI)

    def _write(self, fenced: bool = False) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _db_now(self, conn: Connection) -> float:
        return float(conn.execute(text(f"SELECT {self.now_sql}")).scalar_one())

    def check_fence(self, conn: Connection) -> None:
        """Raise ``FencedOut`` unless this process still holds the lease it acts with (in ``conn``'s
        transaction, which holds the write lock: no lease can change before it commits)."""
        if self.fence is None:
            return
        site, token = self.fence
        row = conn.execute(select(t.leader_lease).where(t.leader_lease.c.id == 1)).first()
        if row is None or row.site != site or row.token != token or row.expires <= self._db_now(conn):
            raise FencedOut(f"site {site} no longer holds the leader lease (token {token}): nothing done")

    def fence_check(self) -> None:
        """The fence alone, in a transaction of its own: right before an effect no row records
        (an action's apply or revert)."""
        with self._write(fenced=True):
            pass

    def beat(self, beat: SiteBeat) -> None:
        """This site lives (database time), with its verdicts: one transaction."""
        s = t.sites
        with self._write() as conn:
            now = self._db_now(conn)
            row = conn.execute(select(s.c.pid, s.c.host, s.c.started).where(s.c.site == beat.site)).first()
            started = row.started if row is not None and (row.pid, row.host) == (beat.pid, beat.host) else now
            values: dict[str, Any] = {
                "site": beat.site,
                "host": beat.host,
                "pid": beat.pid,
                "started": started,
                "last_seen": now,
                "stale_after": beat.stale_after,
                "network_down": beat.network_down,
            }
            upsert(conn, s, values)
            for portal, (health, since) in beat.verdicts.items():
                upsert(
                    conn,
                    t.site_verdicts,
                    {"portal": portal, "site": beat.site, "health": health, "since": since, "seen": now},
                )

    def leave(self, site: str) -> None:
        """A clean stop: the site counts no more from now on (not after ``stale_after``), so another
        site stopping a moment later knows nobody goes on after it."""
        with self._write() as conn:
            conn.execute(update(t.sites).where(t.sites.c.site == site).values(stale_after=0.0))

    def take_lease(self, site: str, seconds: float, token: int | None) -> Lease:
        """Renew the lease if ``site`` holds it with ``token``; take it if it is free, expired, or held
        by this very site (a restart); else leave it. Returns the lease as it is now."""
        lease = t.leader_lease
        with self._write() as conn:
            now = self._db_now(conn)
            row = conn.execute(select(lease).where(lease.c.id == 1)).first()
            if row is None:
                conn.execute(lease.insert().values(id=1, site=site, token=1, expires=now + seconds, since=now))
                return Lease(site, 1, seconds, now)
            if row.site == site and row.token == token and row.expires > now:
                conn.execute(update(lease).where(lease.c.id == 1).values(expires=now + seconds))
                return Lease(site, token, seconds, row.since)
            if row.expires <= now or row.site == site:
                new = int(row.token) + 1
                term = {"site": site, "token": new, "expires": now + seconds, "since": now}
                conn.execute(update(lease).where(lease.c.id == 1).values(**term))
                return Lease(site, new, seconds, now)
            return Lease(row.site, int(row.token), float(row.expires) - now, float(row.since))

    def resign(self, site: str, token: int) -> bool:
        """Give the lease up at a clean stop (the next site need not wait for it to expire)."""
        lease = t.leader_lease
        with self._write() as conn:
            now = self._db_now(conn)
            mine = (lease.c.id == 1) & (lease.c.site == site) & (lease.c.token == token)
            return bool(conn.execute(update(lease).where(mine).values(expires=now)).rowcount)
