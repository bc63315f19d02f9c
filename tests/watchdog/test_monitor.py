"""The monitor: probe results in, verdicts out. Scripted results on a fake clock."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from watchdog.metrics import WatchdogMetrics
from watchdog.monitor import Monitor, PortalHealth
from watchdog.result import FailureKind, ProbeResult
from watchdog.scheduler import ProbeJob
from watchdog.targets import WatchdogConfig
from watchdog.verdict import Health

OK = ProbeResult.success(0.05, 200)
FAIL = ProbeResult.failure(FailureKind.HTTP_STATUS, 0.05, "HTTP 500", 500)


def config(trigger: str = "public", canaries: int = 0) -> WatchdogConfig:
    return WatchdogConfig.model_validate(
        {
            "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
            "canaries": [f"http://127.0.0.1:9/c{i}" for i in range(canaries)],
            "portals": {
                "p": {
                    "endpoints": {
                        "public": {"url": "http://127.0.0.1:9/"},
                        "admin": {
                            "url": "http://127.0.0.1:9/login",
                            "login": {"username": "u", "password": "pw", "success_contains": ["ログアウト"]},
                        },
                    },
                    "interval": "5s",
                    "timeout": "4s",
                    "down_after": {"failures": 3, "seconds": "10s"},
                    "up_after": {"successes": 3, "seconds": "10s"},
                    "trigger": trigger,
                    "book_url": "http://127.0.0.1:9/",
                }
            },
        }
    )


class Script:
    def __init__(self, clock: Any, cfg: WatchdogConfig) -> None:
        self.clock = clock
        self.monitor = Monitor(cfg, WatchdogMetrics(CollectorRegistry()), clock)
        self.jobs = {j.key: j for j in self.monitor.jobs()}
        self.changes: list[tuple[Health, Health]] = []
        self.monitor.listeners.append(self._heard)
        self.start = clock()

    def _heard(self, health: PortalHealth, previous: Health) -> None:
        self.changes.append((previous, health.health))

    def result(self, at: float, key: str, result: ProbeResult) -> Health:
        """The result of job ``key`` arriving ``at`` seconds into the script."""
        self.clock.now = self.start + at
        self.monitor.on_result(self.jobs[key], result)
        return self.monitor.health("p").health


def test_jobs_cover_endpoints_login_and_canaries(clock: Any) -> None:
    jobs = Monitor(config(canaries=2), WatchdogMetrics(CollectorRegistry()), clock).jobs()
    assert [(j.key, j.kind) for j in jobs] == [
        ("p/public", "http"),
        ("p/admin", "login"),
        ("canary/0", "canary"),
        ("canary/1", "canary"),
    ]
    assert all(isinstance(j, ProbeJob) and j.timeout < j.interval for j in jobs)


def test_down_after_failures_spanning_the_threshold_by_probe_start(clock: Any) -> None:
    s = Script(clock, config())
    s.result(0.05, "p/public", OK)
    # Failures started at 1, 6 and 11 s; each took a slightly different time to fail.
    assert s.result(5.0, "p/public", ProbeResult.failure(FailureKind.TIMEOUT, 4.0, "timeout")) is Health.DEGRADED
    assert s.result(9.99, "p/public", ProbeResult.failure(FailureKind.TIMEOUT, 3.99, "timeout")) is Health.DEGRADED
    assert s.result(14.98, "p/public", ProbeResult.failure(FailureKind.TIMEOUT, 3.98, "timeout")) is Health.DOWN
    assert s.changes == [(Health.UNKNOWN, Health.UP), (Health.UP, Health.DEGRADED), (Health.DEGRADED, Health.DOWN)]


def test_a_good_result_elsewhere_does_not_repeat_a_stale_failure(clock: Any) -> None:
    # trigger any: public fails twice (9 s apart at most), admin answers meanwhile. Counting admin's
    # good results as "portal still failing" would make 4 failures over 10 s: a flap reaching DOWN.
    s = Script(clock, config(trigger="any"))
    s.result(0.0, "p/public", OK)
    s.result(0.5, "p/public", FAIL)
    s.result(3.0, "p/admin", OK)
    s.result(5.5, "p/public", FAIL)
    s.result(8.0, "p/admin", OK)
    assert s.result(10.4, "p/admin", OK) is Health.DEGRADED
    assert s.result(10.5, "p/public", OK) is Health.UP
    assert Health.DOWN not in [after for _, after in s.changes]


def test_admin_results_do_not_move_a_public_trigger(clock: Any) -> None:
    s = Script(clock, config(trigger="public"))
    s.result(0.0, "p/public", OK)
    for t in range(1, 40, 5):
        assert s.result(float(t), "p/admin", ProbeResult.failure(FailureKind.LOGIN, 0.1, "login")) is Health.UP
    assert s.monitor.health("p").failing()["admin"].result.error_kind is FailureKind.LOGIN  # still visible


def test_recovery_needs_sustained_successes(clock: Any) -> None:
    s = Script(clock, config())
    for t in (0.0, 5.0, 10.0):
        s.result(t, "p/public", FAIL)
    assert s.monitor.health("p").health is Health.DOWN
    assert s.result(15.0, "p/public", OK) is Health.RECOVERING
    assert s.result(16.0, "p/admin", OK) is Health.RECOVERING  # not the trigger: no count
    assert s.result(20.0, "p/public", OK) is Health.RECOVERING
    assert s.result(25.0, "p/public", OK) is Health.UP


@pytest.mark.parametrize(
    ("canary_results", "expected"),
    [
        pytest.param((False, False), Health.UNKNOWN, id="all-canaries-down"),
        pytest.param((False, True), Health.DEGRADED, id="one-canary-up"),
    ],
)
def test_canaries_gate_the_verdict(clock: Any, canary_results: tuple[bool, bool], expected: Health) -> None:
    s = Script(clock, config(canaries=2))
    s.result(0.0, "p/public", OK)
    s.result(1.0, "canary/0", OK if canary_results[0] else FAIL)
    s.result(1.5, "canary/1", OK if canary_results[1] else FAIL)
    for t in (2.0, 7.0, 12.0, 17.0):
        s.result(t, "p/public", FAIL)
    assert s.monitor.health("p").health is (Health.DOWN if expected is Health.DEGRADED else expected)
    assert s.monitor.network_down() is (expected is Health.UNKNOWN)
