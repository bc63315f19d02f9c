"""A slowloris against a real ``portalguard run`` limited to 256 file descriptors.

The way it was broken: idle connections trickling a header line now and then were never closed, used
up every descriptor, and with them the booking page, the probes and the log disk. Here several
hundred such connections (from several loopback addresses, reconnecting when closed) go on for
~12 s while patients open fresh connections to ``GET /book`` and the probes keep running. All on
127.0.0.0/8; bounded in connections and time.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from failover.fakes.portal_simulator import CANARY_PATH, PortalSimulator

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PORTAL = "sakura"
BIN = Path(sys.executable).parent / "portalguard"
FD_LIMIT = 256
HEADER_TIMEOUT = 3.0
ATTACK_SECONDS = 12.0
SLOTS = 300  # connections the attacker keeps open at once (the service may hold 112)
SOURCES = [f"127.0.0.{i}" for i in range(2, 12)]  # 30 per address: under the per-client cap of 50
ATTACKER = Path(__file__).with_name("slowloris_attacker.py")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))  # soft and hard: it cannot raise it


@dataclass
class Service:
    web: str
    metrics: str
    config: Path
    log: Path
    proc: asyncio.subprocess.Process

    async def cli(self, *args: str) -> str:
        p = await asyncio.create_subprocess_exec(
            str(BIN), "-c", str(self.config), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(p.communicate(), 30)
        assert p.returncode == 0, err.decode()
        return out.decode()

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    async with PortalSimulator() as sim:
        web, metrics = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        config = tmp_path / "portalguard.yaml"
        doc = {
            "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
            "canaries": [sim.control_url + CANARY_PATH],
            "canary_interval": "1s",
            "store": str(tmp_path / "pg.db"),
            "server": {"listen": web, "metrics_listen": metrics, "header_timeout": f"{HEADER_TIMEOUT:g}s"},
            "actions": {"page": {"type": "fallback_page"}},
            "portals": {
                PORTAL: {
                    "endpoints": sim.endpoints_config(),
                    # 1.5 s: this machine is shared; the point is that probes are not starved of descriptors
                    "interval": "2s",
                    "timeout": "1500ms",
                    "book_url": sim.url("public"),
                    "actions": ["page"],
                }
            },
        }
        config.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        log = tmp_path / "run.log"
        with log.open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                str(BIN),
                "-c",
                str(config),
                "run",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=err,
                preexec_fn=_low_fd_limit,
            )
        svc = Service(web, metrics, config, log, proc)
        try:
            yield svc
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), 30)


async def _until(check, within: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while True:
        try:
            if await check():
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.2)


def _probes_ok(text: str) -> bool:
    success = re.findall(r"^portalguard_probe_success\{[^}]*\} (\S+)$", text, re.M)
    canaries = re.findall(r"^portalguard_canary_up\{[^}]*\} (\S+)$", text, re.M)
    return bool(success) and all(v == "1.0" for v in success + canaries)


def _probe_count(text: str) -> float:
    return sum(float(v) for v in re.findall(r"^portalguard_probe_duration_seconds_count\{[^}]*\} (\S+)$", text, re.M))


async def test_slowloris_neither_starves_patients_nor_probes_nor_fills_the_log(service: Service) -> None:
    async with httpx.AsyncClient() as c:

        async def page_up() -> bool:
            return (await c.get(f"http://{service.web}/book/{PORTAL}", timeout=1)).status_code == 200

        async def metrics_text() -> str:
            return (await c.get(f"http://{service.metrics}/metrics", timeout=1)).text

        async def probes_ok() -> bool:
            return _probes_ok(await metrics_text())

        await _until(probes_ok, 20, "probes succeed before the attack")
        await service.cli("failover", "on", PORTAL, "--reason", "slowloris test")  # /book serves the page
        await _until(page_up, 10, "the fallback page is on")
        probes_before = _probe_count(await metrics_text())
        log_before = service.log.stat().st_size

        host, port = service.web.split(":")
        attacker = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ATTACKER),
            host,
            port,
            str(ATTACK_SECONDS),
            str(HEADER_TIMEOUT),
            str(SLOTS),
            *SOURCES,
            stdout=asyncio.subprocess.PIPE,
        )
        stop = time.monotonic() + ATTACK_SECONDS
        await asyncio.sleep(1.5)  # the attack is in full swing

        latencies: list[float] = []
        statuses: list[int] = []
        probe_checks: list[bool] = []
        max_fds = 0
        while time.monotonic() < stop:
            start = time.monotonic()
            async with httpx.AsyncClient() as patient:  # a fresh connection each time, as a new patient
                try:
                    r = await patient.get(f"http://{service.web}/book/{PORTAL}", timeout=5)
                    statuses.append(r.status_code)
                except httpx.HTTPError as err:
                    statuses.append(-1)
                    print("patient failed:", repr(err))
            latencies.append(time.monotonic() - start)
            probe_checks.append(_probes_ok(await metrics_text()))
            max_fds = max(max_fds, service.open_fds())
            await asyncio.sleep(0.2)
        probes_after = _probe_count(await metrics_text())
        out, _ = await asyncio.wait_for(attacker.communicate(), HEADER_TIMEOUT + 10)
        attack = json.loads(out)

    log_growth = service.log.stat().st_size - log_before
    print(
        f"slowloris: {attack['opened']} connections opened ({attack['connect_failed']} failed to connect), "
        f"{len(latencies)} patient GET /book, max {max(latencies) * 1000:.0f} ms, "
        f"longest attack connection {max(attack['lifetimes']):.1f} s, max open fds {max_fds}/{FD_LIMIT}, "
        f"log +{log_growth} bytes, probes +{probes_after - probes_before:.0f}"
    )
    assert attack["opened"] >= SLOTS and len(latencies) >= 15
    assert statuses == [200] * len(statuses), statuses
    assert max(latencies) < 1.0, sorted(latencies)[-5:]
    assert all(probe_checks), probe_checks
    assert probes_after - probes_before >= ATTACK_SECONDS - 2  # probes ran all along (two endpoints, every 2 s)
    # No attack connection outlived the header deadline (plus the 1 s it takes the attacker to notice).
    assert max(attack["lifetimes"]) < HEADER_TIMEOUT + 2.0, max(attack["lifetimes"])
    assert max_fds < FD_LIMIT - 64, max_fds  # the reserve stayed free
    assert log_growth < 20_000, service.log.read_text(errors="replace")[-3000:]
    assert "Too many open files" not in service.log.read_text(errors="replace")
    assert service.proc.returncode is None  # still running
