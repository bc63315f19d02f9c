"""``AsyncStore``: Store's methods for the event loop; writes on one writer thread, reads on reader
threads, so the loop goes on while another process holds the write lock."""

from __future__ import annotations

import asyncio
import inspect
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from failover.store import AsyncStore, Store, StoreError
from failover.store.aio import FailureLog

pytestmark = pytest.mark.anyio
T0 = 1_800_000_000.0


class ThreadClock:
    """A fixed clock that notes which thread asked: the store reads the clock where it runs a query."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def __call__(self) -> float:
        self.threads.append(threading.current_thread().name)
        return T0


@pytest.fixture
async def store(store_location: str) -> AsyncIterator[AsyncStore]:
    s = AsyncStore(store_location, clock=ThreadClock())
    yield s
    await s.close()


def public_methods(cls: type) -> dict[str, Any]:
    return {n: f for n, f in vars(cls).items() if not n.startswith("_") and inspect.isfunction(f)}


def test_every_store_method_is_there_async_with_the_same_signature() -> None:
    sync = public_methods(Store)
    del sync["close"], sync["own_thread_connection"]  # close is async (drains); the other is plumbing
    aio = public_methods(AsyncStore)
    for name, method in sync.items():
        assert name in aio, name
        assert inspect.iscoroutinefunction(aio[name]), name
        assert inspect.signature(aio[name]).parameters == inspect.signature(method).parameters, name
    assert inspect.iscoroutinefunction(AsyncStore.close)


async def test_writes_run_on_the_one_writer_thread_reads_on_reader_threads(store: AsyncStore) -> None:
    clock: ThreadClock = store.clock  # type: ignore[assignment]
    for i in range(5):
        await store.add_event("tick", "epark", i=i)
    writers = set(clock.threads)
    clock.threads.clear()
    await asyncio.gather(*(store.maintenance("epark") for _ in range(10)))  # reads the clock: past windows
    readers = set(clock.threads)
    assert len(writers) == 1 and next(iter(writers)).startswith("store-writer")
    assert readers and all(name.startswith("store-reader") for name in readers)
    assert threading.current_thread().name not in writers | readers


async def test_round_trip_through_the_async_methods(store: AsyncStore) -> None:
    number = await store.add_request("epark", {"name": "山田 花子"})
    assert (await store.request(number)).data == {"name": "山田 花子"}  # type: ignore[union-attr]
    assert await store.set_request_status(number, "booked") is True
    assert [r.status for r in await store.requests()] == ["booked"]
    row = await store.set_failover("epark", True, "public: timeout")
    assert (row.failover, row.incident) == (True, 1)
    assert await store.claim("k") is True and await store.claim("k") is False
    assert await store.claimed("k") is True
    assert await store.writable() is True
    assert await store.count_requests() == 1
    assert store.sync.portal("epark").failover is True  # the same store, synchronously


async def test_the_loop_goes_on_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = AsyncStore(path)
    await s.add_request("epark", {"name": "before"})
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        write = asyncio.create_task(s.add_request("epark", {"name": "during"}))
        await asyncio.sleep(0.3)
        assert not write.done()  # waiting for the lock, in the writer thread
        assert await asyncio.wait_for(s.count_requests(), 2) == 1  # reads go on (WAL)
        ticks = 0
        for _ in range(10):  # and the loop itself is free
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 10 and not write.done()
    finally:
        holder.execute("COMMIT")
        holder.close()
    assert await asyncio.wait_for(write, 10) == 2
    await s.close()


async def test_fire_and_forget_writes_keep_their_order_and_close_drains_them(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = AsyncStore(path)
    for i in range(50):
        s.submit_write("add_event", "tick", "epark", i=i)
    number = await s.add_request("epark", {"name": "A"})  # queued behind the 50: they are in first
    assert len(await s.events(kinds=("tick",))) == 50
    for i in range(50, 100):
        s.submit_write("add_event", "tick", "epark", i=i)
    await s.close()
    after = Store(path)
    try:
        assert [e.detail["i"] for e in after.events(kinds=("tick",))] == list(range(100))
        assert after.request(number) is not None
    finally:
        after.close()


async def test_a_closed_store_says_so(tmp_path: Path) -> None:
    s = AsyncStore(tmp_path / "s.db")
    await s.close()
    await s.close()  # twice is fine
    with pytest.raises(StoreError, match="is closed"):
        await s.portal("epark")
    with pytest.raises(StoreError, match="is closed"):
        s.submit_write("add_event", "tick")


async def test_failed_fire_and_forget_writes_are_logged_rarely_and_without_data(
    store: AsyncStore, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    store.failures = FailureLog(every=60, monotonic=lambda: now[0])
    patient = {"name": "山田 花子", "phone": "090-1111-2222", "unserialisable": object()}
    with caplog.at_level(logging.ERROR, logger="portalguard.store"):
        for _ in range(3):
            store.submit_write("add_request", "epark", patient)
        await store.add_event("barrier")  # a write queued behind them: they ran
        now[0] = 61.0
        store.submit_write("add_request", "epark", patient)
        await store.add_event("barrier")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        f"store write add_request not saved: store {store.path}: TypeError (1 failed write(s) since the last report)",
        f"store write add_request not saved: store {store.path}: TypeError (3 failed write(s) since the last report)",
    ]
    assert "山田" not in caplog.text and "090" not in caplog.text
    assert await store.count_requests() == 0


async def test_store_errors_from_the_writer_reach_the_awaiting_caller(store: AsyncStore) -> None:
    with pytest.raises(StoreError, match=r"unknown status 'done'"):
        await store.set_request_status(1, "done")
