"""``ServiceLock``: one ``portalguard run`` per store; the second is told whom to stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from failover.store import ServiceLock, StoreError, StoreInUseError

T0 = 1_800_000_000.0


def test_the_holder_writes_itself_into_the_lock_file(tmp_path: Path) -> None:
    store = tmp_path / "pg.db"
    with ServiceLock(store, clock=lambda: T0) as lock:
        assert lock.path == f"{store}.lock"
        holder = json.loads(Path(lock.path).read_text())
        assert holder == {"host": socket.gethostname(), "pid": os.getpid(), "since": T0}


def test_a_second_holder_is_told_who_runs_and_what_to_do(tmp_path: Path) -> None:
    store = tmp_path / "pg.db"
    with ServiceLock(store, clock=lambda: T0), pytest.raises(StoreInUseError) as info:
        ServiceLock(store).acquire()
    message = str(info.value)
    assert message.startswith(f"another portalguard run (PID {os.getpid()} on host {socket.gethostname()}, since ")
    assert f") already uses store {store}; stop it first, or give this instance its own store" in message
    assert message.endswith("need a PostgreSQL store: README, A PostgreSQL store)")  # HA is not on SQLite
    assert isinstance(info.value, StoreError)  # `run` exits 2 on it like on any store problem


def test_the_lock_is_free_again_after_release(tmp_path: Path) -> None:
    store = tmp_path / "pg.db"
    ServiceLock(store).acquire().release()
    with ServiceLock(store):
        pass
    assert Path(f"{store}.lock").exists()  # never deleted (see lock.py)


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    store = tmp_path / "pg.db"
    code = (
        "import sys, time; from failover.store import ServiceLock; "
        f"ServiceLock({str(store)!r}).acquire(); print('held', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(StoreInUseError, match=f"PID {child.pid} "):
            ServiceLock(store).acquire()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    deadline = time.monotonic() + 5
    while True:  # the kernel drops the lock with the process
        try:
            ServiceLock(store).acquire().release()
            break
        except StoreInUseError:
            assert time.monotonic() < deadline, "the lock outlived its holder"
            time.sleep(0.05)


def test_an_unknown_holder_is_still_refused_politely(tmp_path: Path) -> None:
    """The holder has the lock but has not written itself in yet (or wrote garbage)."""
    store = tmp_path / "pg.db"
    with ServiceLock(store) as lock:
        Path(lock.path).write_text("not json")
        with pytest.raises(StoreInUseError, match=r"^another portalguard run \(PID unknown on host unknown\) already"):
            ServiceLock(store).acquire()


def test_a_missing_directory_says_what_to_check(tmp_path: Path) -> None:
    store = tmp_path / "no-such-dir" / "pg.db"
    with pytest.raises(StoreError) as info:
        ServiceLock(store).acquire()
    assert str(info.value) == (
        f"store {store}: cannot create its lock file {store}.lock: No such file or directory "
        "(check the `store:` path and its permissions)"
    )


def test_acquired_then_used_as_a_context_manager_holds_it_once(tmp_path: Path) -> None:
    lock = ServiceLock(tmp_path / "pg.db").acquire()
    with lock, pytest.raises(StoreInUseError):
        ServiceLock(tmp_path / "pg.db").acquire()
    ServiceLock(tmp_path / "pg.db").acquire().release()  # released by the with
