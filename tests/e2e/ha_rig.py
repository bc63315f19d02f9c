"""Several real ``portalguard run`` processes on one PostgreSQL database (issue 12), for
``tests/e2e/test_ha_processes.py`` and ``bench/takeover.py``.

One portal simulator, one fake Google Ads API, one staff receiver, one webhook receiver; one process per
site, each with its own config file (its ``site``, its ``probe.source_address`` 127.0.0.x, its own
listen and metrics ports) and the same store URL and ``server.secret_file``. Loopback only. The
processes run this checkout's code (``PYTHONPATH``), whatever the venv's editable install points at.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from failover.fakes.google_ads_server import FakeGoogleAds
from failover.fakes.portal_simulator import CANARY_PATH, PortalSimulator
from failover.fakes.receivers import JsonReceiver
from tests.e2e.test_run_process import BIN, PORTAL, free_port, until

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN = "111"
# Short timings, as tests/e2e/test_run_process.py's rig: probes and canaries every second.
INTERVAL, FAILURES, DOWN_SECONDS, TICK = 1.0, 2, 1.0, 1.0
LEASE, STALE = 3.0, 4.0
# A single instance's worst case from the switch to failover ON: the first failing probe within one
# interval, DOWN after max((failures - 1) × interval, down_after.seconds), decided on the next tick.
SINGLE_BOUND = INTERVAL + max((FAILURES - 1) * INTERVAL, DOWN_SECONDS) + TICK


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "GRPC_VERBOSITY": "ERROR"}


async def stays(predicate: Callable[[], Any], seconds: float, what: str, every: float = 0.1) -> None:
    """Fail as soon as ``predicate`` turns falsy within ``seconds`` (an absence observed, not a sleep)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if not value:
            raise AssertionError(f"no longer true within {seconds}s: {what}")
        await asyncio.sleep(every)


class Instance:
    """One ``portalguard run`` of one site."""

    def __init__(self, rig: HaRig, site: str, source: str) -> None:
        self.rig, self.site, self.source = rig, site, source
        self.web = f"127.0.0.1:{free_port()}"
        self.metrics_at = f"127.0.0.1:{free_port()}"
        self.config = rig.tmp / f"site-{site}-{free_port()}.yaml"
        self.log_path = rig.tmp / f"run-{site}.log"
        self.log = self.log_path.open("ab")
        self.proc: asyncio.subprocess.Process | None = None
        doc = rig.base_doc()
        doc["site"] = site
        doc["probe"] = {"source_address": source}
        doc["server"] = {
            "listen": self.web,
            "metrics_listen": self.metrics_at,
            "secret_file": str(rig.tmp / "web.key"),
        }
        self.config.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")

    async def spawn(self) -> asyncio.subprocess.Process:
        self.proc = await asyncio.create_subprocess_exec(
            str(BIN), "-c", str(self.config), "run", env=env(), stdout=asyncio.subprocess.DEVNULL, stderr=self.log
        )
        return self.proc

    async def start(self) -> None:
        await self.spawn()
        await until(self.healthy, 40, f"site {self.site}: portalguard run answers /healthz")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def healthy(self) -> bool:
        if self.proc is not None and self.proc.returncode is not None:
            raise AssertionError(f"site {self.site} exited {self.proc.returncode}:\n{self.log_text()[-3000:]}")
        return await self.get("/healthz") == 200

    async def get(self, path: str) -> int | None:
        try:
            async with httpx.AsyncClient() as c:
                return (await c.get(f"http://{self.web}{path}", timeout=2, follow_redirects=False)).status_code
        except httpx.HTTPError:
            return None

    async def metrics(self) -> str:
        async with httpx.AsyncClient() as c:
            return (await c.get(f"http://{self.metrics_at}/metrics", timeout=2)).text

    async def gauge(self, name: str, **labels: str) -> float | None:
        """The value of one sample of /metrics (None: absent or the instance does not answer)."""
        try:
            text = await self.metrics()
        except httpx.HTTPError:
            return None
        for line in text.splitlines():
            m = re.match(rf"^{name}(?:\{{(.*)\}})?\s+(\S+)$", line)
            if not m:
                continue
            got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
            if all(got.get(k) == v for k, v in labels.items()):
                return float(m.group(2))
        return None

    async def is_leader(self) -> bool:
        return await self.gauge("portalguard_leader") == 1

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        await self.proc.wait()

    async def stop(self) -> None:
        """SIGCONT (it may be stopped), then SIGKILL: the end of a test needs no graceful stop."""
        if self.running:
            self.signal(signal.SIGCONT)
            await self.kill9()

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")


class HaRig:
    def __init__(
        self,
        tmp: Path,
        store: str,
        sim: PortalSimulator,
        ads: FakeGoogleAds,
        staff: JsonReceiver,
        hook: JsonReceiver,
        *,
        switches_per_hour: int = 4,
    ) -> None:
        self.tmp, self.store, self.sim, self.ads, self.staff, self.hook = tmp, store, sim, ads, staff, hook
        self.switches_per_hour = switches_per_hour  # the bench switches more often than a flapping portal
        self.instances: list[Instance] = []

    def base_doc(self) -> dict[str, Any]:
        return {
            "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
            "canaries": [self.sim.control_url + CANARY_PATH],  # the control port never fails
            "canary_interval": f"{INTERVAL:g}s",
            "store": self.store,
            "ha": {"lease": f"{LEASE:g}s", "quorum": "majority", "site_stale_after": f"{STALE:g}s"},
            "failover": {"tick": f"{TICK:g}s", "max_switches_per_hour": self.switches_per_hour},
            "actions": {
                "page": {"type": "fallback_page"},
                "ads": self.ads.action_config(),
                "staff": {"type": "notify", "urls": [self.staff.url("/staff", scheme="json")]},
                "ivr": {"type": "webhook", "url": self.hook.url("/ivr"), "secret": "hook-secret-0123456789"},
            },
            "portals": {
                PORTAL: {
                    "endpoints": self.sim.endpoints_config(),
                    "interval": f"{INTERVAL:g}s",
                    "timeout": "800ms",
                    "down_after": {"failures": FAILURES, "seconds": f"{DOWN_SECONDS:g}s"},
                    "up_after": {"successes": 2, "seconds": "1s"},
                    "book_url": self.sim.url("public"),
                    "actions": ["page", "ads", "staff", "ivr"],
                    "min_failover": "0s",
                }
            },
        }

    def add(self, site: str, source: str) -> Instance:
        instance = Instance(self, site, source)
        self.instances.append(instance)
        return instance

    async def start(self, *instances: Instance) -> None:
        """One after the other (each healthy before the next starts): the first is the first leader."""
        for instance in instances:
            await instance.start()

    async def close(self) -> None:
        for instance in self.instances:
            await instance.stop()

    # -- what the CLI says (any instance's config reads the same store) ---------------------------

    async def cli(self, *args: str, via: Instance | None = None) -> str:
        config = (via or self.instances[0]).config
        p = await asyncio.create_subprocess_exec(
            str(BIN),
            "-c",
            str(config),
            *args,
            env=env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(p.communicate(), 30)
        assert p.returncode == 0, err.decode()
        return out.decode()

    async def status(self) -> dict[str, Any]:
        return json.loads(await self.cli("status", "--json"))

    async def leader(self) -> str | None:
        return (await self.status())["service"]["leader"]

    async def converged(self, failover: bool) -> bool:
        p = (await self.status())["portals"][PORTAL]
        want = "on" if failover else "off"
        return p["failover"] is failover and all(a["observed"] == want for a in p["actions"].values())

    async def failover_on_at(self, after: float) -> float | None:
        """The store time of the first failover switch ON after ``after`` (the decision), or None."""
        events = json.loads(await self.cli("events", "--kind", "failover", "--json"))
        times = [e["ts"] for e in events if e["detail"].get("to") == "on" and e["ts"] >= after]
        return min(times) if times else None

    # -- effects on the outside world, counted --------------------------------------------------

    def effects(self) -> dict[str, int]:
        titles = [r.json().get("title", "") for r in self.staff.requests]
        hooks = [r.json().get("state") for r in self.hook.requests]
        mutations = [c.statuses.get(CAMPAIGN) for c in self.ads.mutations()]
        return {
            "outage messages": sum("予約サイト障害" in t for t in titles),
            "recovered messages": sum("【復旧】" in t for t in titles),
            "possible duplicates": sum("重複" in t for t in titles),
            "failover webhooks": hooks.count("failover"),
            "recovered webhooks": hooks.count("recovered"),
            "ads enabled": mutations.count("ENABLED"),
            "ads paused": mutations.count("PAUSED"),
        }

    async def effects_reach(self, want: dict[str, int]) -> bool:
        got = self.effects()
        return all(got[k] >= v for k, v in want.items())
