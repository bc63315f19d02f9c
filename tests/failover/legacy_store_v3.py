"""A frozen copy of ``failover/store.py`` as the last pre-Alembic portalguard shipped it (schema
``PRAGMA user_version`` 3, commit ff4eda4): the migration tests build and fill stores with the very
code that made the stores in the field. Never edit it; it is not the store.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 3

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE portal_state (
        portal TEXT PRIMARY KEY,
        failover INTEGER NOT NULL DEFAULT 0,
        incident INTEGER NOT NULL DEFAULT 0,      -- number of the current/last failover episode
        since REAL,                               -- when failover last changed
        reason TEXT NOT NULL DEFAULT '',
        verdict TEXT NOT NULL DEFAULT 'unknown',
        verdict_since REAL,
        page_on INTEGER NOT NULL DEFAULT 0        -- the fallback page switch
    );
    CREATE TABLE action_state (
        portal TEXT NOT NULL,
        action TEXT NOT NULL,
        desired TEXT NOT NULL DEFAULT 'off',
        observed TEXT NOT NULL DEFAULT 'unknown',
        last_error TEXT,
        permanent INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt REAL NOT NULL DEFAULT 0,
        on_since REAL,
        updated REAL,
        PRIMARY KEY (portal, action)
    );
    CREATE TABLE overrides (
        portal TEXT PRIMARY KEY,
        mode TEXT NOT NULL CHECK (mode IN ('on', 'off')),
        reason TEXT NOT NULL,
        created REAL NOT NULL,
        expires REAL
    );
    CREATE TABLE maintenance (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        portal TEXT NOT NULL,
        start REAL NOT NULL,
        end REAL NOT NULL,
        mode TEXT NOT NULL CHECK (mode IN ('suppress', 'failover')),
        reason TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        portal TEXT,
        kind TEXT NOT NULL,
        action TEXT,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_portal_ts ON events (portal, ts);
    CREATE TABLE claims (
        key TEXT PRIMARY KEY,
        ts REAL NOT NULL
    );
    CREATE TABLE booking_requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        portal TEXT NOT NULL,
        created REAL NOT NULL,
        status TEXT NOT NULL DEFAULT 'new'
            CHECK (status IN ('new', 'contacted', 'booked', 'cancelled')),
        updated REAL,
        data TEXT NOT NULL                        -- the form's fields, JSON
    );
    CREATE INDEX booking_requests_created ON booking_requests (created);
    """,
    2: """
    CREATE TABLE endpoint_state (
        portal TEXT NOT NULL,                     -- '' for canaries
        endpoint TEXT NOT NULL,
        ok INTEGER NOT NULL,
        status INTEGER,
        error_kind TEXT,
        detail TEXT NOT NULL DEFAULT '',
        since REAL NOT NULL,                      -- when this ok/kind began
        checked REAL NOT NULL,                    -- last probe
        PRIMARY KEY (portal, endpoint)
    );
    CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    3: """
    -- ``since``/``reason`` change at each switch; the recovered notice needs the outage's own.
    ALTER TABLE portal_state ADD COLUMN outage_since REAL;    -- when the current/last failover went on
    ALTER TABLE portal_state ADD COLUMN outage_reason TEXT NOT NULL DEFAULT '';
    UPDATE portal_state SET outage_since=since, outage_reason=reason WHERE failover=1;
    -- Switched off already (a revert may still be retrying): the last switch-on event has them.
    UPDATE portal_state SET
        outage_since=(SELECT e.ts FROM events e WHERE e.portal=portal_state.portal AND e.kind='failover'
                      AND json_extract(e.detail, '$.to')='on' ORDER BY e.id DESC LIMIT 1),
        outage_reason=COALESCE((SELECT json_extract(e.detail, '$.reason') FROM events e
                      WHERE e.portal=portal_state.portal AND e.kind='failover'
                      AND json_extract(e.detail, '$.to')='on' ORDER BY e.id DESC LIMIT 1), '')
    WHERE failover=0;
    ALTER TABLE action_state ADD COLUMN failing_since REAL;   -- first failure of the current streak
    """,
}

REQUEST_STATUSES = ("new", "contacted", "booked", "cancelled")
OVERRIDE_MODES = ("on", "off")
MAINTENANCE_MODES = ("suppress", "failover")


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


class StoreError(Exception):
    pass


class Store:
    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        self.clock = clock
        self._lock = threading.Lock()  # one connection, shared by the loop and worker threads
        try:
            self._db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            self._set_wal()
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.Error as err:
            self._close_quietly()
            raise StoreError(f"store {self.path}: {err} (check the `store:` path and its permissions)") from None
        except BaseException:
            self._close_quietly()
            raise

    def _set_wal(self, within: float = 10.0) -> None:
        # Switching a fresh file to WAL takes an exclusive lock that SQLite does not wait for (no
        # busy handler): when the service and the CLI open a new store at once, one must retry.
        deadline = time.monotonic() + within
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _close_quietly(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- plumbing -----------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # also after a failed COMMIT: never leave it open
                    self._db.execute("ROLLBACK")
                raise

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _migrate(self) -> None:
        with self._tx() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"store {self.path} has schema {version}, newer than this portalguard ({SCHEMA_VERSION}): "
                    "upgrade portalguard"
                )
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _split_sql(_MIGRATIONS[v]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={v}")

    def schema_version(self) -> int:
        return self._query("PRAGMA user_version")[0][0]

    def writable(self) -> bool:
        """Whether a write reaches the database file: a real row, committed (a TEMP table would live
        outside the file and pass on a read-only store)."""
        try:
            with self._tx() as db:
                db.execute("INSERT OR REPLACE INTO kv VALUES ('writable_check', ?)", (json.dumps(self.clock()),))
            return True
        except sqlite3.Error:
            return False

    # -- portals ------------------------------------------------------------------------------

    def portal(self, portal: str) -> PortalRow:
        rows = self._query("SELECT * FROM portal_state WHERE portal=?", (portal,))
        if not rows:
            return PortalRow(portal, False, 0, None, "", "unknown", None, False)
        r = rows[0]
        return PortalRow(r[0], bool(r[1]), r[2], r[3], r[4], r[5], r[6], bool(r[7]), r[8], r[9])

    def set_failover(self, portal: str, on: bool, reason: str) -> PortalRow:
        """Switch the portal's failover state; a new incident number starts with each switch on.

        ``since``/``reason`` record the last switch; ``outage_since``/``outage_reason`` keep the
        switch on's, so the switch off can still say how long the outage lasted and why."""
        now = self.clock()
        with self._tx() as db:
            self._ensure_portal(db, portal)
            cur = db.execute("SELECT failover FROM portal_state WHERE portal=?", (portal,)).fetchone()[0]
            if bool(cur) != on:
                db.execute(
                    "UPDATE portal_state SET failover=?, since=?, reason=? WHERE portal=?",
                    (int(on), now, reason, portal),
                )
            if on and not cur:  # an outage begins: a new incident, whose start and cause are kept
                db.execute(
                    "UPDATE portal_state SET incident=incident+1, outage_since=?, outage_reason=? WHERE portal=?",
                    (now, reason, portal),
                )
        return self.portal(portal)

    def set_verdict(self, portal: str, verdict: str, since: float) -> None:
        with self._tx() as db:
            self._ensure_portal(db, portal)
            db.execute("UPDATE portal_state SET verdict=?, verdict_since=? WHERE portal=?", (verdict, since, portal))

    def set_page(self, portal: str, on: bool) -> None:
        with self._tx() as db:
            self._ensure_portal(db, portal)
            db.execute("UPDATE portal_state SET page_on=? WHERE portal=?", (int(on), portal))

    @staticmethod
    def _ensure_portal(db: sqlite3.Connection, portal: str) -> None:
        db.execute("INSERT OR IGNORE INTO portal_state (portal) VALUES (?)", (portal,))

    def put_endpoint(self, row: EndpointRow) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO endpoint_state VALUES (?,?,?,?,?,?,?,?)",
                (
                    row.portal,
                    row.endpoint,
                    int(row.ok),
                    row.status,
                    row.error_kind,
                    row.detail,
                    row.since,
                    row.checked,
                ),
            )

    def endpoints(self, portal: str) -> list[EndpointRow]:
        rows = self._query("SELECT * FROM endpoint_state WHERE portal=? ORDER BY endpoint", (portal,))
        return [EndpointRow(r[0], r[1], bool(r[2]), r[3], r[4], r[5], r[6], r[7]) for r in rows]

    def set_value(self, key: str, value: Any) -> None:
        """A small named value (heartbeat, drill results): JSON in the kv table."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO kv VALUES (?,?)", (key, json.dumps(value, ensure_ascii=False)))

    def value(self, key: str, default: Any = None) -> Any:
        rows = self._query("SELECT value FROM kv WHERE key=?", (key,))
        return json.loads(rows[0][0]) if rows else default

    # -- actions ------------------------------------------------------------------------------

    def action(self, portal: str, action: str) -> ActionRow:
        rows = self._query("SELECT * FROM action_state WHERE portal=? AND action=?", (portal, action))
        if not rows:
            return ActionRow(portal, action, "off", "unknown", None, False, 0, 0.0, None, None)
        r = rows[0]
        return ActionRow(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7], r[8], r[9], r[10])

    def actions(self, portal: str) -> list[ActionRow]:
        names = [r[0] for r in self._query("SELECT action FROM action_state WHERE portal=? ORDER BY action", (portal,))]
        return [self.action(portal, n) for n in names]

    def put_action(self, row: ActionRow) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO action_state VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    row.portal,
                    row.action,
                    row.desired,
                    row.observed,
                    row.last_error,
                    int(row.permanent),
                    row.attempts,
                    row.next_attempt,
                    row.on_since,
                    self.clock(),
                    row.failing_since,
                ),
            )

    def clear_permanent_errors(self, portal: str | None = None) -> int:
        """Let actions stopped by a permanent error try again (after a fix, a restart, an override)."""
        sql = "UPDATE action_state SET permanent=0, next_attempt=0 WHERE permanent=1"
        with self._tx() as db:
            if portal is None:
                return db.execute(sql).rowcount
            return db.execute(sql + " AND portal=?", (portal,)).rowcount

    # -- overrides and maintenance ------------------------------------------------------------

    def set_override(self, portal: str, mode: str, reason: str, expires: float | None) -> None:
        if mode not in OVERRIDE_MODES:
            raise StoreError(f"unknown override mode {mode!r} (use {', '.join(OVERRIDE_MODES)})")
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO overrides VALUES (?,?,?,?,?)",
                (portal, mode, reason, self.clock(), expires),
            )

    def clear_override(self, portal: str) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM overrides WHERE portal=?", (portal,)).rowcount > 0

    def override(self, portal: str, now: float | None = None) -> Override | None:
        """The portal's override in force at ``now`` (an expired one is not in force)."""
        now = self.clock() if now is None else now
        rows = self._query("SELECT * FROM overrides WHERE portal=? AND (expires IS NULL OR expires>?)", (portal, now))
        return Override(*rows[0]) if rows else None

    def add_maintenance(self, portal: str, start: float, end: float, mode: str, reason: str) -> int:
        if end <= start:
            raise StoreError("the maintenance window ends before it starts")
        if mode not in MAINTENANCE_MODES:
            raise StoreError(f"unknown maintenance mode {mode!r} (use {', '.join(MAINTENANCE_MODES)})")
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO maintenance (portal,start,end,mode,reason,created) VALUES (?,?,?,?,?,?)",
                (portal, start, end, mode, reason, self.clock()),
            )
            return int(cur.lastrowid or 0)

    def remove_maintenance(self, window_id: int) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM maintenance WHERE id=?", (window_id,)).rowcount > 0

    def maintenance(self, portal: str | None = None, include_past: bool = False) -> list[Maintenance]:
        sql, args = "SELECT * FROM maintenance WHERE 1=1", []
        if portal:
            sql, args = sql + " AND portal=?", [*args, portal]
        if not include_past:
            sql, args = sql + " AND end>?", [*args, self.clock()]
        return [Maintenance(*r) for r in self._query(sql + " ORDER BY start", tuple(args))]

    def active_maintenance(self, portal: str, now: float) -> Maintenance | None:
        rows = self._query(
            "SELECT * FROM maintenance WHERE portal=? AND start<=? AND end>? ORDER BY created DESC, id DESC LIMIT 1",
            (portal, now, now),
        )
        return Maintenance(*rows[0]) if rows else None

    # -- events and claims --------------------------------------------------------------------

    def add_event(self, kind: str, portal: str | None = None, action: str | None = None, **detail: Any) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO events (ts,portal,kind,action,detail) VALUES (?,?,?,?,?)",
                (self.clock(), portal, kind, action, json.dumps(detail, ensure_ascii=False, default=str)),
            )

    def events(
        self,
        portal: str | None = None,
        since: float | None = None,
        kinds: tuple[str, ...] = (),
        limit: int = 10_000,
    ) -> list[Event]:
        sql, args = "SELECT * FROM events WHERE 1=1", []
        if portal:
            sql, args = sql + " AND portal=?", [*args, portal]
        if since is not None:
            sql, args = sql + " AND ts>=?", [*args, since]
        if kinds:
            sql, args = sql + f" AND kind IN ({','.join('?' * len(kinds))})", [*args, *kinds]
        rows = self._query(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
        return [Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in reversed(rows)]

    def purge_audit(self, older_than: float) -> int:
        """Delete events and claims from before ``older_than`` (unix time); returns how many."""
        with self._tx() as db:
            events = db.execute("DELETE FROM events WHERE ts<?", (older_than,)).rowcount
            return events + db.execute("DELETE FROM claims WHERE ts<?", (older_than,)).rowcount

    def claim(self, key: str) -> bool:
        """True exactly once per key, across processes and restarts: claim before a visible effect."""
        with self._tx() as db:
            return db.execute("INSERT OR IGNORE INTO claims VALUES (?,?)", (key, self.clock())).rowcount == 1

    def claimed(self, key: str) -> bool:
        return bool(self._query("SELECT 1 FROM claims WHERE key=?", (key,)))

    # -- booking requests ---------------------------------------------------------------------

    def add_request(self, portal: str, data: dict[str, Any]) -> int:
        """Store a booking request durably; returns its number."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO booking_requests (portal, created, data) VALUES (?,?,?)",
                (portal, self.clock(), json.dumps(data, ensure_ascii=False)),
            )
            return int(cur.lastrowid or 0)

    def request(self, request_id: int) -> BookingRequest | None:
        rows = self._query("SELECT * FROM booking_requests WHERE id=?", (request_id,))
        return _request(rows[0]) if rows else None

    def requests(
        self, status: str | None = None, portal: str | None = None, limit: int = 10_000
    ) -> list[BookingRequest]:
        sql, args = "SELECT * FROM booking_requests WHERE 1=1", []
        if status:
            sql, args = sql + " AND status=?", [*args, status]
        if portal:
            sql, args = sql + " AND portal=?", [*args, portal]
        rows = self._query(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
        return [_request(r) for r in rows]

    def set_request_status(self, request_id: int, status: str) -> bool:
        if status not in REQUEST_STATUSES:
            raise StoreError(f"unknown status {status!r} (use {', '.join(REQUEST_STATUSES)})")
        with self._tx() as db:
            cur = db.execute(
                "UPDATE booking_requests SET status=?, updated=? WHERE id=?",
                (status, self.clock(), request_id),
            )
            return cur.rowcount > 0

    def purge_requests(self, older_than: float) -> int:
        """Delete booking requests created before ``older_than`` (unix time); returns how many."""
        with self._tx() as db:
            return db.execute("DELETE FROM booking_requests WHERE created<?", (older_than,)).rowcount

    def count_requests(self, portal: str | None = None) -> int:
        if portal:
            return self._query("SELECT COUNT(*) FROM booking_requests WHERE portal=?", (portal,))[0][0]
        return self._query("SELECT COUNT(*) FROM booking_requests")[0][0]


def _request(r: tuple[Any, ...]) -> BookingRequest:
    return BookingRequest(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]))


def _split_sql(script: str) -> list[str]:
    # executescript() would COMMIT our transaction; run statement by statement instead.
    lines = [line.split("--")[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
