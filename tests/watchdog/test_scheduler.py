"""The scheduler, on virtual time (exact, repeatable, instant) and once for real against the
simulator: no drift, a hung job delays no other, the concurrency limit holds, no stacked ticks."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable

import httpx
import pytest

from failover.fakes.portal_simulator import PortalSimulator
from watchdog.probes import run_probe
from watchdog.result import FailureKind, ProbeResult
from watchdog.scheduler import ProbeJob, Scheduler, backstop
from watchdog.targets import Endpoint, ProbeSettings

VirtualTime = Callable[[Callable[[], Awaitable[object]]], object]


def job(key: str, interval: float = 10.0, timeout: float = 5.0) -> ProbeJob:
    return ProbeJob(key, "portal", key, "http", f"http://127.0.0.1/{key}", interval, timeout)


class FakeProbes:
    """``run_job`` that takes ``durations[key]`` seconds (default 0.1); records what happened."""

    def __init__(self, durations: dict[str, float] | None = None) -> None:
        self.durations = durations or {}
        self.starts: dict[str, list[float]] = defaultdict(list)
        self.results: dict[str, list[tuple[ProbeResult, float]]] = defaultdict(list)
        self.in_flight = 0
        self.max_in_flight = 0

    async def run_job(self, probe_job: ProbeJob) -> ProbeResult:
        loop = asyncio.get_running_loop()
        self.starts[probe_job.key].append(loop.time())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.durations.get(probe_job.key, 0.1))
        finally:
            self.in_flight -= 1
        return ProbeResult.success(self.durations.get(probe_job.key, 0.1), 200)

    def on_result(self, probe_job: ProbeJob, result: ProbeResult, lateness: float) -> None:
        self.results[probe_job.key].append((result, lateness))


async def run_for(scheduler: Scheduler, seconds: float) -> None:
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def make(jobs: list[ProbeJob], probes: FakeProbes, concurrency: int = 100, jitter: float = 0.0) -> Scheduler:
    return Scheduler(jobs, probes.run_job, probes.on_result, concurrency, jitter, random.Random(7))


def test_no_drift_over_a_day(virtual_time: VirtualTime):
    # Each probe takes 0.3 s: a sleep-after-probe loop would drift 0.3 s per tick (over 40 min a day).
    probes = FakeProbes({"a": 0.3})

    async def main() -> float:
        start = asyncio.get_running_loop().time()
        await run_for(make([job("a", interval=15.0)], probes), 86400.0 + 1)
        return start

    start = virtual_time(main)
    starts = probes.starts["a"]
    assert len(starts) == 86400 // 15 + 1
    assert starts[-1] - start == pytest.approx(86400.0, abs=1e-6)
    assert max(abs(t - (start + 15.0 * i)) for i, t in enumerate(starts)) < 1e-6
    assert all(lateness == pytest.approx(0, abs=1e-6) for _, lateness in probes.results["a"])


def test_a_hung_job_does_not_delay_the_others(virtual_time: VirtualTime):
    probes = FakeProbes({"hung": 3600.0})  # ignores its timeout: the scheduler's backstop stops it
    jobs = [job("hung", interval=10.0, timeout=5.0), job("b", interval=10.0), job("c", interval=10.0)]

    virtual_time(lambda: run_for(make(jobs, probes), 100.0 - 0.01))

    for key in ("b", "c"):
        assert len(probes.results[key]) == 10
        assert max(lateness for _, lateness in probes.results[key]) < 1e-6
    hung = [result for result, _ in probes.results["hung"]]
    assert len(hung) == 10
    assert all(r.error_kind is FailureKind.TIMEOUT for r in hung)
    assert hung[0].duration == pytest.approx(backstop(5.0))


def test_the_concurrency_limit_holds(virtual_time: VirtualTime):
    probes = FakeProbes({f"j{i}": 1.0 for i in range(20)})
    jobs = [job(f"j{i}", interval=60.0) for i in range(20)]

    virtual_time(lambda: run_for(make(jobs, probes, concurrency=3), 30.0))

    assert probes.max_in_flight == 3
    latenesses = sorted(lateness for results in probes.results.values() for _, lateness in results)
    assert len(latenesses) == 20
    # 20 one-second probes three at a time: the last group waits six seconds for a slot.
    assert latenesses[0] == pytest.approx(0) and latenesses[-1] == pytest.approx(6.0)


def test_a_tick_is_skipped_while_the_previous_probe_still_runs(virtual_time: VirtualTime):
    probes = FakeProbes({"slow": 2.5})
    scheduler = make([job("slow", interval=1.0, timeout=5.0)], probes)

    virtual_time(lambda: run_for(scheduler, 9.5))

    # Deadlines 0,1,2,...: the probe of 0 runs until 2.5, so 1 and 2 are skipped; then 3, 6, 9.
    assert probes.starts["slow"] == pytest.approx([0.0, 3.0, 6.0, 9.0])
    assert scheduler.skipped_ticks == 6


def test_first_runs_are_spread_by_jitter(virtual_time: VirtualTime):
    probes = FakeProbes()
    jobs = [job(f"j{i}", interval=100.0) for i in range(200)]

    virtual_time(lambda: run_for(make(jobs, probes, jitter=0.2), 99.0))

    firsts = sorted(starts[0] for starts in probes.starts.values())
    assert len(firsts) == 200
    assert firsts[0] >= 0 and firsts[-1] < 20.0
    assert firsts[-1] - firsts[0] > 15.0  # actually spread, not bunched


def test_a_crashing_job_is_logged_and_the_rest_go_on(virtual_time: VirtualTime, caplog: pytest.LogCaptureFixture):
    probes = FakeProbes()

    async def run_job(probe_job: ProbeJob) -> ProbeResult:
        if probe_job.key == "buggy":
            raise RuntimeError("a bug")
        return await probes.run_job(probe_job)

    jobs = [job("buggy"), job("fine")]
    scheduler = Scheduler(jobs, run_job, probes.on_result, 10, 0.0, random.Random(1))
    with caplog.at_level(logging.ERROR, logger="watchdog.scheduler"):
        virtual_time(lambda: run_for(scheduler, 25.0))
    assert len(probes.results["fine"]) == 3
    assert "probe job buggy failed unexpectedly" in caplog.text


def test_cancelling_run_cancels_probes_in_flight(virtual_time: VirtualTime):
    probes = FakeProbes({"long": 30.0})

    async def main() -> int:
        await run_for(make([job("long", interval=60.0, timeout=50.0)], probes), 1.0)
        return probes.in_flight

    assert virtual_time(main) == 0


def test_run_once_probes_every_job_within_the_limit(virtual_time: VirtualTime):
    probes = FakeProbes({f"j{i}": 1.0 for i in range(10)})
    jobs = [job(f"j{i}") for i in range(10)]

    results = virtual_time(lambda: make(jobs, probes, concurrency=4).run_once())

    assert [j.key for j, _ in results] == [j.key for j in jobs]  # type: ignore[union-attr]
    assert probes.max_in_flight == 4
    assert not probes.results  # run_once returns results instead of calling on_result


BAD = {
    "duplicate-key": ([job("a"), job("a")], 1, "two probe jobs have the key 'a'"),
    "zero-interval": ([job("a", interval=0)], 1, "must be positive"),
    "no-concurrency": ([job("a")], 0, "concurrency must be at least 1"),
}


@pytest.mark.parametrize(("jobs", "concurrency", "message"), BAD.values(), ids=BAD.keys())
def test_invalid_setups_are_refused(jobs: list[ProbeJob], concurrency: int, message: str):
    with pytest.raises(ValueError, match=message):
        Scheduler(jobs, FakeProbes().run_job, FakeProbes().on_result, concurrency, 0.0, random.Random())


@pytest.mark.anyio
async def test_real_probes_a_hung_endpoint_delays_no_other(
    sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings
):
    async with PortalSimulator() as hung_portal:
        hung_portal.set_mode("hang")
        jobs = [
            ProbeJob("hung/public", "hung", "public", "http", Endpoint(url=hung_portal.url()), 0.2, 0.15),
            ProbeJob("ok/public", "ok", "public", "http", Endpoint(url=sim.url()), 0.1, 0.09),
            ProbeJob("ok/admin", "ok", "admin", "http", Endpoint(url=sim.url("admin")), 0.1, 0.09),
        ]
        seen: dict[str, list[tuple[ProbeResult, float]]] = defaultdict(list)

        async def run_job(probe_job: ProbeJob) -> ProbeResult:
            return await run_probe(client, probe_job.kind, probe_job.target, probe_job.timeout, settings)

        def on_result(probe_job: ProbeJob, result: ProbeResult, lateness: float) -> None:
            seen[probe_job.key].append((result, lateness))

        scheduler = Scheduler(jobs, run_job, on_result, 10, 0.0, random.Random(1))
        task = asyncio.create_task(scheduler.run())
        await asyncio.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    for key in ("ok/public", "ok/admin"):
        assert 8 <= len(seen[key]) <= 11, seen[key]
        assert all(result.ok for result, _ in seen[key])
        assert max(lateness for _, lateness in seen[key]) < 0.05
    assert {result.error_kind for result, _ in seen["hung/public"]} == {FailureKind.TIMEOUT}
