"""A real service (watchdog, orchestrator, web server, the portal simulator) whose wall clock is
stepped ±1 h mid-outage through the clock seam: every duration is measured on the steady clock, so
the outage is still judged in seconds and ``min_failover`` is neither cut short nor stretched.

(Before: a one-hour backward NTP step made a portal go DOWN after 3,610 s and a retry wait 3,604 s.)
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from failover.fakes.portal_simulator import PortalSimulator
from failover.service import Service
from failover.settings import Settings
from watchdog.clock import SteadyClock

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
PORTAL = "sakura"
MIN_FAILOVER = 8.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings(tmp_path: Path, sim: PortalSimulator) -> Settings:
    return Settings.model_validate(
        {
            "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
            "store": str(tmp_path / "pg.db"),
            "server": {"listen": f"127.0.0.1:{free_port()}", "metrics_listen": None},
            "actions": {"page": {"type": "fallback_page"}},
            "portals": {
                PORTAL: {
                    "endpoints": {"public": sim.endpoints_config()["public"]},
                    "interval": "1s",
                    "timeout": "800ms",
                    "down_after": {"failures": 3, "seconds": "3s"},
                    "up_after": {"successes": 2, "seconds": "1s"},
                    "book_url": sim.url("public"),
                    "actions": ["page"],
                    "min_failover": f"{MIN_FAILOVER:g}s",
                }
            },
        }
    )


async def until(predicate: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"not within {within}s: {what}"
        await asyncio.sleep(0.1)


async def test_wall_clock_steps_mid_outage_change_no_duration(tmp_path: Path) -> None:
    step = [0.0]  # what NTP does to the system clock
    clock = SteadyClock(wall=lambda: time.time() + step[0])
    async with PortalSimulator() as sim:
        svc = Service(settings(tmp_path, sim), clock)
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(svc.run(stop, ready))
        try:
            await asyncio.wait_for(ready.wait(), 30)

            def failover() -> bool:
                return svc.store.sync.portal(PORTAL).failover

            sim.set_mode("error500", endpoints=("public",))
            failing = time.monotonic()
            await asyncio.sleep(1.5)
            step[0] = -3600.0  # back an hour, two failures into the outage
            await until(failover, 20, "failover ON within seconds, not an hour")
            assert time.monotonic() - failing < 10

            switched_on = time.monotonic()
            step[0] = 0.0  # and forward an hour: min_failover must not pass at once
            sim.set_mode("healthy")
            await until(lambda: not failover(), 30, "failover OFF after min_failover")
            held = time.monotonic() - switched_on
            assert MIN_FAILOVER - 1 <= held < MIN_FAILOVER + 10, f"min_failover {MIN_FAILOVER}s, held {held:.1f}s"
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
