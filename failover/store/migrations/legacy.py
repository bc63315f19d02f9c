"""The pre-Alembic migrations (``PRAGMA user_version`` 1–3), kept only to bring a store made by an
older portalguard to version 3, which the Alembic baseline revision ``0003`` is exactly.

Frozen: never edit this SQL (stores in the field were made by it). Schema changes are new Alembic
revisions under ``versions/``.
"""

from __future__ import annotations

from sqlalchemy import Connection

LEGACY_VERSION = 3  # the last user_version a pre-Alembic portalguard wrote

MIGRATIONS: dict[int, str] = {
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


def upgrade_to_v3(conn: Connection, version: int) -> None:
    """Apply the legacy steps after ``version`` up to 3, inside the caller's transaction."""
    for v in range(version + 1, LEGACY_VERSION + 1):
        for statement in split_sql(MIGRATIONS[v]):
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql(f"PRAGMA user_version={v}")


def split_sql(script: str) -> list[str]:
    # executescript() would COMMIT our transaction; run statement by statement instead.
    lines = [line.split("--")[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
