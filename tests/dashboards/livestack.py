"""A real Prometheus on 127.0.0.1 scraping a metrics target, for the dashboard tests and the rendering.

- ``Prometheus``: Debian's ``prometheus`` binary with a temporary storage path, a random loopback port,
  1 s scrape and rule evaluation, and our ``rules.yml``. Always stopped (terminate, then kill) on exit.
- ``Target``: what the tests drive through ``STAGES``. Two implement it: ``tests.dashboards.realtarget.RealPortalguard``
  (a real ``portalguard run`` process against the portal simulator and the other fakes: what the tests
  use) and ``SyntheticPortalguard`` below.
- ``SyntheticPortalguard``: serves the real ``WatchdogMetrics`` + ``FailoverMetrics`` for one portal and
  drives them through a scripted outage, with the real verdict state machine, in compressed time; the
  dashboard rendering (``docs/render_dashboard.py``) plays its longer scenario with it.
- ``panel_queries``: every PromQL expression of the dashboard JSON, with its panel and query options.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml
from prometheus_client import CollectorRegistry, start_http_server

from failover.metrics import FailoverMetrics, MirrorMetrics, SiteMetrics
from failover.mirror.model import FAILURE_KINDS, DayFailure, SyncFailure
from failover.mirror.sync import SyncReport
from watchdog.metrics import WatchdogMetrics
from watchdog.result import FailureKind, ProbeResult
from watchdog.targets import Recovery, Threshold
from watchdog.verdict import Health, Observation, Verdict, step

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"  # what is tested: the shipped files
RULES = DASHBOARDS / "prometheus" / "rules.yml"
DASHBOARD = DASHBOARDS / "grafana" / "portalguard-overview.json"
JOB = "portalguard"  # the scrape job name rules.yml expects
# kept_off: the portal down again while staff keep failover off by hand (`failover off --for`).
STAGES = ("outage", "recovered", "kept_off", "network_down", "dead")


class PrometheusMissing(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (OSError, urllib.error.URLError, ValueError) as err:
            last_error = err
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error})")


# ----------------------------------------------------------------------------------------- Prometheus


class QueryError(RuntimeError):
    pass


class Prometheus:
    """``with Prometheus(target="127.0.0.1:PORT") as prom: prom.query("up")``."""

    def __init__(self, target: str, rules: Path = RULES, interval: str = "1s") -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise PrometheusMissing("the prometheus binary is missing: run `make deps-debian`")
        self.binary = binary
        self.target = target
        self.rules = rules
        self.interval = interval
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir = tempfile.TemporaryDirectory(prefix="portalguard-prom-")
        self._proc: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        return json.dumps(  # JSON is YAML
            {
                "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
                "rule_files": [str(self.rules)],
                "scrape_configs": [
                    {
                        "job_name": JOB,
                        "scrape_timeout": self.interval,
                        "static_configs": [{"targets": [self.target]}],
                    }
                ],
            },
            indent=2,
        )

    def start(self) -> Prometheus:
        workdir = Path(self._dir.name)
        (workdir / "prometheus.yml").write_text(self.config(), encoding="utf-8")
        log = (workdir / "prometheus.log").open("wb")
        self._proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1d",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        log.close()
        wait_until(self._ready, 20, f"Prometheus to be ready on {self.url}{self._log_hint()}")
        return self

    def _ready(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {self._proc.returncode}:\n{self.log()}")
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
            return resp.status == 200

    def log(self) -> str:
        path = Path(self._dir.name) / "prometheus.log"
        return path.read_text(encoding="utf-8", errors="replace")[-4000:] if path.exists() else ""

    def _log_hint(self) -> str:
        return f" (storage and log in {self._dir.name})"

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        self._proc = None
        self._dir.cleanup()

    def __enter__(self) -> Prometheus:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- HTTP API

    def api(self, path: str, **params: str | float) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as err:
            body = json.loads(err.read() or b"{}")
            raise QueryError(f"{body.get('errorType', err.code)}: {body.get('error', err.reason)}") from None
        if body.get("status") != "success":
            raise QueryError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, str | float] = {"query": expr}
        if at is not None:
            params["time"] = at
        return _series(self.api("query", **params))

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[dict[str, Any]]:
        return _series(self.api("query_range", query=expr, start=start, end=end, step=step))

    def wait_for(self, expr: str, timeout: float = 30) -> list[dict[str, Any]]:
        """Poll an instant query until it returns at least one series."""
        return wait_until(lambda: self.query(expr), timeout, f"`{expr}` to return data")

    def wait_target_up(self, timeout: float = 30) -> None:
        wait_until(lambda: self.query(f'up{{job="{JOB}"}} == 1'), timeout, f"{self.target} to be scraped")


def _series(data: dict[str, Any]) -> list[dict[str, Any]]:
    if data["resultType"] == "scalar":
        return [{"metric": {}, "value": data["result"]}]
    return list(data["result"])


# ------------------------------------------------------------------------------------ metrics targets


class Target(Protocol):
    """What the live tests need from a metrics target (synthetic, or a real ``portalguard run``)."""

    address: str  # host:port Prometheus scrapes (/metrics)
    portal: str  # a portal id the target exports

    def reach(self, stage: str, prom: Prometheus) -> None:
        """Drive the target to ``stage`` (one of STAGES, in order) and wait until Prometheus has seen it."""


class ScriptedStages:
    """``reach`` for a target with one ``_to_<stage>(prom)`` method per stage: plays the stages not yet
    played, in order (tests run in stage order; asking for a stage already passed is an error)."""

    stage = ""

    def reach(self, stage: str, prom: Prometheus) -> None:
        order = STAGES.index(stage)
        done = STAGES.index(self.stage) if self.stage else -1
        if order < done:
            raise RuntimeError(f"the scenario is already past {stage!r} (at {self.stage!r}): run tests in order")
        for name in STAGES[done + 1 : order + 1]:
            getattr(self, f"_to_{name}")(prom)
            self.stage = name


ENDPOINTS = ("public", "admin")
ACTIONS = ("page", "ads", "staff", "ivr")
CANARIES = ("www.gstatic.com/generate_204", "www.cloudflare.com/cdn-cgi/trace")


@dataclass
class Conditions:
    """What the simulated world looks like right now."""

    failing: dict[str, FailureKind | None]  # per endpoint
    canaries_ok: tuple[bool, ...] = (True, True)
    ads_broken: bool = False  # ads errors and never converges (a permanent problem)
    ads_ready: bool = True


class SyntheticPortalguard(ScriptedStages):
    """Real metric classes and the real verdict FSM, with time compressed (tick 0.25 s, DOWN after ~1.5 s).

    Serves /metrics on 127.0.0.1 (random port) via prometheus_client.
    """

    TICK = 0.25

    def __init__(self, portal: str = "epark-shibuya", tls_days_left: float = 12.0, seed: int = 7) -> None:
        self.portal = portal
        self.registry = CollectorRegistry()
        self.watchdog = WatchdogMetrics(self.registry)
        self.failover = FailoverMetrics(self.registry)
        self.mirror = MirrorMetrics(self.registry)
        self.mirror_ticks = 0
        self.mirror_broken = False  # from the first failover on: the admin screen changed, syncs fail
        self.tls_expiry = time.time() + tls_days_left * 86400
        self.world = Conditions(failing=dict.fromkeys(ENDPOINTS))
        self.verdict = Verdict.start(time.time())
        self.down_after = Threshold(failures=4, seconds=1.0)
        self.up_after = Recovery(successes=6, seconds=1.5)
        self.failover_on = False
        self.kept_off = False  # an "off" override: DOWN does not switch failover on
        self.observed: dict[str, int] = dict.fromkeys(ACTIONS, -1)
        self.pending: dict[str, int] = dict.fromkeys(ACTIONS, 0)  # ticks until an action converges
        self.rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._declare()
        self._server, _ = start_http_server(0, "127.0.0.1", self.registry)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._run, name="synthetic-portalguard", daemon=True)
        self._thread.start()

    def _declare(self) -> None:
        self.watchdog.declare_portal(self.portal, list(ENDPOINTS))
        self.failover.declare_portal(self.portal, list(ACTIONS))
        for action in ACTIONS:
            self.failover.action_ready.labels(action).set(1)
        self.mirror.declare_portal(self.portal, 1.0, FAILURE_KINDS, None)  # time is compressed here

    # -- the loop

    def _run(self) -> None:
        while not self._stop.wait(self.TICK):
            with self._lock:
                self.tick(time.time())

    def tick(self, now: float) -> None:
        self._probe_canaries(now)
        failing = self._probe_endpoints(now)
        network_down = not any(self.world.canaries_ok)
        before = self.verdict.health
        self.verdict = step(self.verdict, Observation(failing, network_down), now, self.down_after, self.up_after)
        changed = self.verdict.health is not before
        self.watchdog.set_health(self.portal, self.verdict.health, changed=changed)
        self._decide()
        self._reconcile()
        self._sync_mirror(now)
        self._serve_web()
        self.watchdog.lateness.observe(abs(self.rng.gauss(0.004, 0.003)))

    def _probe_canaries(self, now: float) -> None:
        for url, ok in zip(CANARIES, self.world.canaries_ok, strict=True):
            self.watchdog.observe_canary(f"https://{url}", ok, now)

    def _probe_endpoints(self, now: float) -> bool:
        for endpoint in ENDPOINTS:
            kind = self.world.failing[endpoint]
            if not any(self.world.canaries_ok):
                kind = FailureKind.CONNECT
            self.watchdog.observe_probe(self.portal, endpoint, self._result(kind), now)
        return self.world.failing["public"] is not None  # trigger: public

    def _result(self, kind: FailureKind | None) -> ProbeResult:
        expiry = self.tls_expiry
        if kind is None:
            return ProbeResult.success(self.rng.uniform(0.12, 0.45), 200, expiry)
        if kind is FailureKind.TIMEOUT:
            return ProbeResult.failure(kind, self.rng.uniform(4.8, 5.1), "timed out", None, None)
        if kind is FailureKind.HTTP_STATUS:
            return ProbeResult.failure(kind, self.rng.uniform(0.05, 0.2), "503", 503, expiry)
        if kind is FailureKind.LOGIN:
            return ProbeResult.failure(kind, self.rng.uniform(0.3, 0.8), "login rejected", 200, expiry)
        return ProbeResult.failure(kind, self.rng.uniform(0.01, 0.05), kind.value, None, None)

    def _decide(self) -> None:
        health = self.verdict.health
        want = {Health.DOWN: True, Health.UP: False}.get(health, self.failover_on) and not self.kept_off
        if want != self.failover_on:
            self.failover_on = want
            self.failover.failover_active.labels(self.portal).set(int(want))
            self.failover.transitions.labels(self.portal, "on" if want else "off").inc()
            for action in ACTIONS:
                self.pending[action] = {"page": 1, "staff": 2, "ivr": 3, "ads": 8}[action]

    def _reconcile(self) -> None:
        desired = int(self.failover_on)
        for action in ACTIONS:
            self.failover.desired.labels(self.portal, action).set(desired)
            self.failover.action_ready.labels(action).set(0 if action == "ads" and not self.world.ads_ready else 1)
            if self.observed[action] == desired:
                continue
            if action == "ads" and self.world.ads_broken:
                if self.rng.random() < 0.3:
                    self.failover.errors.labels(self.portal, action, "transient").inc()
                self.observed[action] = 0
            elif self.pending[action] > 0:
                self.pending[action] -= 1
                if action == "ads" and self.pending[action] in (6, 3):  # two transient errors, then success
                    self.failover.errors.labels(self.portal, action, "transient").inc()
            else:
                self.observed[action] = desired
            self.failover.observed.labels(self.portal, action).set(self.observed[action])

    def _sync_mirror(self, now: float) -> None:
        """Every 4th tick a sync while the portal is not DOWN: good ones until the first failover,
        one timeout now and then, failing ones (a changed layout) after it, so MirrorStale fires."""
        self.mirror_ticks += 1
        self.mirror_broken = self.mirror_broken or self.failover_on
        if self.mirror_ticks % 4 or self.verdict.health is Health.DOWN:
            return
        kind = "parse" if self.mirror_broken else "timeout" if self.mirror_ticks % 12 == 0 else None
        failures = [DayFailure(dt.date.today(), SyncFailure(kind, "synthetic"))] if kind else []
        report = SyncReport(self.portal, now, self.rng.uniform(0.4, 1.2), [], failures)
        self.mirror.synced(self.portal, report, 42)

    def _serve_web(self) -> None:
        http = self.failover.http_requests
        http.labels("/healthz", "200").inc()
        if self.rng.random() < 0.6:
            http.labels("/book/{portal}", "200" if self.failover_on else "302").inc()
        if self.failover_on and self.rng.random() < 0.12:
            http.labels("/book/{portal}", "303").inc()  # a submitted form
            self.failover.booking_requests.labels(self.portal).inc()

    # -- the script

    def set_world(self, **changes: Any) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(self.world, key, value)

    def fail(self, endpoint: str, kind: FailureKind | None) -> None:
        with self._lock:
            self.world.failing[endpoint] = kind

    def _to_outage(self, prom: Prometheus) -> None:
        prom.wait_target_up()
        prom.wait_for(f'portalguard_portal_state{{portal="{self.portal}",state="up"}} == 1')
        self.set_world(ads_broken=True, ads_ready=False)
        self.fail("public", FailureKind.HTTP_STATUS)
        prom.wait_for(f'portalguard_failover_active{{portal="{self.portal}"}} == 1')
        self.fail("public", FailureKind.TIMEOUT)
        self.fail("admin", FailureKind.LOGIN)
        prom.wait_for(f'increase(portalguard_probe_failures_total{{portal="{self.portal}",reason="timeout"}}[5s]) > 0')
        prom.wait_for(f'portalguard_action_errors_total{{portal="{self.portal}",action="ads"}} > 0')

    def _to_recovered(self, prom: Prometheus) -> None:
        self.set_world(ads_broken=False, ads_ready=True)
        self.fail("public", None)
        self.fail("admin", None)
        prom.wait_for(f'portalguard_failover_active{{portal="{self.portal}"}} == 0')

    def _to_kept_off(self, prom: Prometheus) -> None:
        with self._lock:
            self.kept_off = True
            self.failover.override_active.labels(self.portal, "off").set(1)
        self.fail("public", FailureKind.HTTP_STATUS)
        prom.wait_for(f'portalguard_portal_up{{portal="{self.portal}"}} == 0')

    def _to_network_down(self, prom: Prometheus) -> None:
        self.set_world(canaries_ok=(False, False))
        prom.wait_for(f'portalguard_portal_state{{portal="{self.portal}",state="unknown"}} == 1')

    def _to_dead(self, prom: Prometheus) -> None:
        self.stop()
        prom.wait_for(f'up{{job="{JOB}"}} == 0')

    def stop(self) -> None:
        """Stop probing and serving (the process "dies"); safe to call twice."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.shutdown()
        self._server.server_close()


class LiveStack:
    """A running Prometheus scraping a target, and when it started (the start of every range query)."""

    def __init__(self, prom: Prometheus, target: Target) -> None:
        self.prom = prom
        self.target = target
        self.started = time.time()

    def reach(self, stage: str) -> None:
        self.target.reach(stage, self.prom)


# ----------------------------------------------------------------------------------- dashboard queries


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    panel_type: str
    ref_id: str
    expr: str
    legend: str
    instant: bool

    @property
    def id(self) -> str:
        return f"{self.panel} [{self.ref_id}]"


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def panel_queries(dashboard: dict[str, Any]) -> Iterator[PanelQuery]:
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            yield PanelQuery(
                panel=panel.get("title", ""),
                panel_type=panel["type"],
                ref_id=target.get("refId", ""),
                expr=target["expr"],
                legend=target.get("legendFormat", ""),
                instant=bool(target.get("instant")) and not target.get("range"),
            )


def annotation_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            yield annotation["name"], annotation["expr"]


def substitute(expr: str, portal: str = ".*", range_s: float = 300, interval_s: float = 5) -> str:
    """Replace Grafana's variables as Grafana would before sending the query."""
    values = {
        "$__rate_interval": f"{max(4, int(interval_s) * 2)}s",
        "$__interval": f"{int(interval_s)}s",
        "$__range": f"{int(range_s)}s",
        "${portal}": portal,
        "$portal": portal,
    }
    for name, value in values.items():
        expr = expr.replace(name, value)
    if "$" in expr:
        raise ValueError(f"unsubstituted variable left in {expr!r}")
    return expr


# ------------------------------------------------------------------------------------------ metric names

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_NAME = re.compile(r"(?<![\w:.])[a-zA-Z_:][a-zA-Z0-9_:]*")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "summary": ("_count", "_sum")}


def used_metric_names(expr: str) -> set[str]:
    """Metric and recording-rule names a PromQL expression selects (ours and ``up``)."""
    bare = _STRING.sub('""', expr)
    names = set(_NAME.findall(bare))
    return {n for n in names if n.startswith("portalguard_") or ":" in n or n == "up"}


def exported_metric_names() -> set[str]:
    """Every series name portalguard's metric classes can expose, from a fresh registry's families."""
    registry = CollectorRegistry()
    WatchdogMetrics(registry)
    FailoverMetrics(registry)
    MirrorMetrics(registry)
    SiteMetrics(registry)
    names: set[str] = set()
    for family in registry.collect():
        suffixes = _SUFFIXES.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def metric_labels() -> dict[str, tuple[str, ...]]:
    """Label names of every exported series name (from the metric objects, which know them up front)."""
    registry = CollectorRegistry()
    labels: dict[str, tuple[str, ...]] = {}
    for owner in (WatchdogMetrics(registry), FailoverMetrics(registry), MirrorMetrics(registry), SiteMetrics(registry)):
        for metric in vars(owner).values():
            names = tuple(getattr(metric, "_labelnames", ()))
            for family in metric.describe():
                for suffix in _SUFFIXES.get(family.type, ("",)):
                    labels[family.name + suffix] = names
    return labels


def load_rules(path: Path = RULES) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"] for rule in group["rules"]]
