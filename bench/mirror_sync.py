"""How long does one sync of the appointment mirror take, and what does it cost?

    .venv/bin/python bench/mirror_sync.py [--days 14] [--per-day 80] [--page-size 20] [--runs 5]

A portal simulator (its own process, 127.0.0.1 only: its CPU is not ours) serves ``--days`` days of
``--per-day`` appointments behind its staff login, ``--page-size`` rows per page (80 a day on 20 a
page: four pages a day, 56 page fetches and a login per sync). This process runs the mirror as the
service does: the ``admin_html`` source through a fresh logged-in session, selectolax on every page,
reconciliation and sealed writes (AES-GCM) into a temporary SQLite store.

Measured per sync: wall time, this process's CPU time, appointments per second; once: peak RSS.
The first sync adds every appointment; the following ``--runs`` change nothing (the steady state a
service lives in every 10 minutes) — both are reported. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from failover.crypto import DataKey  # noqa: E402
from failover.fakes.portal_simulator import RESERVATIONS_PATH  # noqa: E402
from failover.mirror.config import MirrorSettings  # noqa: E402
from failover.mirror.sources import read_days  # noqa: E402
from failover.mirror.sync import MirrorJob, MirrorSync, SyncReport  # noqa: E402
from failover.store import AsyncStore  # noqa: E402
from watchdog.http_client import make_probe_client  # noqa: E402
from watchdog.targets import Endpoint, ProbeSettings  # noqa: E402

TZ = ZoneInfo("Asia/Tokyo")


@dataclass(frozen=True, slots=True)
class Run:
    wall: float
    cpu: float
    appointments: int
    added: int


@contextmanager
def simulator(page_size: int) -> Iterator[dict[str, str]]:
    command = [sys.executable, "-m", "failover.fakes.portal_simulator", "--page-size", str(page_size)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert process.stdout is not None
        yield json.loads(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(timeout=10)


def seed(control: str, days: int, per_day: int) -> int:
    body = json.dumps({"days": days, "per_day": per_day, "seed": 1}).encode()
    request = urllib.request.Request(f"{control}/_sim/appointments/seed", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:  # loopback only: the simulator's control port
        answer.read()
    return days * per_day


def mirror_settings(sim: dict[str, str]) -> MirrorSettings:
    return MirrorSettings.model_validate(
        {
            "source": {
                "type": "admin_html",
                "url": f"{sim['admin_base']}{RESERVATIONS_PATH}?date={{date}}",
                "next": "a.next",
                "row": "table.list tbody tr",
                "fields": {
                    "id": "@data-reservation-id",
                    "date": "td.date",
                    "time": "td.time",
                    "name": "td.name",
                    "phone": "td.tel",
                    "menu": "td.menu",
                    "status": "td.status",
                },
                "cancelled_contains": ["キャンセル"],
                "empty_contains": ["予約はありません"],
            }
        }
    )


def admin_endpoint(sim: dict[str, str]) -> Endpoint:
    login = {"username": sim["username"], "password": "sakura-pass", "success_contains": ["ログアウト"]}
    expect = {"not_contains": ["メンテナンス中"]}
    return Endpoint.model_validate({"url": sim["admin"], "login": login, "expect": expect})


async def measure(args: argparse.Namespace, sim: dict[str, str], directory: Path) -> tuple[Run, list[Run]]:
    settings = ProbeSettings()
    source, endpoints = mirror_settings(sim).source, {"admin": admin_endpoint(sim)}
    store = AsyncStore(directory / "bench.db", data_key=DataKey.generate()[1])
    client = make_probe_client(settings)

    def read(days: Sequence[date]):  # type: ignore[no-untyped-def]
        return read_days(source, endpoints, client, settings, 30.0, days, TZ)

    sync = MirrorSync({"bench": MirrorJob("bench", 600, args.days, "admin_html", read)}, store, TZ, time.time)
    try:
        first = await one(sync)
        steady = [await one(sync) for _ in range(args.runs)]
    finally:
        await client.aclose()
        await store.close()
    return first, steady


async def one(sync: MirrorSync) -> Run:
    cpu, wall = time.process_time(), time.perf_counter()
    report: SyncReport = await sync.sync("bench")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if not report.ok:
        raise SystemExit(f"a sync failed: {report.first_failure}")
    listed = sum(len(c.added) for c in report.changes)
    rows = await sync.store.appointments("bench", report.changes[0].day, report.changes[-1].day)  # type: ignore[attr-defined]
    return Run(wall, cpu, len(rows), listed)


def table(first: Run, steady: list[Run], rss_mib: float) -> str:
    def row(name: str, runs: list[Run]) -> str:
        wall = statistics.median(r.wall for r in runs)
        cpu = statistics.median(r.cpu for r in runs)
        count = runs[0].appointments
        return f"| {name} | {count:,} | {wall:.2f} s | {cpu:.2f} s | {count / wall:,.0f} |"

    return "\n".join(
        [
            "| sync | appointments | wall (median) | CPU (median) | appointments/s |",
            "|---|---:|---:|---:|---:|",
            row("first (every appointment added)", [first]),
            row(f"steady (nothing changed, {len(steady)} runs)", steady),
            "",
            f"peak RSS of the syncing process: {rss_mib:.0f} MiB",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--per-day", type=int, default=80)
    parser.add_argument("--page-size", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5, help="steady-state syncs after the first")
    args = parser.parse_args(argv)
    with simulator(args.page_size) as sim, tempfile.TemporaryDirectory(prefix="pg-bench-mirror-") as tmp:
        seed(sim["control"], args.days, args.per_day)
        first, steady = asyncio.run(measure(args, sim, Path(tmp)))
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    pages = args.days * -(-args.per_day // args.page_size)
    print(
        f"mirror sync: {args.days} days x {args.per_day} appointments, {args.page_size} a page "
        f"({pages} page fetches + a login per sync), admin_html, sealed store"
    )
    print(table(first, steady, rss_mib))
    return 0


if __name__ == "__main__":
    sys.exit(main())
