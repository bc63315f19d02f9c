"""What every connection to the SQLite store is set to, on the driver's connection (no SQLAlchemy:
the engine's connections and ``ReadOnlyStore``'s alike): a busy timeout (a second process waits for
the write lock instead of failing), WAL (readers never wait for the writer, nor the writer for
readers), ``synchronous=FULL`` (a write that returned is on disk, booking requests included) and
``secure_delete`` (what a delete or an update frees is overwritten with zeros: a purged booking
request, or one sealed in place, leaves no plaintext behind in the file). Transactions are begun by
us, not by Python's sqlite3 module (``isolation_level = None``).
"""

from __future__ import annotations

import time
from typing import Any

BUSY_TIMEOUT_MS = 10_000


def set_pragmas(dbapi_connection: Any) -> None:
    """Set up a new sqlite3 connection to the store (see the module docstring)."""
    dbapi_connection.isolation_level = None  # no implicit BEGIN/COMMIT from sqlite3: we begin
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _set_wal(cursor)
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA secure_delete=ON")
    finally:
        cursor.close()


def _set_wal(cursor: Any, within: float = 10.0) -> None:
    # Switching a fresh file to WAL takes an exclusive lock that SQLite does not wait for (no busy
    # handler): when the service and the CLI open a new store at once, one must retry.
    deadline = time.monotonic() + within
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as err:  # the driver's OperationalError
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
