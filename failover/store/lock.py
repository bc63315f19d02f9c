"""One ``portalguard run`` per store: two services on one store would both switch the same actions
and announce the same booking requests.

``ServiceLock`` holds an exclusive ``flock`` on ``<store>.lock`` for the life of the process and
writes who holds it (host, PID, start) into the file, so a second run can say whom to stop. The
kernel drops the lock when the process dies, ``kill -9`` included: a stale file never blocks a
restart. The file is never deleted: a process could lock the unlinked file while a third one
creates a new one, and both would believe they hold the lock. CLI commands do not take it.

On PostgreSQL (``DatabaseServiceLock``) the lock is a session advisory lock held on a connection
of its own for the life of the process; the server drops it when that connection ends (the process
died, ``kill -9`` included). The holder names itself in the connection's ``application_name``, which
a second run reads from ``pg_stat_activity``. One lock per site and database, whatever the host: a second
instance of the same ``site`` is refused as well, on any machine; different sites share the database
(and one leader lease among them, ``failover/leadership.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
import zlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType

from failover.store.rows import StoreError
from failover.store_url import is_database_url


class StoreInUseError(StoreError):
    """Another process holds the store's service lock."""


PG_SERVICE_LOCK = 0x706F7274_72756E  # "portrun": apart from the write lock's key (engine.PG_WRITE_LOCK)


def service_lock(
    location: str | Path, clock: Callable[[], float] = time.time, site: str = ""
) -> ServiceLock | DatabaseServiceLock:
    """The service lock of the store at ``location`` (a SQLite file, or a PostgreSQL URL: one per
    ``site``, as several sites share one database)."""
    if is_database_url(location):
        return DatabaseServiceLock(str(location), site)
    return ServiceLock(location, clock)


class ServiceLock:
    def __init__(self, store_path: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.store_path = str(store_path)
        self.path = f"{store_path}.lock"
        self.clock = clock
        self._fd: int | None = None

    def acquire(self) -> ServiceLock:
        """Take the lock or raise ``StoreInUseError`` naming the holder (``StoreError``: no file).
        Taking it again while held is a no-op (``with lock:`` after ``acquire()``)."""
        if self._fd is not None:
            return self
        try:
            # os.open's descriptors are not inherited: a child process must not keep the lock alive.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise StoreError(
                f"store {self.store_path}: cannot create its lock file {self.path}: {err.strerror} "
                "(check the `store:` path and its permissions)"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise StoreInUseError(self._in_use_message(holder)) from None
        self._fd = fd
        self._write_holder()
        return self

    def _write_holder(self) -> None:
        assert self._fd is not None
        holder = {"host": socket.gethostname(), "pid": os.getpid(), "since": self.clock()}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(holder).encode(), 0)

    def _in_use_message(self, holder: dict[str, object]) -> str:
        pid, host = holder.get("pid", "unknown"), holder.get("host", "unknown")
        since = holder.get("since")
        started = f", since {_local_time(since)}" if isinstance(since, int | float) else ""
        return (
            f"another portalguard run (PID {pid} on host {host}{started}) already uses store {self.store_path}; "
            "stop it first, or give this instance its own store (several instances sharing one store, "
            "for high availability, need a PostgreSQL store: README, A PostgreSQL store)"
        )

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)  # nobody holds it now; the next holder writes itself in
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> ServiceLock:
        return self.acquire()

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.release()


def _read_holder(fd: int) -> dict[str, object]:
    # Empty while the holder is between taking the lock and writing itself in; then unknown.
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _local_time(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


class DatabaseServiceLock:
    """The service lock of a PostgreSQL store (see the module docstring)."""

    def __init__(self, location: str, site: str = "") -> None:
        from failover.store.engine import libpq_url, shown

        self.url = libpq_url(location)
        self.shown = shown(location)
        self.site = site
        # One lock per site: its name's CRC in the low bits, apart from every other key of ours.
        self.key = PG_SERVICE_LOCK ^ (zlib.crc32(site.encode()) << 8) if site else PG_SERVICE_LOCK
        self._conn: object | None = None

    def acquire(self) -> DatabaseServiceLock:
        import psycopg

        if self._conn is not None:
            return self
        me = f"portalguard run {os.getpid()}@{socket.gethostname()}"[:63]
        if self.site:
            me = f"portalguard run {self.site} {os.getpid()}@{socket.gethostname()}"[:63]
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5, application_name=me)
        except psycopg.Error as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            hint = "(check the `store:` URL and that the server runs)"
            raise StoreError(f"store {self.shown}: {reason} {hint}") from None
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        if not (got and got[0]):
            holder = _database_holder(conn, self.key)
            conn.close()
            raise StoreInUseError(
                f"another portalguard run of site {self.site} ({holder}) already uses store {self.shown}; "
                "stop it first, or give this instance its own name (site:, --site or $PORTALGUARD_SITE): "
                "several instances share one store as different sites"
            )
        self._conn = conn
        return self

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()  # type: ignore[attr-defined]
            self._conn = None

    def __enter__(self) -> DatabaseServiceLock:
        return self.acquire()

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.release()


def _database_holder(conn: object, key: int) -> str:
    row = conn.execute(  # type: ignore[attr-defined]
        "SELECT a.application_name, a.backend_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
        (key,),
    ).fetchone()
    if not row:
        return "holder unknown"
    name, started = row
    who = str(name).removeprefix("portalguard run ").split(" ")[-1].replace("@", " on host ", 1)
    return f"PID {who}, since {started.astimezone().isoformat(timespec='seconds')}"
