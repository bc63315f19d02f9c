"""``Store``: the store's every query, written once, called synchronously (the CLI; ``AsyncStore``
runs these same methods in its writer and reader threads).

Each call is its own short transaction, so the CLI works whether the service runs or not. Writes
begin ``IMMEDIATE`` and commit with ``synchronous=FULL``: a booking request or a claim that
returned is on disk. Database errors come out as ``StoreError`` naming the store and the reason,
never the statement's parameters (patient data).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Row, and_, delete, exists, func, not_, or_, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from failover.crypto import TOKEN_PREFIX, DataKey, SealError, context, is_sealed, sealed_key_id
from failover.mirror.model import (
    FAILURE_KINDS,
    MAIL_FAILURE_KINDS,
    DayChanges,
    DayListing,
    MailApplied,
    MailBooking,
    MailEffect,
    MailFolderState,
    Mirrored,
    UnreadMail,
)
from failover.mirror.reconcile import apply_mail, reconcile
from failover.store import schema as t
from failover.store.engine import WRITE, make_engine, open_error, shown, store_error
from failover.store.migrations import migrate, read_state, schema_number
from failover.store.reads import POSTGRES_NOW, Query, StoreReads
from failover.store.rows import (
    MAINTENANCE_MODES,
    OVERRIDE_MODES,
    REQUEST_STATUSES,
    STAFF_ROLES,
    ActionRow,
    BookingRequest,
    DataKeyError,
    EndpointRow,
    Event,
    Maintenance,
    OutboxRow,
    PortalRow,
    StaffAccount,
    StoreError,
)
from failover.store.sites import SiteWrites
from failover.store.upsert import insert_if_absent, upsert
from watchdog.clock import steady_time

SEAL_BATCH = 200  # plaintext booking requests sealed per transaction when a key is first given
ID_CHUNK = 500  # ids per ``IN (...)``: below every backend's limit on bound parameters
PATIENT_FIELDS = ("name", "phone", "menu")  # the appointment columns always sealed
MAX_SYNC_ERROR = 500
Portals = str | Collection[str] | None  # one portal, several (a clinic's), or every portal (None)


class Store(StoreReads, SiteWrites):
    """``data_key``: the key patient data is sealed with (``Settings.sealing_key()``). Given, booking
    requests are written sealed and those stored in plaintext before are sealed in place at open;
    the appointment mirror needs it. Without one, sealed rows cannot be read (``DataKeyError``
    naming ``data_key``) while everything else works."""

    def __init__(
        self, path: str | Path, clock: Callable[[], float] = steady_time, *, data_key: DataKey | None = None
    ) -> None:
        self.location = str(path)  # a SQLite file, or a PostgreSQL URL (its password inside)
        self.path = shown(path)  # what messages say: never the password
        self.clock = clock
        self.data_key = data_key
        self._thread = threading.local()  # a thread that keeps its own connection (AsyncStore's threads)
        self.engine: Engine = make_engine(self.location)
        if self.engine.dialect.name == "postgresql":
            self.now_sql = POSTGRES_NOW
        try:
            migrate(self.engine, self.path)
        except StoreError:
            self.engine.dispose()
            raise
        except (SQLAlchemyError, self.engine.dialect.loaded_dbapi.Error) as err:
            self.engine.dispose()
            raise open_error(self.path, err) from None
        if data_key is not None:
            try:
                self.seal_plaintext_requests()
            except StoreError:
                self.engine.dispose()
                raise

    def close(self) -> None:
        self.engine.dispose()

    # -- plumbing -----------------------------------------------------------------------------

    def own_thread_connection(self) -> Connection:
        """Give the calling thread a connection of its own, used by every call it makes from now on
        (AsyncStore's writer and readers: each thread one connection, as long as the thread lives).
        The caller closes it (``close()`` here does not see other threads' connections)."""
        conn = self.engine.connect()
        self._thread.connection = conn
        return conn

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        owned: Connection | None = getattr(self._thread, "connection", None)
        if owned is not None:
            yield owned
            return
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self, fenced: bool = False) -> Iterator[Connection]:
        """One write transaction: it holds the write lock from its start (BEGIN IMMEDIATE).
        ``fenced``: it makes an external effect, and first checks this process's ``fence``."""
        try:
            with self._connection() as conn:
                conn.execution_options(**{WRITE: True})
                try:
                    with conn.begin():
                        if fenced:
                            self.check_fence(conn)
                        yield conn
                finally:
                    conn.execution_options(**{WRITE: False})
        except SQLAlchemyError as err:
            raise store_error(self.path, err) from None

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """One read transaction (a consistent snapshot; in WAL it waits for no writer)."""
        try:
            with self._connection() as conn, conn.begin():
                yield conn
        except SQLAlchemyError as err:
            raise store_error(self.path, err) from None

    def _select(self, *queries: Query) -> list[list[dict[str, Any]]]:
        with self._read() as conn:
            return [[dict(r) for r in conn.execute(text(sql), dict(params)).mappings()] for sql, params in queries]

    def _rows(self, statement: Any) -> list[Row[Any]]:
        with self._read() as conn:
            return list(conn.execute(statement))

    def schema_version(self) -> int:
        with self._read() as conn:
            return schema_number(read_state(conn).revision)

    def writable(self) -> bool:
        """Whether a write reaches the database file: a real row, committed (a TEMP table would live
        outside the file and pass on a read-only store)."""
        try:
            with self._write() as conn:
                upsert(conn, t.kv, {"key": "writable_check", "value": self.clock()})
            return True
        except StoreError:
            return False

    def damage(self) -> str | None:
        """What SQLite's ``PRAGMA quick_check`` finds wrong with the file, or None if nothing.

        Asked after a failure that may be damage ("malformed", "not a database"): a disk or a copy
        gone wrong under a running service. Never raises: an unreadable file is itself the answer.
        (PostgreSQL checks its own pages; a failing server is not damage of ours: None.)"""
        if self.engine.dialect.name != "sqlite":
            return None
        try:
            with self._read() as conn:
                found = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA quick_check(3)")]
        except StoreError as err:
            return str(err)[:300]
        return None if found == ["ok"] else "; ".join(found)[:300]

    # -- portals ------------------------------------------------------------------------------

    def set_failover(self, portal: str, on: bool, reason: str) -> PortalRow:
        """Switch the portal's failover state; a new incident number starts with each switch on.

        ``since``/``reason`` record the last switch; ``outage_since``/``outage_reason`` keep the
        switch on's, so the switch off can still say how long the outage lasted and why."""
        now = self.clock()
        ps = t.portal_state
        with self._write(fenced=True) as conn:
            self._ensure_portal(conn, portal)
            was_on = conn.execute(select(ps.c.failover).where(ps.c.portal == portal)).scalar_one()
            this_portal = update(ps).where(ps.c.portal == portal)
            if was_on != on:
                conn.execute(this_portal.values(failover=on, since=now, reason=reason))
            if on and not was_on:  # an outage begins: a new incident, whose start and cause are kept
                conn.execute(this_portal.values(incident=ps.c.incident + 1, outage_since=now, outage_reason=reason))
        return self.portal(portal)

    def set_verdict(self, portal: str, verdict: str, since: float) -> None:
        self._update_portal(portal, verdict=verdict, verdict_since=since)

    def set_page(self, portal: str, on: bool) -> None:
        self._update_portal(portal, fenced=True, page_on=on)

    def _update_portal(self, portal: str, fenced: bool = False, **values: Any) -> None:
        with self._write(fenced) as conn:
            self._ensure_portal(conn, portal)
            conn.execute(update(t.portal_state).where(t.portal_state.c.portal == portal).values(**values))

    @staticmethod
    def _ensure_portal(conn: Connection, portal: str) -> None:
        insert_if_absent(conn, t.portal_state, {"portal": portal})  # the other columns' defaults

    def put_endpoint(self, row: EndpointRow) -> None:
        with self._write() as conn:
            upsert(conn, t.endpoint_state, asdict(row))

    def set_value(self, key: str, value: Any) -> None:
        """A small named value (heartbeat, drill results): JSON in the kv table."""
        with self._write() as conn:
            upsert(conn, t.kv, {"key": key, "value": value})

    # -- actions ------------------------------------------------------------------------------

    def action(self, portal: str, action: str) -> ActionRow:
        a = t.action_state
        rows = self._rows(select(a).where(a.c.portal == portal, a.c.action == action))
        if not rows:
            return ActionRow(portal, action, "off", "unknown", None, False, 0, 0.0, None, None)
        return ActionRow(**rows[0]._mapping)

    def put_action(self, row: ActionRow) -> None:
        with self._write(fenced=True) as conn:
            upsert(conn, t.action_state, {**asdict(row), "updated": self.clock()})

    def clear_permanent_errors(self, portal: str | None = None) -> int:
        """Let actions stopped by a permanent error try again (after a fix, a restart, an override)."""
        a = t.action_state
        statement = update(a).where(a.c.permanent.is_(True)).values(permanent=False, next_attempt=0.0)
        if portal is not None:
            statement = statement.where(a.c.portal == portal)
        with self._write() as conn:  # a human decision (a restart, the console): no effect to fence
            return conn.execute(statement).rowcount

    # -- overrides and maintenance ------------------------------------------------------------

    def set_override(self, portal: str, mode: str, reason: str, expires: float | None) -> None:
        if mode not in OVERRIDE_MODES:
            raise StoreError(f"unknown override mode {mode!r} (use {', '.join(OVERRIDE_MODES)})")
        values = {"portal": portal, "mode": mode, "reason": reason, "created": self.clock(), "expires": expires}
        with self._write() as conn:
            upsert(conn, t.overrides, values)

    def clear_override(self, portal: str) -> bool:
        with self._write() as conn:
            return conn.execute(delete(t.overrides).where(t.overrides.c.portal == portal)).rowcount > 0

    def add_maintenance(self, portal: str, start: float, end: float, mode: str, reason: str) -> int:
        if end <= start:
            raise StoreError("the maintenance window ends before it starts")
        if mode not in MAINTENANCE_MODES:
            raise StoreError(f"unknown maintenance mode {mode!r} (use {', '.join(MAINTENANCE_MODES)})")
        values = {"portal": portal, "start": start, "end": end, "mode": mode, "reason": reason}
        with self._write() as conn:
            result = conn.execute(t.maintenance.insert().values(**values, created=self.clock()))
            return int(result.inserted_primary_key[0])

    def remove_maintenance(self, window_id: int) -> bool:
        with self._write() as conn:
            return conn.execute(delete(t.maintenance).where(t.maintenance.c.id == window_id)).rowcount > 0

    def maintenance(self, portal: str | None = None, include_past: bool = False) -> list[Maintenance]:
        m = t.maintenance
        statement = select(m).order_by(m.c.start, m.c.id)
        if portal:
            statement = statement.where(m.c.portal == portal)
        if not include_past:
            statement = statement.where(m.c.end > self.clock())
        return [Maintenance(**r._mapping) for r in self._rows(statement)]

    # -- events and claims --------------------------------------------------------------------

    def add_event(self, kind: str, portal: str | None = None, action: str | None = None, **detail: Any) -> None:
        values = {"ts": self.clock(), "portal": portal, "kind": kind, "action": action, "detail": detail}
        with self._write() as conn:
            conn.execute(t.events.insert().values(**values))

    def events(
        self,
        portal: str | None = None,
        since: float | None = None,
        kinds: tuple[str, ...] = (),
        limit: int = 10_000,
    ) -> list[Event]:
        """The latest ``limit`` matching events, oldest first."""
        e = t.events
        statement = select(e).order_by(e.c.id.desc()).limit(limit)
        if portal:
            statement = statement.where(e.c.portal == portal)
        if since is not None:
            statement = statement.where(e.c.ts >= since)
        if kinds:
            statement = statement.where(e.c.kind.in_(kinds))
        return [Event(**r._mapping) for r in reversed(self._rows(statement))]

    def purge_audit(
        self,
        older_than: float,
        claims_older_than: float | None = None,
        kept_kinds: tuple[str, ...] = (),
        kept_older_than: float | None = None,
    ) -> int:
        """Delete events from before ``older_than`` (unix time) — those of ``kept_kinds`` only from
        before ``kept_older_than`` (the availability report's history) — and claims from before
        ``claims_older_than`` (default the same); returns how many rows went."""
        claims_before = older_than if claims_older_than is None else claims_older_than
        e = t.events
        expired = e.c.ts < older_than
        if kept_kinds:
            kept_before = older_than if kept_older_than is None else min(older_than, kept_older_than)
            expired = and_(expired, or_(e.c.kind.not_in(kept_kinds), e.c.ts < kept_before))
        with self._write() as conn:
            events = conn.execute(delete(e).where(expired)).rowcount
            o = t.staff_outbox
            # Only finished deliveries: a message still being retried is kept however old it is.
            done = and_(o.c.created < older_than, o.c.state.in_(("sent", "failed")))
            outbox = conn.execute(delete(o).where(done)).rowcount
            return events + outbox + conn.execute(delete(t.claims).where(t.claims.c.ts < claims_before)).rowcount

    def claim(self, key: str) -> bool:
        """True exactly once per key, across processes and restarts: claim before a visible effect."""
        with self._write(fenced=True) as conn:
            return insert_if_absent(conn, t.claims, {"key": key, "ts": self.clock()})

    def claimed(self, key: str) -> bool:
        return bool(self._rows(select(t.claims.c.key).where(t.claims.c.key == key)))

    # -- staff outbox -------------------------------------------------------------------------

    def enqueue(self, claim: str, rows: list[OutboxRow]) -> bool:
        """Claim ``claim`` and queue its rows in one transaction; False (nothing queued) if it was
        claimed before. A row with ``after`` is queued only for a target that has the ``after``
        message (no "recovered" to a target that never had the outage)."""
        o = t.staff_outbox
        with self._write(fenced=True) as conn:
            if not insert_if_absent(conn, t.claims, {"key": claim, "ts": self.clock()}):
                return False
            for row in rows:
                if (
                    row.after is not None
                    and not conn.execute(
                        select(o.c.claim).where(o.c.claim == row.after, o.c.target == row.target)
                    ).first()
                ):
                    continue
                conn.execute(o.insert().values(**asdict(row)))
            return True

    def due_outbox(self, now: float, limit: int = 50) -> list[OutboxRow]:
        """Pending rows whose time has come and whose ``after`` message that target already has,
        oldest first."""
        o = t.staff_outbox
        first = o.alias("first")
        first_sent = exists().where(first.c.claim == o.c.after, first.c.target == o.c.target, first.c.state == "sent")
        statement = (
            select(o)
            .where(o.c.state == "pending", o.c.next_try <= now, or_(o.c.after.is_(None), first_sent))
            .order_by(o.c.created, o.c.claim, o.c.target)
            .limit(limit)
        )
        return [OutboxRow(**r._mapping) for r in self._rows(statement)]

    def outbox(self, claim: str | None = None) -> list[OutboxRow]:
        """The outbox's rows (of one message), oldest first (``status``, tests)."""
        o = t.staff_outbox
        statement = select(o).order_by(o.c.created, o.c.claim, o.c.target)
        if claim is not None:
            statement = statement.where(o.c.claim == claim)
        return [OutboxRow(**r._mapping) for r in self._rows(statement)]

    def update_outbox_delivery(self, row: OutboxRow) -> None:
        """Record where a row's delivery stands (its state, attempts, next try, error, flags)."""
        o = t.staff_outbox
        values = {
            "state": row.state,
            "attempts": row.attempts,
            "next_try": row.next_try,
            "last_error": row.last_error,
            "possible_duplicate": row.possible_duplicate,
            "sent_at": row.sent_at,
        }
        with self._write(fenced=True) as conn:
            conn.execute(update(o).where(o.c.claim == row.claim, o.c.target == row.target).values(**values))

    def requeue_interrupted_sends(self) -> int:
        """At start: rows left ``sending`` (a crash may have cut the send, or not) go out once more,
        flagged as possible duplicates. Returns how many."""
        o = t.staff_outbox
        statement = (
            update(o).where(o.c.state == "sending").values(state="pending", next_try=0.0, possible_duplicate=True)
        )
        with self._write(fenced=True) as conn:
            return conn.execute(statement).rowcount

    # -- staff accounts -----------------------------------------------------------------------

    def add_staff_account(self, name: str, role: str, password_hash: str) -> bool:
        """Add an account; False (nothing written) when the name is taken."""
        _check_role(role)
        now = self.clock()
        values = {"name": name, "role": role, "password": password_hash, "created": now, "updated": now}
        with self._write() as conn:
            return insert_if_absent(conn, t.staff_accounts, values)

    def staff_account(self, name: str) -> StaffAccount | None:
        rows = self._rows(select(t.staff_accounts).where(t.staff_accounts.c.name == name))
        return StaffAccount(**rows[0]._mapping) if rows else None

    def staff_accounts(self) -> list[StaffAccount]:
        rows = self._rows(select(t.staff_accounts).order_by(t.staff_accounts.c.name))
        return [StaffAccount(**r._mapping) for r in rows]

    def set_staff_password(self, name: str, password_hash: str) -> bool:
        """Change the password (and lift the throttle: the new password is good at once)."""
        return self._update_staff(name, password=password_hash, updated=self.clock(), failures=0, next_login=0.0)

    def set_staff_role(self, name: str, role: str) -> bool:
        _check_role(role)
        return self._update_staff(name, role=role, updated=self.clock())

    def remove_staff_account(self, name: str) -> bool:
        with self._write() as conn:
            return conn.execute(delete(t.staff_accounts).where(t.staff_accounts.c.name == name)).rowcount > 0

    def record_staff_login(self, name: str, failures: int, next_login: float) -> bool:
        """Keep the login throttle: 0 failures after a right password, one more after a wrong one."""
        return self._update_staff(name, failures=failures, next_login=next_login)

    def _update_staff(self, name: str, **values: Any) -> bool:
        s = t.staff_accounts
        with self._write() as conn:
            return conn.execute(update(s).where(s.c.name == name).values(**values)).rowcount > 0

    # -- booking requests ---------------------------------------------------------------------

    def add_request(self, portal: str, data: dict[str, Any]) -> int:
        """Store a booking request durably (sealed, with a data key); returns its number."""
        with self._write() as conn:
            return self._insert_request(conn, portal, data)

    def add_form_request(self, portal: str, data: dict[str, Any], form: str) -> tuple[int, bool]:
        """Store the request a rendered form (its one-time id ``form``) sent, at most once:
        (its number, True) the first time; (the first one's number, False) for every replay, which
        stores nothing. The form's claim (``form:ID:NUMBER``) is taken in the same transaction, and
        goes with the audit claims (``purge_audit``), long after the form's CSRF cookie expired."""
        c = t.claims
        with self._write() as conn:
            prefix = f"form:{form}:"
            # Range, not LIKE: the id's "_" would be a wildcard. ";" follows ":" in ASCII.
            seen = conn.execute(select(c.c.key).where(c.c.key > prefix, c.c.key < f"form:{form};")).first()
            if seen is not None:
                return int(seen.key.removeprefix(prefix)), False
            number = self._insert_request(conn, portal, data)
            insert_if_absent(conn, c, {"key": f"{prefix}{number}", "ts": self.clock()})
            return number, True

    def _insert_request(self, conn: Connection, portal: str, data: dict[str, Any]) -> int:
        b = t.booking_requests
        text = _json(self.path, data)
        if self.data_key is None:
            result = conn.execute(b.insert().values(portal=portal, created=self.clock(), data=text))
            return int(result.inserted_primary_key[0])
        # The row's number is part of what the seal binds: known once inserted, sealed in the same
        # transaction (nothing of the placeholder is ever committed).
        result = conn.execute(b.insert().values(portal=portal, created=self.clock(), data=""))
        number = int(result.inserted_primary_key[0])
        conn.execute(update(b).where(b.c.id == number).values(data=self._seal_request(number, text)))
        return number

    def request(self, request_id: int) -> BookingRequest | None:
        rows = self._rows(select(t.booking_requests).where(t.booking_requests.c.id == request_id))
        return self._booking_request(rows[0]) if rows else None

    def requests(self, status: str | None = None, portal: Portals = None, limit: int = 10_000) -> list[BookingRequest]:
        """Newest first; of one portal, of several (a clinic's), or of all (None)."""
        b = t.booking_requests
        statement = select(b).order_by(b.c.id.desc()).limit(limit)
        if status:
            statement = statement.where(b.c.status == status)
        if portal is not None and portal != "":
            statement = statement.where(_of(b.c.portal, portal))
        return [self._booking_request(r) for r in self._rows(statement)]

    def set_request_status(self, request_id: int, status: str) -> bool:
        if status not in REQUEST_STATUSES:
            raise StoreError(f"unknown status {status!r} (use {', '.join(REQUEST_STATUSES)})")
        b = t.booking_requests
        statement = update(b).where(b.c.id == request_id).values(status=status, updated=self.clock())
        with self._write() as conn:
            return conn.execute(statement).rowcount > 0

    def purge_requests(self, older_than: float) -> int:
        """Delete booking requests created before ``older_than`` (unix time); returns how many."""
        with self._write() as conn:
            b = t.booking_requests
            return conn.execute(delete(b).where(b.c.created < older_than)).rowcount

    def count_requests(self, portal: str | None = None) -> int:
        b = t.booking_requests
        statement = select(func.count()).select_from(b)
        if portal:
            statement = statement.where(b.c.portal == portal)
        with self._read() as conn:
            return int(conn.execute(statement).scalar_one())

    def seal_plaintext_requests(self) -> int:
        """Seal, in place, the booking requests stored in plaintext (before a data key was set), in
        batches of ``SEAL_BATCH`` rows per transaction; returns how many. Idempotent: sealed rows are
        left alone, so a run cut short finishes at the next open. Run at open when a key is given.

        Also marks the store for the pre-Alembic portalguard (``schema.SEALED_LEGACY_VERSION``): it
        cannot read sealed requests, so it refuses the store instead of failing on them."""
        if self.data_key is None:
            raise self._no_key("booking requests cannot be sealed")
        b = t.booking_requests
        plaintext = not_(b.c.data.startswith(TOKEN_PREFIX, autoescape=True))
        with self._read() as conn:
            to_do = conn.execute(select(b.c.id).where(plaintext).limit(1)).first() is not None
            marked = conn.dialect.name != "sqlite" or (
                conn.exec_driver_sql("PRAGMA user_version").scalar() == t.SEALED_LEGACY_VERSION
            )
        if not to_do and marked:  # the usual open: no write, no write lock
            return 0
        sealed = 0
        while True:
            with self._write() as conn:
                if conn.dialect.name == "sqlite":
                    conn.exec_driver_sql(f"PRAGMA user_version={t.SEALED_LEGACY_VERSION}")
                batch = conn.execute(select(b.c.id, b.c.data).where(plaintext).order_by(b.c.id).limit(SEAL_BATCH))
                rows = list(batch)
                for r in rows:
                    conn.execute(update(b).where(b.c.id == r.id).values(data=self._seal_request(r.id, r.data)))
            sealed += len(rows)
            if len(rows) < SEAL_BATCH:
                break
        if sealed:
            self._rewrite_file()
        return sealed

    def _rewrite_file(self) -> None:
        """Rebuild the database file (``VACUUM``) and empty the WAL: no page written before the rows
        were sealed (nor a freed one from before ``secure_delete``) keeps their plaintext. Once, when
        plaintext rows were sealed."""
        if self.engine.dialect.name != "sqlite":
            return
        raw = self.engine.raw_connection()  # autocommit (engine.py): VACUUM cannot run in a transaction
        try:
            cursor = raw.cursor()
            cursor.execute("VACUUM")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.close()
        except self.engine.dialect.loaded_dbapi.Error as err:
            raise store_error(self.path, err) from None
        finally:
            raw.close()

    def _seal_request(self, number: int, text: str) -> str:
        assert self.data_key is not None
        return self.data_key.seal(text, context("booking_requests", "data", number))

    def _booking_request(self, row: Row[Any]) -> BookingRequest:
        values = dict(row._mapping)
        text: str = values["data"]
        if is_sealed(text):
            text = self._open(text, context("booking_requests", "data", values["id"]), "booking requests")
        values["data"] = json.loads(text)
        return BookingRequest(**values)

    # -- patient data: sealing ----------------------------------------------------------------

    def _no_key(self, what: str, sealed: bool = False) -> DataKeyError:
        if sealed:  # only that key reads them: a new one would not help
            hint = "the key they were sealed with"
        else:
            hint = "the store's key (`portalguard keygen` makes one for a store that has none yet)"
        return DataKeyError(
            f"store {self.path}: {what} without a data key: set data_key: ${{PORTALGUARD_DATA_KEY}} in the config "
            f"to {hint}"
        )

    def _open(self, token: str, where: str, what: str) -> str:
        if self.data_key is None:
            kid = sealed_key_id(token) or "?"
            raise self._no_key(f"{what} are sealed (key {kid}) and cannot be read", sealed=True)
        try:
            return self.data_key.open(token, where)
        except SealError as err:  # its words hold no key, no data
            raise DataKeyError(f"store {self.path}: {err}") from None

    def _sealing_key(self, what: str) -> DataKey:
        if self.data_key is None:
            raise self._no_key(what)
        return self.data_key

    # -- the appointment mirror ---------------------------------------------------------------

    def apply_mirror_day(self, portal: str, listing: DayListing, source: str, now: float) -> DayChanges:
        """Reconcile ``listing`` (one day's complete listing) with what the mirror holds, in one
        transaction (``failover.mirror.reconcile``): new rows added, changed ones updated, the day's
        rows no longer listed marked vanished (kept); a row listed on another day than it was is
        moved there. Returns what changed."""
        key = self._sealing_key("the appointment mirror cannot be written")
        a = t.appointments
        ids = list(dict.fromkeys(x.id for x in listing.appointments))
        with self._write() as conn:
            held_rows = list(conn.execute(select(a).where(a.c.portal == portal, a.c.day == listing.day.isoformat())))
            for chunk in _chunks(ids):
                held_rows += conn.execute(select(a).where(a.c.portal == portal, a.c.id.in_(chunk)))
            held = {r.id: self._mirrored(r) for r in held_rows}
            result = reconcile(portal, held, listing, source, now)
            for row in result.upserts:
                upsert(conn, a, self._appointment_values(key, row))
            for chunk in _chunks(list(result.seen)):
                conn.execute(update(a).where(a.c.portal == portal, a.c.id.in_(chunk)).values(synced_at=now))
        return result.changes

    def record_mirror_sync(self, portal: str, now: float, error_kind: str | None, error: str | None) -> None:
        """A sync of ``portal``'s mirror ended: a success (``error_kind`` None) or a failure of that
        kind (``failover.mirror.model.FAILURE_KINDS``) with its detail (never patient data)."""
        if error_kind is not None and error_kind not in FAILURE_KINDS:
            # A bug of the caller, not a failing store (ResilientStore would count a StoreError as one).
            raise ValueError(f"unknown mirror failure kind {error_kind!r} (use {', '.join(FAILURE_KINDS)})")
        values: dict[str, Any] = {"portal": portal, "last_attempt": now}
        if error_kind is None:
            values.update(last_success=now, last_error_kind=None, last_error=None)
        else:
            values.update(last_error_kind=error_kind, last_error=(error or "")[:MAX_SYNC_ERROR])
        with self._write() as conn:
            upsert(conn, t.mirror_sync, values)

    def appointments(self, portal: Portals, first_day: dt.date, last_day: dt.date) -> list[Mirrored]:
        """The mirror's appointments of ``first_day`` .. ``last_day`` (inclusive), of one portal, of
        several (a clinic's) or all (None), by start time; cancelled and vanished ones included."""
        a = t.appointments
        statement = (
            select(a)
            .where(a.c.day >= first_day.isoformat(), a.c.day <= last_day.isoformat())
            .order_by(a.c.start, a.c.portal, a.c.id)
        )
        if portal is not None:
            statement = statement.where(_of(a.c.portal, portal))
        return [self._mirrored(r) for r in self._rows(statement)]

    def count_appointments(self, portal: str, day: dt.date) -> int:
        """Booked (not cancelled) appointments of ``portal`` on ``day``: no key needed."""
        a = t.appointments
        statement = select(func.count()).where(
            a.c.portal == portal, a.c.day == day.isoformat(), a.c.cancelled.is_(False)
        )
        with self._read() as conn:
            return int(conn.execute(statement).scalar_one())

    def purge_appointments(
        self, started_before: float, portal: str | None = None, *, other_than: Collection[str] = ()
    ) -> int:
        """Delete appointments that started before ``started_before`` (retention): of ``portal``, or of
        every portal but those ``other_than`` names. Returns how many."""
        a = t.appointments
        statement = delete(a).where(a.c.start < started_before)
        if portal is not None:
            statement = statement.where(a.c.portal == portal)
        if other_than:
            statement = statement.where(a.c.portal.not_in(list(other_than)))
        with self._write() as conn:
            return conn.execute(statement).rowcount

    # -- the mirror's mail source --------------------------------------------------------------

    def open_mail_folder(self, portal: str, folder: str, uidvalidity: int) -> MailFolderState:
        """The folder was opened with ``uidvalidity``: where its reading stands. A UIDVALIDITY other
        than the one stored means the server renumbered the folder: it is read again from its first
        mail (appointment ids and mail keys make that create no duplicates)."""
        m = t.mirror_mail_state
        with self._write() as conn:
            row = conn.execute(select(m).where(m.c.portal == portal, m.c.folder == folder)).first()
            if row is None or row.uidvalidity != uidvalidity:
                upsert(conn, m, {"portal": portal, "folder": folder, "uidvalidity": uidvalidity, "last_uid": 0})
        state = self.mail_state(portal, folder)
        assert state is not None
        return state

    def apply_mail(
        self, portal: str, folder: str, uidvalidity: int, uid: int, effect: MailEffect, now: float
    ) -> MailApplied:
        """One mail's effect and the folder's new last UID, in one transaction: a restart in the
        middle of a batch processes no mail twice and skips none. ``effect``: a booking change of an
        appointment (``failover.mirror.reconcile.apply_mail``), an unread mail listed for staff (once
        per mail key, its subject sealed), or None (another sender's mail: only the UID moves)."""
        m, a, u = t.mirror_mail_state, t.appointments, t.mirror_mail_unread
        key = self._sealing_key("the mirror's mails cannot be written")
        outcome: str | None = None
        unread_new = False
        with self._write() as conn:
            state = conn.execute(select(m).where(m.c.portal == portal, m.c.folder == folder)).first()
            if state is not None and state.uidvalidity == uidvalidity and state.last_uid >= uid:
                return MailApplied("unchanged" if isinstance(effect, MailBooking) else None, False)  # done before
            if isinstance(effect, MailBooking):
                found = conn.execute(select(a).where(a.c.portal == portal, a.c.id == effect.id)).first()
                row, outcome = apply_mail(portal, None if found is None else self._mirrored(found), effect, now)
                if row is not None:
                    upsert(conn, a, self._appointment_values(key, row))
            elif isinstance(effect, UnreadMail):
                sealed = key.seal(effect.subject, context("mirror_mail_unread", "subject", portal, effect.key))
                values = {"portal": portal, "key": effect.key, "received": effect.received, "subject": sealed}
                unread_new = insert_if_absent(conn, u, {**values, "reason": effect.reason, "seen_at": now})
            upsert(conn, m, {"portal": portal, "folder": folder, "uidvalidity": uidvalidity, "last_uid": uid})
        return MailApplied(outcome, unread_new)

    def record_mail_check(
        self, portal: str, folder: str, now: float, error_kind: str | None, error: str | None
    ) -> None:
        """A check of the mailbox ended: every new mail read (``error_kind`` None) or a failure of that
        kind (``MAIL_FAILURE_KINDS``; its detail names the host, never the user or the password)."""
        if error_kind is not None and error_kind not in MAIL_FAILURE_KINDS:
            raise ValueError(f"unknown mail failure kind {error_kind!r} (use {', '.join(MAIL_FAILURE_KINDS)})")
        values: dict[str, Any] = {"portal": portal, "folder": folder, "last_attempt": now}
        if error_kind is None:
            values.update(last_success=now, last_error_kind=None, last_error=None)
        else:
            values.update(last_error_kind=error_kind, last_error=(error or "")[:MAX_SYNC_ERROR])
        with self._write() as conn:
            upsert(conn, t.mirror_mail_state, values)

    def unread_mails(self, portal: str | None = None, since: float = 0.0) -> list[tuple[str, UnreadMail]]:
        """The mails no template could read, received from ``since`` on, newest first, with their portal."""
        u = t.mirror_mail_unread
        statement = select(u).where(u.c.received >= since).order_by(u.c.received.desc(), u.c.key)
        if portal is not None:
            statement = statement.where(u.c.portal == portal)
        out = []
        for r in self._rows(statement):
            where = context("mirror_mail_unread", "subject", r.portal, r.key)
            subject = self._open(r.subject, where, "the mirror's unread mails")
            out.append((r.portal, UnreadMail(r.key, r.received, subject, r.reason)))
        return out

    def purge_unread_mails(self, received_before: float) -> int:
        """Delete the unread mails received before ``received_before`` (retention); returns how many."""
        u = t.mirror_mail_unread
        with self._write() as conn:
            return conn.execute(delete(u).where(u.c.received < received_before)).rowcount

    def _mirrored(self, row: Row[Any]) -> Mirrored:
        values = dict(row._mapping)
        for column in PATIENT_FIELDS:
            where = context("appointments", column, values["portal"], values["id"])
            values[column] = self._open(values[column], where, "the mirror's appointments")
        values["day"] = dt.date.fromisoformat(values["day"])
        return Mirrored(**values)

    @staticmethod
    def _appointment_values(key: DataKey, row: Mirrored) -> dict[str, Any]:
        values = asdict(row)
        values["day"] = row.day.isoformat()
        for column in PATIENT_FIELDS:
            values[column] = key.seal(values[column], context("appointments", column, row.portal, row.id))
        return values


def _check_role(role: str) -> None:
    if role not in STAFF_ROLES:
        raise StoreError(f"unknown staff role {role!r} (use {', '.join(STAFF_ROLES)})")


def _of(column: Any, portal: str | Collection[str]) -> Any:
    """The condition "this row is of ``portal``" (one id, or any of several)."""
    return column == portal if isinstance(portal, str) else column.in_(list(portal))


def _json(path: str, data: dict[str, Any]) -> str:
    # Japanese text kept readable (a booking request stored before a key was set reads as before).
    try:
        return json.dumps(data, ensure_ascii=False)
    except (TypeError, ValueError) as err:  # its message may quote the value: the type only
        raise StoreError(f"store {path}: {type(err).__name__}") from None


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(ids), ID_CHUNK):
        yield ids[i : i + ID_CHUNK]
