"""Benchmark: how fast portalguard fails over and back, and that it never fails over on noise.

Part 1 (detection): N portals, each on its own portal simulator, each switched into a failure mode
(cycling through every mode), all at once, for --rounds rounds. Per run it measures
  - detect→ON: first failing probe response (for a hung portal: its timeout) → every action
    observed ON (page, Google Ads via the real client against the fake API, staff notification via
    Apprise, webhook);
  - recover→OFF: first good probe result after the fix → every action observed OFF.
The detection floor with interval 5s and down_after {failures: 3, seconds: 10s} is 10 s (the third
failing probe comes two intervals after the first); the goal is ON within floor + 2 s at p95.
DOWN also waits for a canary probe started during the failures to answer: canaries every 5 s (at
most down_after.seconds, as the config requires) keep that inside the floor.

Part 2 (noise): for --flap-minutes, portals that flap faster than the thresholds, blip, and lose
their canaries (our own network) together with the portal: zero failovers is the goal.

Everything runs on 127.0.0.1, in this process (the service is the real Service).

    .venv/bin/python bench/time_to_failover.py [--rounds 2] [--portals 10] [--flap-minutes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from failover.fakes.google_ads_server import FakeGoogleAds
from failover.fakes.portal_simulator import CANARY_PATH, PortalSimulator
from failover.fakes.receivers import JsonReceiver
from failover.service import Service
from failover.settings import Settings
from failover.store import Store

MODES = ("error500", "hang", "refuse", "maintenance", "redirect", "login_rejected", "slow", "trickle")
INTERVAL, TIMEOUT, FAILURES, SECONDS, SUCCESSES, UP_SECONDS = 5.0, 4.0, 3, 10.0, 3, 10.0
EXPLAIN = False  # --explain: print the event log of runs slower than floor + 2 s
DETECT_FLOOR = max((FAILURES - 1) * INTERVAL, SECONDS)
RECOVER_FLOOR = max((SUCCESSES - 1) * INTERVAL, UP_SECONDS)


@dataclass
class Run:
    portal: str
    mode: str
    detect_to_on: float
    recover_to_off: float


def settings(
    tmp: Path,
    sims: dict[str, PortalSimulator],
    canary: PortalSimulator,
    ads: FakeGoogleAds,
    staff: JsonReceiver,
    hook: JsonReceiver,
) -> Settings:
    actions: dict[str, Any] = {
        "page": {"type": "fallback_page"},
        "staff": {"type": "notify", "urls": [staff.url("/staff", scheme="json")]},
        "hook": {"type": "webhook", "url": hook.url("/hook"), "secret": "bench-hmac-key-0123456789"},
    }
    portals: dict[str, Any] = {}
    for i, (pid, sim) in enumerate(sims.items()):
        actions[f"ads{i}"] = ads.action_config(campaign_ids=[str(1000 + i)])
        portals[pid] = {
            "endpoints": sim.endpoints_config(),
            "interval": f"{INTERVAL:g}s",
            "timeout": f"{TIMEOUT:g}s",
            "trigger": "any",
            "down_after": {"failures": FAILURES, "seconds": SECONDS},
            "up_after": {"successes": SUCCESSES, "seconds": UP_SECONDS},
            "book_url": sim.url("public"),
            "actions": ["page", f"ads{i}", "staff", "hook"],
            "min_failover": "0s",
        }
    return Settings.model_validate(
        {
            "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
            # Two canaries on their own simulator (both ports), so the bench can take "the network" down.
            "canaries": [canary.url("public", CANARY_PATH), canary.url("admin", CANARY_PATH)],
            "canary_interval": f"{INTERVAL:g}s",
            "store": str(tmp / "bench.db"),
            "server": {"listen": f"127.0.0.1:{_free_port()}", "metrics_listen": None},
            "actions": actions,
            "portals": portals,
        }
    )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def converged(store: Store, pid: str, want: str, bound: float) -> float:
    """When every action of ``pid`` was last recorded as observed ``want`` (store time)."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        rows = store.actions(pid)
        if len(rows) == 4 and all(r.observed == want and r.desired == want for r in rows):
            return max(r.updated or 0.0 for r in rows)
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{pid}: actions not all {want} within {bound}s")


def verdict_time(store: Store, pid: str, to: str, after: float) -> float:
    """When the first failing (``degraded``) or good (``recovering``) probe response came in."""
    events = [e for e in store.events(pid, since=after, kinds=("verdict",)) if e.detail.get("to") == to]
    if not events:
        raise RuntimeError(f"{pid}: no verdict {to} after {after}")
    return events[0].ts


async def one_run(store: Store, pid: str, sim: PortalSimulator, mode: str) -> Run:
    started = time.time()
    sim.set_mode(mode, endpoints=("admin",) if mode == "login_rejected" else ("public",), delay=TIMEOUT + 2)
    on = await converged(store, pid, "on", 60)
    first_fail = verdict_time(store, pid, "degraded", started)
    fixed = time.time()
    sim.set_mode("healthy")
    off = await converged(store, pid, "off", 60)
    first_ok = verdict_time(store, pid, "recovering", fixed)
    run = Run(pid, mode, on - first_fail, off - first_ok)
    if EXPLAIN and run.detect_to_on > DETECT_FLOOR + 2:
        for e in store.events(pid, since=started):
            print(f"  {pid} {mode} +{e.ts - first_fail:6.2f}s {e.kind} {e.action or ''} {e.detail}")
    return run


async def detection(rounds: int, svc: Service, sims: dict[str, PortalSimulator]) -> list[Run]:
    runs: list[Run] = []
    for r in range(rounds):
        modes = [MODES[(r * len(sims) + i) % len(MODES)] for i in range(len(sims))]
        batch = await asyncio.gather(
            *(one_run(svc.store.sync, pid, sim, m) for (pid, sim), m in zip(sims.items(), modes, strict=True))
        )
        runs += batch
        print(f"round {r + 1}/{rounds}: " + ", ".join(f"{x.mode} {x.detect_to_on:.1f}s" for x in batch), flush=True)
    return runs


async def noise(minutes: float, svc: Service, sims: dict[str, PortalSimulator], canary: PortalSimulator) -> int:
    """Flapping, blips and canary loss for ``minutes``; returns the failovers started meanwhile."""
    started = time.time()
    end = time.monotonic() + minutes * 60
    flappers = list(sims.values())
    scripts = [_flap(flappers[0::3], end), _blip(flappers[1::3], end), _canary_loss(flappers[2::3], canary, end)]
    await asyncio.gather(*scripts)
    return sum(1 for e in svc.store.sync.events(None, since=started, kinds=("failover",)) if e.detail.get("to") == "on")


async def _flap(sims: list[PortalSimulator], end: float) -> None:
    # 9 s failing holds at most 2 probes at a 5 s interval (3 would span 10 s); 6 s healthy holds >= 1.
    while time.monotonic() < end:
        _all(sims, "error500")
        await asyncio.sleep(9)
        _all(sims, "healthy")
        await asyncio.sleep(6)


async def _blip(sims: list[PortalSimulator], end: float) -> None:
    while time.monotonic() < end:
        _all(sims, "hang")
        await asyncio.sleep(4)  # at most one probe
        _all(sims, "healthy")
        await asyncio.sleep(26)


async def _canary_loss(sims: list[PortalSimulator], canary: PortalSimulator, end: float) -> None:
    # Our own network "down": the canaries and the portal fail together for a minute.
    while time.monotonic() < end:
        _all([canary, *sims], "refuse")
        await asyncio.sleep(60)
        _all([canary, *sims], "healthy")
        await asyncio.sleep(60)


def _all(sims: list[PortalSimulator], mode: str) -> None:
    for sim in sims:
        sim.set_mode(mode)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]


def report(runs: list[Run], failovers: int | None, minutes: float) -> str:
    lines = ["| mode | runs | detect→ON p50 | max | recover→OFF p50 | max |", "|---|---|---|---|---|---|"]
    for mode in MODES:
        rs = [r for r in runs if r.mode == mode]
        if rs:
            d, o = [r.detect_to_on for r in rs], [r.recover_to_off for r in rs]
            lines.append(
                f"| {mode} | {len(rs)} | {statistics.median(d):.2f} s | {max(d):.2f} s | "
                f"{statistics.median(o):.2f} s | {max(o):.2f} s |"
            )
    d_all, o_all = [r.detect_to_on for r in runs], [r.recover_to_off for r in runs]
    lines += [
        "",
        f"All {len(runs)} runs: detect→ON p95 {p95(d_all):.2f} s (floor {DETECT_FLOOR:.0f} s, goal ≤ "
        f"{DETECT_FLOOR + 2:.0f} s: {'met' if p95(d_all) <= DETECT_FLOOR + 2 else 'MISSED'}); "
        f"recover→OFF p95 {p95(o_all):.2f} s (floor {RECOVER_FLOOR:.0f} s).",
    ]
    if failovers is not None:
        lines.append(
            f"Noise script ({minutes:g} min of flapping, blips, canary loss): {failovers} failovers "
            f"(goal 0: {'met' if failovers == 0 else 'MISSED'})."
        )
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeGoogleAds(campaigns={str(1000 + i): ("PAUSED", 3000) for i in range(args.portals)}) as ads,
    ):
        async with contextlib.AsyncExitStack() as stack:
            sims = {f"p{i:02d}": await stack.enter_async_context(PortalSimulator()) for i in range(args.portals)}
            canary = await stack.enter_async_context(PortalSimulator())
            staff = await stack.enter_async_context(JsonReceiver())
            hook = await stack.enter_async_context(JsonReceiver())
            cfg = settings(Path(tmp), sims, canary, ads, staff, hook)
            svc = Service(cfg)
            stop, ready = asyncio.Event(), asyncio.Event()
            task = asyncio.create_task(svc.run(stop, ready))
            await ready.wait()
            for pid in sims:
                await converged(svc.store.sync, pid, "off", 60)  # what is in the file, as `status` sees it
            runs = await detection(args.rounds, svc, sims)
            failovers = await noise(args.flap_minutes, svc, sims, canary) if args.flap_minutes > 0 else None
            stop.set()
            await task
    print()
    print(report(runs, failovers, args.flap_minutes))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--portals", type=int, default=10)
    parser.add_argument("--flap-minutes", type=float, default=10.0)
    parser.add_argument("--explain", action="store_true", help="print the events of runs slower than the goal")
    arguments = parser.parse_args()
    EXPLAIN = arguments.explain
    asyncio.run(main(arguments))
