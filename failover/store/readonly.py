"""``ReadOnlyStore``: the store opened for reading only, over the standard library's sqlite3 — the
reads of ``StoreReads`` (``reads.py``, the same methods ``Store`` runs) without importing SQLAlchemy,
so ``portalguard status`` starts in a fraction of the time.

It creates, migrates and seals nothing: ``open`` gives one only for an existing store at the newest
revision, else None, and the caller opens a ``Store`` (which creates or migrates the store, or says
why it cannot). Plaintext booking requests left from before a data key are sealed by the next
``Store`` opened with the key (the service's start, any other command).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from failover.store.pragmas import set_pragmas
from failover.store.reads import Query, StoreReads
from failover.store.revision import HEAD_REVISION, VERSION_TABLE
from failover.store.rows import StoreError
from failover.store_url import is_database_url


class ReadOnlyStore(StoreReads):
    def __init__(self, path: str, clock: Callable[[], float], connection: sqlite3.Connection) -> None:
        self.path = path
        self.clock = clock
        self._connection = connection

    @classmethod
    def open(cls, path: str | Path, clock: Callable[[], float]) -> ReadOnlyStore | None:
        """The store at ``path`` if it exists at the newest revision, else None (open a ``Store``;
        always for a PostgreSQL store, which needs its driver anyway)."""
        if is_database_url(path):
            return None
        try:  # mode=rw: never create the file (a Store does, with its schema)
            connection = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=rw", uri=True)
        except sqlite3.Error:
            return None
        try:
            set_pragmas(connection)
            revision = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
        except sqlite3.Error:  # no version table (a pre-Alembic or an empty store), or unreadable
            connection.close()
            return None
        if revision != [(HEAD_REVISION,)]:
            connection.close()
            return None
        connection.row_factory = sqlite3.Row
        return cls(str(path), clock, connection)

    def close(self) -> None:
        self._connection.close()

    def _select(self, *queries: Query) -> list[list[dict[str, Any]]]:
        conn = self._connection
        try:
            conn.execute("BEGIN")  # one snapshot for every query (in WAL it waits for no writer)
            try:
                return [[dict(row) for row in conn.execute(sql, dict(params))] for sql, params in queries]
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as err:  # the database's own words ("database is locked"): no values in them
            raise StoreError(f"store {self.path}: {err}") from None
