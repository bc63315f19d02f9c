"""Connections to the store's database: an SQLAlchemy engine per store, set up for durability.

The store is a SQLite file (the embedded default) or a PostgreSQL database (``store:`` a
``postgresql://`` URL, for a database the clinic's provider runs and replicates).

SQLite gets, on every new DBAPI connection, the settings of ``pragmas.py``
(WAL, ``synchronous=FULL``, a busy timeout, ``secure_delete``). Transactions are begun by us, not by
Python's sqlite3 module: writes with ``BEGIN IMMEDIATE`` (the
write lock at once, so two writers queue on the busy timeout instead of deadlocking on a lock
upgrade), reads with a plain ``BEGIN``; DDL then runs inside the transaction too, so a migration is
all or nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, SQLAlchemyError, StatementError

from failover.store.pragmas import set_pragmas
from failover.store.rows import StoreError
from failover.store_url import is_database_url

WRITE = "portalguard_write"  # execution option marking a connection whose transactions write


# Writers on PostgreSQL take this transaction-level advisory lock first: write transactions run one
# at a time, as SQLite's BEGIN IMMEDIATE makes them, so a read-then-write (an incident number, a
# claim and its rows) never interleaves with another process's (the CLI beside the service).
PG_WRITE_LOCK = 0x706F7274  # "port"
PG_CONNECT_TIMEOUT = 5  # seconds: an unreachable server fails a call quickly instead of hanging it
# A process frozen (SIGSTOP, a paused VM) or cut off in the middle of a write transaction would hold the
# write lock, and so stop every other instance from writing — and from taking over the leader lease —
# until the server noticed, hours later by default. The server ends such a session after a few seconds;
# a write waits for the lock a bounded time; TCP keepalives notice a dead peer within seconds.
PG_SESSION = {
    "options": "-c idle_in_transaction_session_timeout=5000 -c lock_timeout=5000",
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10000,
}


def shown(location: str | Path) -> str:
    """The store as messages name it: a URL without its password."""
    if not is_database_url(location):
        return str(location)
    return _pg_url(str(location)).set(drivername="postgresql").render_as_string(hide_password=True)


def libpq_url(location: str) -> str:
    """The URL as libpq (psycopg) takes it, password included: for connections, never for messages."""
    return _pg_url(location).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_url(location: str) -> URL:
    from sqlalchemy.engine import make_url

    url = make_url(location.replace("postgres://", "postgresql://", 1))
    return url.set(drivername="postgresql+psycopg")


def make_engine(location: str | Path) -> Engine:
    """The engine for ``store:``: a SQLite file or a PostgreSQL URL."""
    if is_database_url(location):
        return postgresql_engine(str(location))
    return sqlite_engine(location)


def postgresql_engine(location: str) -> Engine:
    engine = create_engine(
        _pg_url(location),
        connect_args={"connect_timeout": PG_CONNECT_TIMEOUT, "application_name": "portalguard", **PG_SESSION},
        pool_size=8,
        max_overflow=16,
        pool_pre_ping=True,  # a connection the server dropped (a restart, a failover) is replaced
    )
    event.listen(engine, "begin", _on_pg_begin)
    return engine


def _on_pg_begin(connection: Connection) -> None:
    if connection.get_execution_options().get(WRITE, False):
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})")


def sqlite_engine(path: str | Path, *, read_only: bool = False) -> Engine:
    """The engine for the SQLite store at ``path`` (``read_only``: the file opened ``mode=ro``)."""
    if read_only:  # SQLAlchemy passes a "file:" database with uri=true on as an SQLite URI
        url = URL.create("sqlite", database=f"file:{path}", query={"mode": "ro", "uri": "true"})
    else:
        url = URL.create("sqlite", database=str(path))
    connect_args: dict[str, Any] = {"check_same_thread": False}  # a pooled connection may move threads
    engine = create_engine(url, connect_args=connect_args, pool_size=8, max_overflow=16)
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    return engine


def _on_connect(dbapi_connection: Any, _record: object) -> None:
    set_pragmas(dbapi_connection)


def _on_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def store_error(path: str, err: BaseException) -> StoreError:
    """A StoreError naming the store and the database's own reason, never the statement or its
    parameters (SQLAlchemy's message quotes both, and they may hold a patient's booking request)."""
    if isinstance(err, DBAPIError):
        reason = str(err.orig)  # the database's own words ("database is locked"): no values in them
    elif isinstance(err, StatementError) and err.orig is not None:
        reason = type(err.orig).__name__  # e.g. a value JSON cannot encode: its message may quote it
    elif isinstance(err, SQLAlchemyError):
        reason = type(err).__name__
    else:
        reason = str(err)  # the driver's own error, raised while connecting
    return StoreError(f"store {path}: {reason}")


def open_error(path: str, err: BaseException) -> StoreError:
    """The store could not be opened at all: say what to check."""
    return StoreError(f"{store_error(path, err)} (check the `store:` path and its permissions)")
