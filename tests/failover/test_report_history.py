"""What the service writes for the availability report: a kill -9 closed at the last heartbeat by the
next start, verdict changes with their time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from failover.report.history import runs
from tests.failover.test_orchestrator import PORTAL, Rig
from watchdog.monitor import PortalHealth
from watchdog.verdict import Health

pytestmark = pytest.mark.anyio


async def start(rig: Rig) -> None:
    """One run of the orchestrator that stops at once: what a start writes."""
    stop = asyncio.Event()
    stop.set()
    await rig.orch.run(stop)
    await rig.store.flush()


async def test_a_killed_run_is_closed_at_its_last_heartbeat_by_the_next_start(tmp_path: Any, clock: Any) -> None:
    rig = Rig(tmp_path, str(tmp_path / "pg.db"), clock)
    t0 = clock()
    rig.store.sync.add_event("service", None, state="started")
    rig.store.sync.set_value("heartbeat", t0 + 100)  # then kill -9: no "stopped"
    clock.advance(500)
    await start(rig)
    service = rig.store.sync.events(None, kinds=("service",))
    assert [(e.ts, e.detail) for e in service] == [
        (t0, {"state": "started"}),
        (t0 + 500, {"state": "stopped", "at": t0 + 100, "unclean": True}),
        (t0 + 500, {"state": "started"}),
    ]
    assert runs(service, heartbeat=t0 + 505, now=t0 + 505) == [(t0, t0 + 100), (t0 + 500, t0 + 505)]


async def test_a_clean_stop_is_not_closed_again(tmp_path: Any, clock: Any) -> None:
    rig = Rig(tmp_path, str(tmp_path / "pg.db"), clock)
    rig.store.sync.add_event("service", None, state="started")
    rig.store.sync.set_value("heartbeat", clock() + 100)
    rig.store.sync.add_event("service", None, state="stopped")
    clock.advance(500)
    await start(rig)
    states = [e.detail for e in rig.store.sync.events(None, kinds=("service",))]
    assert states == [{"state": "started"}, {"state": "stopped"}, {"state": "started"}]


async def test_a_verdict_change_is_written_with_when_it_changed(tmp_path: Any, clock: Any) -> None:
    rig = Rig(tmp_path, str(tmp_path / "pg.db"), clock)
    changed = clock() - 3  # the monitor saw it a moment before the event is written
    rig.orch.on_verdict(PortalHealth(PORTAL, Health.DOWN, changed, False), Health.DEGRADED)
    await rig.store.flush()
    [event] = rig.store.sync.events(PORTAL, kinds=("verdict",))
    assert event.detail == {"from": "degraded", "to": "down", "since": changed}
