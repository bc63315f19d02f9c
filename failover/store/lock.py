"""One ``portalguard run`` per store: two services on one store would both switch the same actions
and announce the same booking requests.

``ServiceLock`` holds an exclusive ``flock`` on ``<store>.lock`` for the life of the process and
writes who holds it (host, PID, start) into the file, so a second run can say whom to stop. The
kernel drops the lock when the process dies, ``kill -9`` included: a stale file never blocks a
restart. The file is never deleted: a process could lock the unlinked file while a third one
creates a new one, and both would believe they hold the lock. CLI commands do not take it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType

from failover.store.rows import StoreError


class StoreInUseError(StoreError):
    """Another process holds the store's service lock."""


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
            "stop it first, or give this instance its own store"
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
