"""A real ``portalguard run`` process as the metrics target of the live dashboard tests.

``RealPortalguard`` starts, all on 127.0.0.1:

- the portal simulator (the booking portal: public page and staff login) and a second simulator whose
  two ports are the canaries (so "our own network" can go down without touching the portal);
- the fake Google Ads API (the service's real google-ads client talks to it) and a JSON receiver for
  the staff notifications (Apprise ``json://``);
- ``portalguard -c CONFIG run`` as its own process, probing every second, with ``/metrics`` on its
  own port (what Prometheus scrapes) and the preflight (``doctor``) every few seconds.

One action is broken on purpose: the ``ivr`` webhook points at a loopback port that refuses
connections (a reserved, never-listening socket), so its preflight fails (``portalguard_action_ready``
0) and switching it on keeps failing (``portalguard_action_errors_total``, desired != observed).

It implements ``livestack.Target``; the stages are played through the real service:

- ``outage``: the public page answers 500 → verdict DOWN → failover ON; patients open ``/book`` and
  send booking requests through the fallback form;
- ``recovered``: the portal is healthy again → UP → failover OFF;
- ``network_down``: both canaries refuse connections → every verdict UNKNOWN;
- ``dead``: ``kill -9`` of the process → Prometheus's ``up`` is 0.

The simulators and receivers are asyncio servers: they run in an event loop on a thread of their own,
and every call into them goes through that loop. ``stop()`` (idempotent) ends everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import yaml

from failover.crypto import DataKey
from failover.demo import patient
from failover.fakes.google_ads_server import FakeGoogleAds
from failover.fakes.portal_simulator import CANARY_PATH, PortalSimulator
from failover.fakes.receivers import JsonReceiver
from tests.dashboards.livestack import JOB, Prometheus, ScriptedStages, free_port, wait_until

BIN = Path(sys.executable).parent / "portalguard"
TIMEZONE = "Asia/Tokyo"
BOOKINGS = 3  # booking requests sent through the fallback form during the outage
BROKEN_ACTION = "ivr"
T = TypeVar("T")


class _LoopThread:
    """An asyncio event loop on a daemon thread; ``run``/``call`` execute in it and wait for the result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="realtarget-fakes", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        async def inside() -> T:
            return fn(*args, **kwargs)

        return self.run(inside())

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class RealPortalguard(ScriptedStages):
    """``portalguard run`` against the fakes; ``address`` is its metrics listener."""

    def __init__(self, portal: str = "epark-shibuya") -> None:
        if not BIN.exists():
            raise RuntimeError(f"{BIN} is missing: install the package (pip install -e .) in this environment")
        self.portal = portal
        self._dir = tempfile.TemporaryDirectory(prefix="portalguard-run-")
        self.workdir = Path(self._dir.name)
        self.config = self.workdir / "portalguard.yaml"
        self.web = f"127.0.0.1:{free_port()}"
        self.address = f"127.0.0.1:{free_port()}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._loop = _LoopThread()
        self._stack = contextlib.AsyncExitStack()
        self._ads: FakeGoogleAds | None = None
        # Bound, never listening: connections to it are refused, and no one else can take the port.
        self._refusing = socket.socket()
        self._refusing.bind(("127.0.0.1", 0))
        self._stopped = False
        try:
            self.sim, self.canary, self.staff, self.tls_sim = self._loop.run(self._start_fakes())
            self._ads = FakeGoogleAds(campaigns={"111": ("PAUSED", 3000)}).start()
            self.config.write_text(yaml.safe_dump(self.settings(), allow_unicode=True), encoding="utf-8")
            self.start()
        except BaseException:
            self.stop()
            raise

    async def _start_fakes(self) -> tuple[PortalSimulator, PortalSimulator, JsonReceiver, PortalSimulator]:
        sim = await self._stack.enter_async_context(PortalSimulator())
        sim.book.seed(days=2, per_day=6, seed=3)  # the admin screen's book, for the appointment mirror
        canary = await self._stack.enter_async_context(PortalSimulator())
        staff = await self._stack.enter_async_context(JsonReceiver())
        # An https page whose certificate expires in 12 days: TLS days left, TLSCertExpiringSoon.
        tls_sim = await self._stack.enter_async_context(PortalSimulator(tls=True, tls_days=12))
        return sim, canary, staff, tls_sim

    def settings(self) -> dict[str, Any]:
        """The config file (as parsed YAML): the e2e test's, with a fast preflight and a broken webhook."""
        assert self._ads is not None
        refusing = self._refusing.getsockname()[1]
        ca_file = self.workdir / "tls-ca.pem"  # the probe trusts the https simulator's own certificate
        ca_file.write_bytes(self.tls_sim.cert_pem or b"")
        return {
            "clinic": {"name": "さくら歯科", "phone": "03-1234-5678", "timezone": TIMEZONE},
            "canaries": [self.canary.url("public", CANARY_PATH), self.canary.url("admin", CANARY_PATH)],
            "canary_interval": "1s",
            "store": str(self.workdir / "portalguard.db"),
            "data_key": DataKey.generate()[0],  # the mirror's copy is sealed
            "server": {"listen": self.web, "metrics_listen": self.address},
            "failover": {"doctor_every": "5s", "backoff_max": "5s"},
            "probe": {"ca_file": str(ca_file)},
            "actions": {
                "page": {"type": "fallback_page"},
                "ads": self._ads.action_config(),
                "staff": {"type": "notify", "urls": [self.staff.url("/staff", scheme="json")]},
                BROKEN_ACTION: {
                    "type": "webhook",
                    "url": f"http://127.0.0.1:{refusing}/ivr",
                    "secret": "hook-secret-0123456789",
                },
            },
            "portals": {
                self.portal: {
                    "endpoints": {
                        **self.sim.endpoints_config(),
                        # https, private CA; an admin-role page, so with trigger public it never fails over.
                        "admin-tls": {"url": self.tls_sim.url("public")},
                    },
                    "interval": "1s",
                    "timeout": "800ms",
                    "down_after": {"failures": 2, "seconds": "1s"},
                    "up_after": {"successes": 2, "seconds": "1s"},
                    "book_url": self.sim.url("public"),
                    "actions": ["page", "ads", "staff", BROKEN_ACTION],
                    "min_failover": "0s",
                    # Synced once at start (every 1m is the shortest): last success, count, duration.
                    "mirror": self.sim.mirror_config("admin_html", every="1m", days_ahead=2),
                }
            },
        }

    # -- the process

    def start(self) -> None:
        with (self.workdir / "run.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [str(BIN), "-c", str(self.config), "run"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=self.workdir,
            )
        wait_until(self._healthy, 30, f"portalguard run to answer http://{self.web}/healthz")

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"portalguard run exited with {self.proc.returncode}:\n{self.log()}")
        with urllib.request.urlopen(f"http://{self.web}/healthz", timeout=2) as resp:
            return resp.status == 200

    def log(self) -> str:
        path = self.workdir / "run.log"
        return path.read_text(encoding="utf-8", errors="replace")[-4000:] if path.exists() else ""

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """End the process (SIGTERM, then SIGKILL), the fakes and the loop; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        finally:
            try:
                if self._ads is not None:
                    self._ads.stop()
                self._loop.run(self._stack.aclose())
            finally:
                self._loop.close()
                self._refusing.close()
                self._dir.cleanup()

    # -- the stages

    def reach(self, stage: str, prom: Prometheus) -> None:
        try:
            super().reach(stage, prom)
        except TimeoutError as err:
            raise TimeoutError(f"{err}\n--- portalguard run's log (end) ---\n{self.log()}") from None

    def _book_url(self, path: str = "") -> str:
        return f"http://{self.web}/book{path}"

    def _to_outage(self, prom: Prometheus) -> None:
        p = self.portal
        prom.wait_target_up()
        prom.wait_for(f'portalguard_portal_state{{portal="{p}",state="up"}} == 1')
        self._loop.call(self.sim.set_mode, "error500", endpoints=("public",))
        prom.wait_for(f'portalguard_failover_active{{portal="{p}"}} == 1')
        # Patients: the fallback page is served once the page action is on; then they send requests.
        wait_until(lambda: self._visit(f"/{p}") == 200, 30, "the fallback page to be served on /book")
        self._visit("")  # /book itself (one portal: the same page)
        for n in range(BOOKINGS):
            status = self._loop.run(patient.request_booking(self._book_url(f"/{p}"), TIMEZONE, f"患者 {n}"))
            if status >= 400:
                raise RuntimeError(f"booking request {n} answered HTTP {status}")
        prom.wait_for(f'portalguard_booking_requests_total{{portal="{p}"}} >= {BOOKINGS}')
        prom.wait_for('portalguard_http_requests_total{route="/book/{portal}/request"} > 0')
        prom.wait_for(f'portalguard_action_errors_total{{portal="{p}",action="{BROKEN_ACTION}"}} > 0')
        prom.wait_for(f'portalguard_action_ready{{action="{BROKEN_ACTION}"}} == 0')

    def _visit(self, path: str) -> int:
        return self._loop.run(patient.open_book(self._book_url(path))).status

    def _to_recovered(self, prom: Prometheus) -> None:
        self._loop.call(self.sim.set_mode, "healthy")
        prom.wait_for(f'portalguard_failover_active{{portal="{self.portal}"}} == 0')

    def _to_kept_off(self, prom: Prometheus) -> None:
        """Staff keep failover off by hand (the real CLI), then the portal fails again."""
        p = self.portal
        subprocess.run(
            [str(BIN), "-c", str(self.config), "failover", "off", p, "--for", "1h", "--reason", "vendor maintenance"],
            check=True, capture_output=True, timeout=30, cwd=self.workdir,
        )  # fmt: skip
        prom.wait_for(f'portalguard_override_active{{portal="{p}",mode="off"}} == 1')
        self._loop.call(self.sim.set_mode, "error500", endpoints=("public",))
        prom.wait_for(f'portalguard_portal_up{{portal="{p}"}} == 0')

    def _to_network_down(self, prom: Prometheus) -> None:
        self._loop.call(self.canary.set_mode, "refuse")
        prom.wait_for("max(portalguard_canary_up) == 0")
        prom.wait_for(f'portalguard_portal_state{{portal="{self.portal}",state="unknown"}} == 1')

    def _to_dead(self, prom: Prometheus) -> None:
        self.kill9()
        prom.wait_for(f'up{{job="{JOB}"}} == 0')
