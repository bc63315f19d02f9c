"""``portalguard run`` as a real process against the real fakes: outage, kill -9, restart, recovery.

Parts: the portal simulator, the fake Google Ads API (real google-ads client inside the service),
Apprise to a local JSON receiver, a webhook receiver; the CLI in its own processes. All on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from failover.fakes.google_ads_server import CLIENT_SECRET, DEVELOPER_TOKEN, REFRESH_TOKEN, FakeGoogleAds
from failover.fakes.portal_simulator import CANARY_PATH, PortalSimulator
from failover.fakes.receivers import JsonReceiver

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PORTAL = "sakura"
BIN = Path(sys.executable).parent / "portalguard"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(predicate: Callable[[], Any], within: float, what: str, every: float = 0.1) -> Any:
    """Poll ``predicate`` until truthy (returns it) or fail after ``within`` seconds saying ``what``."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(every)


class Rig:
    def __init__(self, tmp: Path, sim: PortalSimulator, ads: FakeGoogleAds, staff: JsonReceiver, hook: JsonReceiver):
        self.tmp, self.sim, self.ads, self.staff, self.hook = tmp, sim, ads, staff, hook
        self.web = f"127.0.0.1:{free_port()}"
        self.config = tmp / "portalguard.yaml"
        self.proc: asyncio.subprocess.Process | None = None
        self.log = (tmp / "run.log").open("ab")  # the service's stderr, for a failing test's reader
        doc = {
            "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
            "canaries": [sim.control_url + CANARY_PATH],
            "canary_interval": "1s",
            "store": str(tmp / "pg.db"),
            "server": {"listen": self.web, "metrics_listen": f"127.0.0.1:{free_port()}"},
            "actions": {
                "page": {"type": "fallback_page"},
                "ads": ads.action_config(),
                "staff": {"type": "notify", "urls": [staff.url("/staff", scheme="json")]},
                "ivr": {"type": "webhook", "url": hook.url("/ivr"), "secret": "hook-secret-0123456789"},
            },
            "portals": {
                PORTAL: {
                    "endpoints": sim.endpoints_config(),
                    "interval": "1s",
                    "timeout": "800ms",
                    "down_after": {"failures": 2, "seconds": "1s"},
                    "up_after": {"successes": 2, "seconds": "1s"},
                    "book_url": sim.url("public"),
                    "actions": ["page", "ads", "staff", "ivr"],
                    "min_failover": "0s",
                }
            },
        }
        self.config.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            str(BIN),
            "-c",
            str(self.config),
            "run",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self.log,
        )
        await until(self._healthy, 30, "portalguard run answers /healthz")

    async def _healthy(self) -> bool:
        try:
            async with httpx.AsyncClient() as c:
                return (await c.get(f"http://{self.web}/healthz", timeout=1)).status_code == 200
        except httpx.HTTPError:
            return False

    async def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def status(self) -> dict[str, Any]:
        out = await self.cli("status", "--json")
        return json.loads(out)["portals"][PORTAL]

    async def cli(self, *args: str) -> str:
        p = await asyncio.create_subprocess_exec(
            str(BIN), "-c", str(self.config), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(p.communicate(), 30)
        assert p.returncode == 0, err.decode()
        return out.decode()

    async def converged(self, failover: bool) -> bool:
        s = await self.status()
        want = "on" if failover else "off"
        return s["failover"] is failover and all(a["observed"] == want for a in s["actions"].values())

    def secrets(self) -> list[str]:
        """Every secret the config carries: none may show in the service's log or metrics."""
        login = self.sim.endpoints_config()["admin"]["login"]  # type: ignore[index]
        return [login["password"], "hook-secret-0123456789", DEVELOPER_TOKEN, CLIENT_SECRET, REFRESH_TOKEN]

    def log_text(self) -> str:
        self.log.flush()
        return (self.tmp / "run.log").read_text(encoding="utf-8", errors="replace")

    def staff_topics(self) -> list[str]:
        return [r.json().get("title", "") for r in self.staff.requests]

    def hook_states(self) -> list[str]:
        return [r.json()["state"] for r in self.hook.requests]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    with FakeGoogleAds(campaigns={"111": ("PAUSED", 3000)}) as ads:
        async with PortalSimulator() as sim, JsonReceiver() as staff, JsonReceiver() as hook:
            r = Rig(tmp_path, sim, ads, staff, hook)
            try:
                yield r
            finally:
                if r.proc and r.proc.returncode is None:
                    r.proc.send_signal(signal.SIGTERM)
                    await asyncio.wait_for(r.proc.wait(), 30)


async def test_outage_kill9_restart_recovery(rig: Rig) -> None:
    await rig.start()
    await until(lambda: rig.converged(False), 30, "healthy portal converged OFF")
    async with httpx.AsyncClient() as web:
        book = await web.get(f"http://{rig.web}/book/{PORTAL}", follow_redirects=False)
        assert book.status_code == 302 and book.headers["location"] == rig.sim.url("public")

        rig.sim.set_mode("error500", endpoints=("public",))
        await until(lambda: rig.converged(True), 30, "all actions ON after the portal failed")
        assert rig.ads.status("111") == "ENABLED"
        assert (await web.get(f"http://{rig.web}/book/{PORTAL}")).status_code == 200
        await rig.staff.wait_for(1, 10)
        await rig.hook.wait_for(1, 10)

        # kill -9 in failover, then restart: nothing is repeated, nothing forgotten.
        await rig.kill9()
        await rig.start()
        heartbeat = json.loads(await rig.cli("status", "--json"))["service"]["heartbeat"]
        await until(lambda: _heartbeat_after(rig, heartbeat), 10, "the restarted service ticks")
        await asyncio.sleep(2)  # a few ticks of the restarted service: nothing may be re-sent
        assert len(rig.staff.requests) == 1, rig.staff_topics()
        assert rig.hook_states() == ["failover"]
        assert rig.ads.status("111") == "ENABLED"
        assert (await rig.status())["failover"] is True

        rig.sim.set_mode("healthy")
        await until(lambda: rig.converged(False), 30, "all actions OFF after recovery")
        assert rig.ads.status("111") == "PAUSED"
        book = await web.get(f"http://{rig.web}/book/{PORTAL}", follow_redirects=False)
        assert book.status_code == 302
        await rig.staff.wait_for(2, 10)
        await rig.hook.wait_for(2, 10)
        assert rig.hook_states() == ["failover", "recovered"]

        # Restart while healthy: no "recovered" at startup, no message at all.
        await rig.kill9()
        await rig.start()
        await asyncio.sleep(3)
        assert len(rig.staff.requests) == 2 and len(rig.hook.requests) == 2
    report = await rig.cli("incident", "report", "--portal", PORTAL)
    assert "First failed probe" in report and "failover ON" in report and "failover OFF" in report
    log = rig.log_text()
    assert "-> down" in log and "-> up" in log, "verdict transitions are not logged"
    leaked = [s for s in rig.secrets() if s in log]
    assert not leaked, "a secret appears in the service's log"


async def _heartbeat_after(rig: Rig, before: float | None) -> bool:
    beat = json.loads(await rig.cli("status", "--json"))["service"]["heartbeat"]
    return beat is not None and (before is None or beat > before)


async def test_kill9_in_the_middle_of_switching_on(rig: Rig) -> None:
    await rig.start()
    await until(lambda: rig.converged(False), 30, "healthy portal converged OFF")
    rig.sim.set_mode("maintenance", endpoints=("public",))
    from failover.store import Store

    store = Store(rig.tmp / "pg.db")
    await until(lambda: store.portal(PORTAL).failover, 30, "failover switched on", every=0.02)
    await rig.kill9()  # at once: actions are mid-flight or not started
    await rig.start()
    await until(lambda: rig.converged(True), 30, "all actions ON after the restart")
    await asyncio.sleep(2)
    assert len(rig.staff.requests) <= 1 and rig.hook_states().count("failover") >= 1
    assert rig.ads.status("111") == "ENABLED"
    store.close()


async def test_cli_override_applies_within_two_seconds_and_sigterm_stops_cleanly(rig: Rig) -> None:
    await rig.start()
    await until(lambda: rig.converged(False), 30, "healthy portal converged OFF")
    t0 = time.monotonic()
    await rig.cli("failover", "on", PORTAL, "--reason", "drill with the vendor")
    await until(lambda: _failover_on(rig), 5, "override applied", every=0.05)
    assert time.monotonic() - t0 < 2.0 + 1.0  # 2 s target, plus one CLI process start to read it
    assert rig.proc is not None
    rig.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(rig.proc.wait(), 30) == 0
    events = await rig.cli("events", "--json")
    assert any(e["kind"] == "service" and e["detail"].get("state") == "stopped" for e in json.loads(events))


async def _failover_on(rig: Rig) -> bool:
    from failover.store import Store

    store = Store(rig.tmp / "pg.db")
    try:
        return store.portal(PORTAL).failover
    finally:
        store.close()


async def test_sigint_stops_cleanly(rig: Rig) -> None:
    await rig.start()
    await until(lambda: rig.converged(False), 30, "healthy portal converged OFF")
    assert rig.proc is not None
    rig.proc.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(rig.proc.wait(), 30) == 0
    assert "Traceback" not in rig.log_text()


def test_environment_is_loopback_only() -> None:
    assert not os.environ.get("http_proxy") or "127.0.0.1" in os.environ.get("no_proxy", "")


FORM = {
    "name": "山田 花子",
    "phone": "090-1234-5678",
    "date1": (date.today() + timedelta(days=14)).isoformat(),  # the form refuses dates in the past
    "time1": "morning",
    "visit": "new",
    "reason": "歯が痛い",
    "consent": "yes",
}


async def test_booking_requests_survive_kill9_right_after_the_confirmation(rig: Rig) -> None:
    await rig.start()
    await rig.cli("failover", "on", PORTAL, "--reason", "outage drill")
    async with httpx.AsyncClient(base_url=f"http://{rig.web}", follow_redirects=False) as web:
        await until(lambda: _page_served(web), 10, "the fallback page is served")
        for _ in range(3):
            for _ in range(4):
                page = await web.get(f"/book/{PORTAL}")
                token = re.search(r'name="csrf" value="([^"]+)"', page.text)
                assert token, "no CSRF field"
                done = await web.post(
                    f"/book/{PORTAL}/request", data={"csrf": token.group(1), **FORM}, follow_redirects=True
                )
                assert done.status_code == 200, done.status_code
            await rig.kill9()  # right after the last confirmation
            await rig.start()
    stored = json.loads(await rig.cli("requests", "list", "--json"))
    assert len(stored) == 12, "an acknowledged booking request was lost"


async def _page_served(web: httpx.AsyncClient) -> bool:
    return (await web.get(f"/book/{PORTAL}")).status_code == 200


async def test_drill_rehearses_every_action_without_effect(rig: Rig) -> None:
    await rig.start()
    await until(lambda: rig.converged(False), 30, "healthy portal converged OFF")
    p = await asyncio.create_subprocess_exec(
        str(BIN), "-c", str(rig.config), "drill", PORTAL, "--json", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(p.communicate(), 60)
    doc = json.loads(out)
    assert p.returncode == 0 and doc["ok"], doc
    assert {a["action"]: a["ok"] for a in doc["actions"]} == {"page": True, "ads": True, "staff": True, "ivr": True}
    assert rig.ads.status("111") == "PAUSED" and rig.ads.mutations() == [], "a drill changed the campaign"
    assert any(c.validate_only for c in rig.ads.calls_of("MutateCampaigns"))
    staff = await rig.staff.wait_for(1, 10)
    assert "訓練" in json.dumps(staff[0].json(), ensure_ascii=False)
    hook = await rig.hook.wait_for(1, 10)
    assert hook[0].json()["drill"] is True
    async with httpx.AsyncClient() as web:
        book = await web.get(f"http://{rig.web}/book/{PORTAL}", follow_redirects=False)
        assert book.status_code == 302, "patients were sent to the fallback page by a drill"
        preview = next(a["detail"] for a in doc["actions"] if a["action"] == "page").split("preview: ", 1)[1].split()[0]
        assert (await web.get(preview)).status_code == 200
    assert (await rig.status())["last_drill"]["ok"] is True


async def test_metrics_exposition_passes_promtool(rig: Rig) -> None:
    import shutil

    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: run `make deps-debian` (Debian package prometheus)"
    await rig.start()
    await until(lambda: rig.converged(False), 30, "healthy portal converged OFF")
    metrics_listen = yaml.safe_load(rig.config.read_text(encoding="utf-8"))["server"]["metrics_listen"]
    async with httpx.AsyncClient() as web:
        text = (await web.get(f"http://{metrics_listen}/metrics")).text
    for name in (
        "portalguard_probe_success",
        "portalguard_portal_state",
        "portalguard_failover_active",
        "portalguard_action_observed",
        "portalguard_canary_up",
        "portalguard_last_cycle_timestamp_seconds",
    ):
        assert name in text
    leaked = [s for s in rig.secrets() if s in text]
    assert not leaked, "a secret appears in /metrics"
    check = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    said, _ = await asyncio.wait_for(check.communicate(text.encode()), 30)
    assert check.returncode == 0, said.decode()
