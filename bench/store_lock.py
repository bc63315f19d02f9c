"""Another process holds the store's write lock: do patients and probes notice?

    .venv/bin/python bench/store_lock.py [--hold 5] [--seconds 5] [--endpoints 20]

A real ``portalguard run`` (its own process, 127.0.0.1 only, temporary store) watches one portal
with ``--endpoints`` endpoints on a portal simulator (own process), probed every second; its
failover is switched on from the CLI, so ``GET /book/PORTAL`` serves the fallback page. Then:

1. baseline: ``--seconds`` of closed-loop ``GET /book/PORTAL`` (a few keep-alive connections);
2. hold: a third process takes the store's write lock (``BEGIN IMMEDIATE`` on a plain sqlite3
   connection, as a backup or a stuck CLI would) for ``--hold`` seconds, same GET load meanwhile.

Per phase: GET p50/p99 (goal p99 < 100 ms) and probe scheduling lateness p99, from the service's
own ``portalguard_probe_schedule_lateness_seconds`` histogram (the difference of two /metrics
scrapes around the phase, read to the histogram's bucket bounds; goal: p99 within the 250 ms bucket). Prints a
Markdown table; exits 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from bench.fallback_load import Connection, Phase, get  # noqa: E402
from bench.probe_throughput import simulators  # noqa: E402

PORTAL = "bench"
TARGET_GET_P99_MS, TARGET_LATENESS_P99_MS = 100.0, 250.0
LATENESS = "portalguard_probe_schedule_lateness_seconds"
CLI = [sys.executable, "-c", "import sys; from failover.cli import main; sys.exit(main())"]
SETTLE = 2.0  # after a phase: probes delayed by it start (and are observed) within one interval


# -- the lock holder process ----------------------------------------------------------------------


def hold_lock(store: str, seconds: float) -> None:
    db = sqlite3.connect(store, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    print("held", flush=True)
    time.sleep(seconds)
    db.execute("COMMIT")
    db.close()


# -- the service ----------------------------------------------------------------------------------


def config(workdir: Path, base: str, endpoints: int, web: int, metrics: int) -> Path:
    doc = {
        "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
        "store": str(workdir / "bench.db"),
        "server": {"listen": f"127.0.0.1:{web}", "metrics_listen": f"127.0.0.1:{metrics}"},
        "actions": {"page": {"type": "fallback_page"}},
        "portals": {
            PORTAL: {
                "endpoints": {f"public-{i:03d}": {"url": f"{base}/clinic/{i}"} for i in range(endpoints)},
                "interval": "1s",
                "timeout": "800ms",
                "book_url": f"{base}/book",
                "actions": ["page"],
            }
        },
    }
    path = workdir / "portalguard.json"  # JSON is YAML
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(predicate, within: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not await predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"not within {within:g} s: {what}")
        await asyncio.sleep(0.1)


async def answers(url: str, status: int) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(url, timeout=1)).status_code == status
    except httpx.HTTPError:
        return False


# -- measuring ------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    gets: Phase
    lateness_p99: float  # seconds, a bucket bound (inf: beyond the last bucket)
    probes: int


def histogram(text: str) -> dict[float, float]:
    """The lateness histogram's cumulative buckets: upper bound -> count."""
    out: dict[float, float] = {}
    for le, count in re.findall(rf'^{LATENESS}_bucket{{le="([^"]+)"}} (\S+)$', text, re.M):
        out[float(le)] = float(count)
    return out


def p99_bound(before: dict[float, float], after: dict[float, float]) -> tuple[float, int]:
    """The smallest bucket bound under which 99 % of the probes started between the scrapes."""
    delta = {le: after[le] - before.get(le, 0.0) for le in sorted(after)}
    total = delta.get(float("inf"), 0.0)
    for le, count in delta.items():
        if total and count >= 0.99 * total:
            return le, int(total)
    return float("nan"), int(total)


async def scrape(metrics_url: str) -> dict[float, float]:
    async with httpx.AsyncClient() as client:
        return histogram((await client.get(metrics_url, timeout=30)).text)


async def load(phase: Phase, port: int, connections: int, seconds: float) -> None:
    """``connections`` closed loops of GET /book/PORTAL for ``seconds``."""
    stop = time.perf_counter() + seconds

    async def loop() -> None:
        conn = await Connection.open(port)
        try:
            while (start := time.perf_counter()) < stop:
                status, _, _ = await conn.request(get(f"/book/{PORTAL}"))
                phase.latencies.append(time.perf_counter() - start)
                phase.statuses[status] = phase.statuses.get(status, 0) + 1
        finally:
            conn.close()

    await asyncio.gather(*(loop() for _ in range(connections)))
    phase.seconds = seconds


async def measure(name: str, port: int, metrics_url: str, args: argparse.Namespace, store: str | None) -> Result:
    """One phase; with ``store``, a separate process holds its write lock throughout."""
    before = await scrape(metrics_url)
    holder = None
    if store is not None:
        holder = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--hold-lock", store, str(args.hold), stdout=subprocess.PIPE
        )
        assert holder.stdout is not None and (await holder.stdout.readline()).strip() == b"held"
    gets = Phase(name)
    await load(gets, port, args.connections, args.hold if store else args.seconds)
    if holder is not None:
        await asyncio.wait_for(holder.wait(), 60)
    await asyncio.sleep(SETTLE)
    bound, probes = p99_bound(before, await scrape(metrics_url))
    return Result(name, gets, bound, probes)


def table(results: list[Result]) -> str:
    lines = [
        "| phase | GETs | errors | GET p50 ms | GET p99 ms | GET max ms | probes | lateness p99 | goals met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        g = r.gets
        met = met_goals(r)
        worst = max(g.latencies, default=0.0) * 1000
        lateness = "> 5 s" if r.lateness_p99 == float("inf") else f"≤ {r.lateness_p99 * 1000:g} ms"
        lines.append(
            f"| {r.name} | {len(g.latencies):,} | {g.errors} | {g.percentile(0.50):.1f} | {g.percentile(0.99):.1f} | "
            f"{worst:.0f} | {r.probes} | {lateness} | {'yes' if met else '**no**'} |"
        )
    lines += [
        "",
        f"Goals: GET p99 < {TARGET_GET_P99_MS:.0f} ms, probe scheduling lateness p99 ≤ {TARGET_LATENESS_P99_MS:.0f} ms "
        "(read to the histogram's bucket bounds: 1, 10, 50, 100, 250, 500, 1000, 5000 ms).",
    ]
    return "\n".join(lines)


def met_goals(r: Result) -> bool:
    return (
        r.gets.errors == 0
        and r.gets.percentile(0.99) < TARGET_GET_P99_MS
        and r.lateness_p99 * 1000 <= TARGET_LATENESS_P99_MS  # a bucket bound: "≤ 250 ms" is within the goal
    )


# -- main -----------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace, workdir: Path, base: str) -> list[Result]:
    web, metrics = free_port(), free_port()
    cfg = config(workdir, base, args.endpoints, web, metrics)
    log = (workdir / "run.log").open("wb")
    service = await asyncio.create_subprocess_exec(
        *CLI, "-c", str(cfg), "run", cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log
    )
    try:
        healthz = f"http://127.0.0.1:{web}/healthz"
        await until(lambda: answers(healthz, 200), 60, f"portalguard run answers /healthz (its log: {log.name})")
        override = await asyncio.create_subprocess_exec(
            *CLI, "-c", str(cfg), "failover", "on", PORTAL, "--reason", "bench", cwd=ROOT, stdout=subprocess.DEVNULL
        )
        if await override.wait() != 0:
            raise SystemExit("portalguard failover on failed")
        book = f"http://127.0.0.1:{web}/book/{PORTAL}"
        await until(lambda: answers(book, 200), 30, "the fallback page is served")
        await asyncio.sleep(2)  # every endpoint probed a few times: the scheduler is in its stride
        metrics_url = f"http://127.0.0.1:{metrics}/metrics"
        baseline = await measure("no lock held", web, metrics_url, args, None)
        held = await measure(f"write lock held {args.hold:g} s", web, metrics_url, args, str(workdir / "bench.db"))
        return [baseline, held]
    finally:
        service.terminate()
        await asyncio.wait_for(service.wait(), 30)
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hold", type=float, default=5.0, help="seconds the other process holds the write lock")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of the baseline phase (no lock held)")
    parser.add_argument("--endpoints", type=int, default=20, help="endpoints probed every second")
    parser.add_argument("--connections", type=int, default=4, help="concurrent GET connections")
    parser.add_argument("--hold-lock", nargs=2, metavar=("STORE", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hold_lock:
        hold_lock(args.hold_lock[0], float(args.hold_lock[1]))
        return 0
    with tempfile.TemporaryDirectory(prefix="portalguard-bench-") as tmp, simulators(1) as sims:
        results = asyncio.run(bench(args, Path(tmp), sims.bases[0]))
    print(f"\nstore_lock: {args.endpoints} endpoints probed every 1 s, {args.connections} GET connections\n")
    print(table(results))
    return 0 if all(met_goals(r) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
