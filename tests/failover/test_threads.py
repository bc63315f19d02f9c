"""OwnThreads: a component's own threads, made on first use, apart from asyncio's default pool."""

from __future__ import annotations

import asyncio
import threading

import pytest

from failover.threads import OwnThreads

pytestmark = pytest.mark.anyio


async def test_runs_on_its_own_named_threads_even_when_the_default_pool_is_blocked() -> None:
    release = threading.Event()
    loop = asyncio.get_running_loop()
    blockers = [loop.run_in_executor(None, release.wait) for _ in range(64)]  # every default thread busy
    threads = OwnThreads(2, "mine")
    try:
        name = await asyncio.wait_for(threads.run(lambda: threading.current_thread().name), 5)
        assert name.startswith("mine")
        assert await threads.run(lambda a, *, b: a + b, 2, b=3) == 5
    finally:
        release.set()
        await asyncio.gather(*blockers)
        threads.close()


async def test_made_on_first_use_and_closed_idempotently() -> None:
    threads = OwnThreads(1, "lazy")
    assert threads._pool is None  # a CLI command that never calls starts no thread
    threads.close()
    assert await threads.run(int, "7") == 7
    threads.close()
    threads.close()
    assert threads._pool is None
    assert await threads.run(int, "8") == 8, "usable again after close (made anew)"
    threads.close()
