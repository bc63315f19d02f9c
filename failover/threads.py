"""A component's own small thread pool for blocking client libraries (Apprise, google-ads).

A call that hangs past its deadline keeps its thread. In asyncio's shared default pool (6 threads on
2 cores) a few hung Apprise targets would starve the Google Ads calls, so each gets threads of its own.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class OwnThreads:
    def __init__(self, workers: int, name: str) -> None:
        self.workers = workers
        self.name = name
        self._pool: ThreadPoolExecutor | None = None  # made on first use: a CLI command may never call

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on one of these threads, awaited without blocking the loop."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=self.name)
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Let the threads go at shutdown; a call still running ends at its own deadline."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
