"""The CLI stamps overrides and maintenance windows on the running service's clock, not on a wall
clock NTP has just stepped: the service compares them with its steady clock, which follows a step
only at 1 %. The host's wall and monotonic clocks are fakes injected through the clock seams (the
service's ``SteadyClock`` and the CLI's ``App`` sources); the wall one is stepped back an hour.

Relative times (``--for 2h``) are durations on the service's clock; a wall time someone typed
(``--start 2027-01-15T17:30``) starts the window when the wall clock shows it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from click.testing import CliRunner

from failover.cli import main
from failover.cli.common import App
from failover.service import Service
from failover.settings import Settings
from watchdog.clock import SteadyClock

pytestmark = pytest.mark.anyio
PORTAL = "epark"
TOKYO = ZoneInfo("Asia/Tokyo")


class Host:
    """The host's two clocks, shared by the service and the CLI."""

    def __init__(self) -> None:
        self.wall_at = datetime(2027, 1, 15, 17, 0, tzinfo=TOKYO).timestamp()
        self.mono_at = 5000.0

    def wall(self) -> float:
        return self.wall_at

    def mono(self) -> float:
        return self.mono_at

    def advance(self, seconds: float) -> None:
        self.wall_at += seconds
        self.mono_at += seconds


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> Host:
    h = Host()
    monkeypatch.setattr(App, "wall", staticmethod(h.wall))
    monkeypatch.setattr(App, "monotonic", staticmethod(h.mono))
    return h


def config(tmp_path: Path) -> dict[str, Any]:
    return {
        "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
        "store": str(tmp_path / "pg.db"),
        "server": {"listen": "127.0.0.1:9", "metrics_listen": None},
        "portals": {
            PORTAL: {"endpoints": {"public": {"url": "http://127.0.0.1:9/"}}, "book_url": "http://127.0.0.1:9/"}
        },
    }


class Rig:
    def __init__(self, tmp_path: Path, host: Host) -> None:
        self.cfg = tmp_path / "portalguard.yaml"
        self.cfg.write_text(yaml.safe_dump(config(tmp_path)), encoding="utf-8")
        self.host = host
        self.clock = SteadyClock(host.wall, host.mono)
        self.svc = Service(Settings.model_validate(config(tmp_path)), self.clock)

    async def tick(self) -> None:
        """One orchestrator tick: the heartbeat and the clock's offset are published."""
        await self.svc.orchestrator.tick()
        await self.svc.store.flush()

    def cli(self, *args: str) -> str:
        r = CliRunner().invoke(main, ["-c", str(self.cfg), *args], catch_exceptions=False)
        assert r.exit_code == 0, r.output
        return r.output


@pytest.fixture
async def rig(tmp_path: Path, host: Host) -> AsyncIterator[Rig]:
    r = Rig(tmp_path, host)
    await r.svc.store.load(r.svc.settings.portals)
    await r.tick()
    yield r
    await r.svc.http.aclose()
    await r.svc.probe_client.aclose()
    await r.svc.store.close()


async def stepped_back_an_hour(rig: Rig) -> None:
    rig.host.wall_at -= 3600.0  # NTP steps the system clock
    rig.host.advance(2)
    await rig.tick()
    assert rig.clock() - rig.host.wall() == pytest.approx(3600, abs=1)  # the service has not slewed yet


async def test_an_override_for_2h_lasts_2h_on_the_service_clock_after_a_wall_clock_step(rig: Rig) -> None:
    await stepped_back_an_hour(rig)
    out = rig.cli("failover", "on", PORTAL, "--reason", "vendor outage", "--for", "2h")
    # Shown as wall time: 2 h from the wall clock's 16:00:02, as the service's clock counts them (it runs
    # 1 % slow while it slews back toward the wall clock: 2 h of it are 2 h 1 min 13 s on the wall).
    assert "until 2027-01-15 18:01:14 JST" in out
    expires = rig.svc.store.sync.override(PORTAL, rig.clock()).expires  # type: ignore[union-attr]
    assert expires == pytest.approx(rig.clock() + 7200, abs=0.1)  # not the wall clock's, an hour short
    shown = datetime(2027, 1, 15, 18, 1, 14, tzinfo=TOKYO).timestamp()
    rig.host.advance(shown - rig.host.wall())  # the wall clock shows the time the CLI printed
    assert rig.svc.store.sync.override(PORTAL, rig.clock()) is not None
    rig.host.advance(1)
    assert rig.svc.store.sync.override(PORTAL, rig.clock()) is None


async def test_a_window_typed_as_a_wall_time_starts_when_the_wall_clock_shows_it(rig: Rig) -> None:
    await stepped_back_an_hour(rig)  # the wall clock shows 16:00:02
    out = rig.cli("maintenance", "add", PORTAL, "--start", "2027-01-15T17:30", "--for", "1h", "--reason", "vendor")
    assert "2027-01-15 17:30:00 JST → 2027-01-15 18:30:36 JST" in out  # 1 h of the service's clock, as above
    start = datetime(2027, 1, 15, 17, 30, tzinfo=TOKYO).timestamp()
    rig.host.advance(start - rig.host.wall() - 1)  # one second before 17:30 on the wall clock
    assert rig.svc.store.sync.active_maintenance(PORTAL, rig.clock()) is None
    rig.host.advance(2)
    assert rig.svc.store.sync.active_maintenance(PORTAL, rig.clock()) is not None
    await rig.tick()
    assert "2027-01-15 17:30:00 JST" in rig.cli("maintenance", "list")  # listed as typed


async def test_status_sees_the_running_service_after_a_wall_clock_step(rig: Rig) -> None:
    rig.host.wall_at += 3600.0  # forward: the heartbeat looks an hour old to the wall clock
    rig.host.advance(1)
    await rig.tick()
    assert "service: running" in rig.cli("status")
    rig.host.advance(11)  # then the service stops ticking
    assert "service: NOT RUNNING" in rig.cli("status")


async def test_with_no_service_running_the_cli_uses_the_wall_clock(rig: Rig) -> None:
    await stepped_back_an_hour(rig)
    rig.host.advance(60)  # the service stopped: its next start begins at the wall clock
    rig.cli("failover", "on", PORTAL, "--reason", "vendor outage", "--for", "2h")
    expires = rig.svc.store.sync.override(PORTAL).expires  # type: ignore[union-attr]
    assert expires == pytest.approx(rig.host.wall() + 7200, abs=0.1)
