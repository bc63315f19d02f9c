"""Probe throughput: portalguard's Scheduler + probe_http against prometheus-blackbox-exporter.

N endpoints (default 5,000) probed every INTERVAL seconds (default 10 s: 500 probes/s), each a
distinct URL path on portal simulators running in their own processes on 127.0.0.1 (so their CPU
is not counted as ours). Both sides do the same work per probe: a fresh connection (no
keep-alive), GET, status 200 required, the clinic name required, the maintenance text forbidden.

1. portalguard: the Scheduler launches probe_http for every endpoint, in this process.
   Measured: probes/s, CPU seconds per 1,000 probes (getrusage), peak RSS, p99 lateness.
2. blackbox_exporter (``/usr/bin/prometheus-blackbox-exporter``) probes the same targets, driven
   at the same rate by the same Scheduler calling its ``/probe`` endpoint over kept-alive
   connections (as Prometheus would). Measured: its CPU from /proc/PID/stat, its peak RSS.

Usage: ``python bench/probe_throughput.py [--endpoints 5000] [--interval 10] [--seconds 60]``.
Prints a Markdown table at the end (for the README).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

from watchdog.http_client import make_probe_client
from watchdog.probes.http import probe_http
from watchdog.result import FailureKind, ProbeResult
from watchdog.scheduler import ProbeJob, Scheduler
from watchdog.targets import Endpoint, Expect, ProbeSettings

BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
CLINIC = "さくら歯科"
MAINTENANCE = "メンテナンス中"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Measurement:
    name: str
    probes: int = 0
    failures: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    lateness: list[float] = field(default_factory=list)
    failure_kinds: dict[str, int] = field(default_factory=dict)
    driver_cpu: float = math.nan  # CPU seconds our process spent driving another prober

    @property
    def rate(self) -> float:
        return self.probes / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_1000(self) -> float:
        return 1000 * self.cpu_seconds / self.probes if self.probes else math.nan

    @property
    def lateness_p99(self) -> float:
        return percentile(self.lateness, 0.99)


class Recorder:
    """The Scheduler's ``on_result``: counts results only while the measurement window is open."""

    def __init__(self, measurement: Measurement) -> None:
        self.m = measurement
        self.recording = False

    def on_result(self, job: ProbeJob, result: ProbeResult, lateness: float) -> None:
        if not self.recording:
            return
        self.m.probes += 1
        self.m.lateness.append(lateness)
        if not result.ok:
            self.m.failures += 1
            kind = str(result.error_kind)
            self.m.failure_kinds[kind] = self.m.failure_kinds.get(kind, 0) + 1


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- simulators in their own processes ------------------------------------------------------------


@dataclass(frozen=True)
class Simulators:
    bases: list[str]  # base URL of each one's public endpoint
    pids: list[int]

    def cpu(self) -> float:
        return sum(process_cpu(pid) for pid in self.pids)


@contextmanager
def simulators(count: int) -> Iterator[Simulators]:
    """Start ``count`` simulator processes on 127.0.0.1 (their CPU is not ours)."""
    command = [sys.executable, "-m", "failover.fakes.portal_simulator", "--port", "0", "--clinic-name", CLINIC]
    root = Path(__file__).resolve().parent.parent
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=root) for _ in range(count)]
    try:
        bases = [json.loads(p.stdout.readline())["public_base"] for p in processes if p.stdout]
        if len(bases) != count:
            raise RuntimeError("a simulator did not start")
        yield Simulators(bases, [p.pid for p in processes])
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


# -- measuring a run ------------------------------------------------------------------------------


async def drive(
    jobs: list[ProbeJob],
    run_job: Callable[[ProbeJob], Awaitable[ProbeResult]],
    measurement: Measurement,
    args: argparse.Namespace,
    cpu: Callable[[], float],
) -> None:
    """Run the jobs on a Scheduler; measure ``cpu()`` and results over the window after warm-up."""
    recorder = Recorder(measurement)
    # jitter=1: first probes spread over the whole interval, so the load is steady, not bursts.
    scheduler = Scheduler(jobs, run_job, recorder.on_result, args.concurrency, 1.0, random.Random(1))
    task = asyncio.create_task(scheduler.run())
    try:
        await asyncio.sleep(args.warmup)
        recorder.recording = True
        cpu_start, start = cpu(), time.perf_counter()
        await asyncio.sleep(args.seconds)
        measurement.cpu_seconds = cpu() - cpu_start
        measurement.seconds = time.perf_counter() - start
        recorder.recording = False
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def process_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


async def bench_portalguard(targets: list[str], args: argparse.Namespace) -> Measurement:
    settings = ProbeSettings(concurrency=args.concurrency)
    expect = Expect(contains=[CLINIC], not_contains=[MAINTENANCE])
    jobs = [
        ProbeJob(
            f"bench/{i}", "bench", f"public-{i}", "http", Endpoint(url=url, expect=expect), args.interval, args.timeout
        )
        for i, url in enumerate(targets)
    ]
    measurement = Measurement("portalguard")
    async with make_probe_client(settings) as client:

        async def run_job(job: ProbeJob) -> ProbeResult:
            return await probe_http(client, job.target, job.timeout, settings)  # type: ignore[arg-type]

        await drive(jobs, run_job, measurement, args, own_cpu)
    measurement.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return measurement


# -- blackbox_exporter ----------------------------------------------------------------------------

BLACKBOX_CONFIG = """\
modules:
  page:
    prober: http
    timeout: {timeout}s
    http:
      # The http prober disables keep-alive itself: a fresh connection per probe, like ours.
      valid_status_codes: [200]
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      fail_if_body_not_matches_regexp: ["{clinic}"]
      fail_if_body_matches_regexp: ["{maintenance}"]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def blackbox_version() -> str:
    output = subprocess.run([BLACKBOX, "--version"], capture_output=True, text=True, timeout=10)
    first = (output.stdout or output.stderr).splitlines()[0]
    return first.split("version", 1)[1].split()[0] if "version" in first else "?"


async def wait_ready(url: str, seconds: float = 15.0) -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if (await client.get(url, timeout=1.0)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("blackbox_exporter did not become ready")


@contextmanager
def blackbox_exporter(args: argparse.Namespace) -> Iterator[tuple[str, int]]:
    """Run blackbox_exporter on 127.0.0.1 with a module like our probe; yield its URL and pid."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-blackbox-") as tmp:
        config = Path(tmp, "blackbox.yml")
        config.write_text(BLACKBOX_CONFIG.format(timeout=args.timeout, clinic=CLINIC, maintenance=MAINTENANCE))
        command = [
            BLACKBOX,
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=error",
        ]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield f"http://127.0.0.1:{port}", process.pid
        finally:
            process.terminate()
            process.wait(timeout=10)


async def bench_blackbox(base: str, pid: int, targets: list[str], args: argparse.Namespace) -> Measurement:
    await wait_ready(f"{base}/-/healthy")
    return await _drive_blackbox(base, pid, targets, args)


async def _drive_blackbox(base: str, pid: int, targets: list[str], args: argparse.Namespace) -> Measurement:
    jobs = [
        ProbeJob(f"bench/{i}", "bench", f"public-{i}", "http", url, args.interval, args.timeout + 1)
        for i, url in enumerate(targets)
    ]
    measurement = Measurement(f"blackbox_exporter {blackbox_version()}")
    scraper = Scraper(httpx.URL(base), args.concurrency)

    async def run_job(job: ProbeJob) -> ProbeResult:
        start = time.perf_counter()
        body = await scraper.get(f"/probe?module=page&target={quote(str(job.target), safe='')}")
        duration = time.perf_counter() - start
        if b"\nprobe_success 1" in body:
            return ProbeResult.success(duration, 200)
        return ProbeResult.failure(FailureKind.HTTP_STATUS, duration, "probe_success 0")

    driver_cpu = own_cpu()
    try:
        await drive(jobs, run_job, measurement, args, lambda: process_cpu(pid))
    finally:
        scraper.close()
    measurement.driver_cpu = own_cpu() - driver_cpu
    measurement.peak_rss_mb = process_peak_rss_mb(pid)
    return measurement


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Scraper:
    """A minimal HTTP/1.1 keep-alive client for blackbox_exporter's ``/probe``.

    The driver shares the machine with the prober it measures, so it must cost little CPU:
    httpx's pool spends milliseconds per request once it holds hundreds of connections.
    """

    def __init__(self, base: httpx.URL, connections: int) -> None:
        self._host, self._port = base.host, base.port or 80
        self._idle: asyncio.LifoQueue[Connection | None] = asyncio.LifoQueue()
        for _ in range(connections):
            self._idle.put_nowait(None)  # a slot; its connection opens on first use
        self._open: set[asyncio.StreamWriter] = set()

    async def get(self, path: str) -> bytes:
        connection = await self._idle.get()
        try:
            if connection is None:
                connection = await asyncio.open_connection(self._host, self._port)
                self._open.add(connection[1])
            reader, writer = connection
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n\r\n".encode())
            return await _read_body(reader)
        except BaseException:
            if connection is not None:  # state unknown (e.g. cancelled mid-response): start afresh
                connection[1].close()
                self._open.discard(connection[1])
                connection = None
            raise
        finally:
            self._idle.put_nowait(connection)

    def close(self) -> None:
        for writer in self._open:
            writer.close()


async def _read_body(reader: asyncio.StreamReader) -> bytes:
    head = (await reader.readuntil(b"\r\n\r\n")).lower()
    length = re.search(rb"\r\ncontent-length: *(\d+)", head)
    if length is not None:
        return await reader.readexactly(int(length.group(1)))
    chunks = []  # Go answers larger bodies chunked
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")  # the empty trailer section
    return b"".join(chunks)


# -- report ---------------------------------------------------------------------------------------


def report(args: argparse.Namespace, ours: Measurement, theirs: Measurement | None) -> str:
    def cell(m: Measurement | None, value: Callable[[Measurement], str]) -> str:
        return value(m) if m is not None else "not run"

    rows = [
        ("sustained probes/s", lambda m: f"{m.rate:,.1f}"),
        ("failed probes", lambda m: f"{m.failures:,} of {m.probes:,}"),
        ("CPU seconds per 1,000 probes", lambda m: f"{m.cpu_per_1000:.3f}"),
        ("peak RSS", lambda m: f"{m.peak_rss_mb:,.0f} MB"),
    ]
    target = args.endpoints / args.interval
    lines = [
        f"Probe throughput: {args.endpoints:,} endpoints every {args.interval:g} s (target {target:,.0f} probes/s), "
        f"{args.seconds:g} s measured after {args.warmup:g} s warm-up; {os.cpu_count()} CPUs "
        f"({platform.machine()}), Python {platform.python_version()}.",
        "",
        f"| | portalguard (Scheduler + probe_http) | {theirs.name if theirs else 'blackbox_exporter'} |",
        "|---|---:|---:|",
        *(f"| {label} | {value(ours)} | {cell(theirs, value)} |" for label, value in rows),
        f"| p99 scheduling lateness | {ours.lateness_p99 * 1000:.1f} ms | n/a (driven by our scheduler) |",
    ]
    if theirs is not None and theirs.probes:
        ratio = ours.cpu_per_1000 / theirs.cpu_per_1000
        lines += ["", f"CPU per probe, portalguard / blackbox_exporter: **{ratio:.2f}×**."]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, default=5000)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between probes of one endpoint")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured duration of each run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring starts")
    parser.add_argument("--timeout", type=float, default=5.0, help="probe timeout, seconds")
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--simulators", type=int, default=2, help="simulator processes serving the targets")
    parser.add_argument("--skip-blackbox", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with simulators(args.simulators) as sims:
        targets = [f"{sims.bases[i % len(sims.bases)]}/clinic/{i}" for i in range(args.endpoints)]
        print(f"portalguard: {args.endpoints:,} endpoints, {args.warmup + args.seconds:g} s ...", flush=True)
        sim_cpu = sims.cpu()
        ours = asyncio.run(bench_portalguard(targets, args))
        print(f"  {ours.rate:,.1f} probes/s, failures {ours.failure_kinds or 0}; ", end="")
        print(f"simulators used {sims.cpu() - sim_cpu:.1f} CPU s", flush=True)
        theirs = None
        if args.skip_blackbox:
            print("blackbox_exporter: skipped (--skip-blackbox)")
        elif not shutil.which(BLACKBOX):
            print(f"blackbox_exporter: {BLACKBOX} not installed (apt-get install prometheus-blackbox-exporter)")
        else:
            print(f"blackbox_exporter: same targets, {args.warmup + args.seconds:g} s ...", flush=True)
            sim_cpu = sims.cpu()
            with blackbox_exporter(args) as (base, pid):
                theirs = asyncio.run(bench_blackbox(base, pid, targets, args))
            print(f"  {theirs.rate:,.1f} probes/s, failures {theirs.failure_kinds or 0}; ", end="")
            print(f"simulators used {sims.cpu() - sim_cpu:.1f} CPU s; our driver {theirs.driver_cpu:.1f} CPU s")
    print()
    print(report(args, ours, theirs))


if __name__ == "__main__":
    main()
