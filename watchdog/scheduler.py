"""Runs probe jobs forever, each on its own interval, without drift and without one hung
endpoint delaying the others.

Design: one dispatcher keeps a heap of absolute deadlines (``loop.time()``) and launches one task
per due probe; a global semaphore bounds probes in flight. Deadlines advance by exactly one
interval (next = previous deadline + interval), so a probe's own duration or a late wake-up never
accumulates into drift. A job whose previous probe still runs when its deadline comes skips that
tick instead of stacking probes. Scales to thousands of jobs: the dispatcher costs one heap
operation per probe and at most one task exists per job.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from watchdog.result import FailureKind, ProbeResult
from watchdog.targets import Endpoint

log = logging.getLogger(__name__)

ProbeKind = Literal["http", "login", "canary"]


@dataclass(frozen=True, slots=True)
class ProbeJob:
    key: str  # unique: "portal/endpoint", "portal/endpoint/login" or "canary/N"
    portal: str | None  # None for canaries
    endpoint: str  # endpoint name ("public", "admin-login"), or the canary's index
    kind: ProbeKind
    target: Endpoint | str  # an Endpoint, or a URL for canaries
    interval: float  # seconds between deadlines
    timeout: float  # seconds a probe may take


RunJob = Callable[[ProbeJob], Awaitable[ProbeResult]]
OnResult = Callable[[ProbeJob, ProbeResult, float], None]


def backstop(timeout: float) -> float:
    """When the scheduler cancels a probe that ignores its own timeout.

    A little later than ``timeout``: a probe's own deadline should fire first, so its result
    (with the status it saw) wins over the scheduler's bare timeout.
    """
    return timeout * 1.1 + 0.05


class Scheduler:
    """Runs ``run_job`` for each job on its interval and hands results to ``on_result``.

    ``on_result(job, result, lateness)`` is called synchronously in the event loop and must be
    cheap; ``lateness`` is seconds between the deadline and the probe's actual start (including
    any wait for a concurrency slot). The first deadline of each job is spread over
    ``jitter * interval`` seconds, drawn from ``rng``, so probes do not all start at once.
    """

    def __init__(
        self,
        jobs: Iterable[ProbeJob],
        run_job: RunJob,
        on_result: OnResult,
        concurrency: int,
        jitter: float,
        rng: random.Random,
    ) -> None:
        self._jobs = list(jobs)
        _validate(self._jobs, concurrency, jitter)
        self._run_job = run_job
        self._on_result = on_result
        self._semaphore = asyncio.Semaphore(concurrency)
        self._jitter = jitter
        self._rng = rng
        self._running: set[int] = set()  # indexes of jobs with a probe launched and not finished
        self.skipped_ticks = 0  # deadlines skipped because the job's previous probe still ran

    @property
    def jobs(self) -> list[ProbeJob]:
        return list(self._jobs)

    async def run(self) -> None:
        """Probe every job on its interval until cancelled; cancelling also cancels probes in flight."""
        loop = asyncio.get_running_loop()
        heap = self._first_deadlines(loop.time())
        if not heap:
            await loop.create_future()  # nothing to probe: wait to be cancelled
        async with asyncio.TaskGroup() as tasks:
            while True:
                deadline, index = heap[0]
                delay = deadline - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                    continue
                heapq.heapreplace(heap, (deadline + self._jobs[index].interval, index))
                if index in self._running:
                    self.skipped_ticks += 1
                    continue
                self._running.add(index)
                tasks.create_task(self._tick(index, deadline))

    async def run_once(self) -> list[tuple[ProbeJob, ProbeResult]]:
        """Probe every job once, concurrently within the concurrency limit; results in job order.

        ``on_result`` is not called: the caller has the results. A job whose ``run_job`` raised
        (a bug, logged) has no entry.
        """

        async def one(job: ProbeJob) -> tuple[ProbeJob, ProbeResult] | None:
            try:
                async with self._semaphore:
                    return job, await self._bounded(job)
            except Exception:
                log.exception("probe job %s failed unexpectedly", job.key)
                return None

        outcomes = await asyncio.gather(*(one(job) for job in self._jobs))
        return [outcome for outcome in outcomes if outcome is not None]

    def _first_deadlines(self, now: float) -> list[tuple[float, int]]:
        heap = [
            (now + self._rng.uniform(0, self._jitter * job.interval), index) for index, job in enumerate(self._jobs)
        ]
        heapq.heapify(heap)
        return heap

    async def _tick(self, index: int, deadline: float) -> None:
        job = self._jobs[index]
        try:
            async with self._semaphore:
                lateness = asyncio.get_running_loop().time() - deadline
                result = await self._bounded(job)
            self._on_result(job, result, lateness)
        except Exception:
            # A bug in run_job or on_result must neither stop the scheduler nor the other jobs.
            log.exception("probe job %s failed unexpectedly", job.key)
        finally:
            self._running.discard(index)

    async def _bounded(self, job: ProbeJob) -> ProbeResult:
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            async with asyncio.timeout(backstop(job.timeout)) as scope:
                return await self._run_job(job)
        except TimeoutError:
            if not scope.expired():
                raise
            detail = f"probe exceeded its {job.timeout:g}s timeout"
            return ProbeResult.failure(FailureKind.TIMEOUT, loop.time() - start, detail)


def _validate(jobs: list[ProbeJob], concurrency: int, jitter: float) -> None:
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    if not 0 <= jitter <= 1:
        raise ValueError(f"jitter must be between 0 and 1, not {jitter}")
    seen: set[str] = set()
    for job in jobs:
        if job.key in seen:
            raise ValueError(f"two probe jobs have the key {job.key!r}")
        seen.add(job.key)
        if job.interval <= 0 or job.timeout <= 0:
            raise ValueError(f"probe job {job.key!r}: interval and timeout must be positive")
