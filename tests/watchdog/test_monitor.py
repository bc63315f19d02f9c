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


def config(trigger: str = "public", canaries: int = 0, canary_interval: str = "5s") -> WatchdogConfig:
    return WatchdogConfig.model_validate(
        {
            "canaries": [f"http://127.0.0.1:9/c{i}" for i in range(canaries)],
            "canary_interval": canary_interval,
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
    for t in (2.0, 7.0, 12.0, 17.0):
        s.result(t - 1.0, "canary/0", OK if canary_results[0] else FAIL)
        s.result(t - 0.5, "canary/1", OK if canary_results[1] else FAIL)
        s.result(t, "p/public", FAIL)
    assert s.monitor.health("p").health is (Health.DOWN if expected is Health.DEGRADED else expected)
    assert s.monitor.network_down() is (expected is Health.UNKNOWN)


# -- the canary gate: DOWN only once our own network is known to work ------------------------------

REFUSED = ProbeResult.failure(FailureKind.CONNECT, 0.01, "connection refused")  # fails fast
CANARY_TIMEOUT = ProbeResult.failure(FailureKind.TIMEOUT, 4.0, "timeout")  # a black hole: slow


def canary_ok(duration: float = 0.05) -> ProbeResult:
    return ProbeResult.success(duration, 204)


def test_network_dying_right_after_a_canary_success_is_never_down(clock: Any) -> None:
    # The canary answers at 1 s, then our network dies. The portal's probes are refused at once (2,
    # 7, 12 s: the thresholds are met at 12 s) while the next canary, started at 11 s, times out at
    # 15 s. Without the gate the portal would be DOWN (a failover, ads spend) at 12 s.
    s = Script(clock, config(canaries=1, canary_interval="10s"))
    s.result(0.0, "p/public", OK)
    s.result(1.05, "canary/0", canary_ok())
    assert s.result(2.01, "p/public", REFUSED) is Health.DEGRADED
    assert s.result(7.01, "p/public", REFUSED) is Health.DEGRADED
    assert s.result(12.01, "p/public", REFUSED) is Health.DEGRADED  # held: nothing vouches for our network
    assert s.result(15.0, "canary/0", CANARY_TIMEOUT) is Health.UNKNOWN
    assert s.result(17.01, "p/public", REFUSED) is Health.UNKNOWN
    assert s.result(25.0, "canary/0", CANARY_TIMEOUT) is Health.UNKNOWN
    assert Health.DOWN not in [after for _, after in s.changes]


@pytest.mark.parametrize("canaries", [0, 1], ids=["no-canaries", "canary-inside-the-window"])
def test_a_real_outage_is_down_no_later_than_without_the_gate(clock: Any, canaries: int) -> None:
    s = Script(clock, config(canaries=canaries, canary_interval="10s"))
    s.result(0.0, "p/public", OK)
    if canaries:
        s.result(1.05, "canary/0", canary_ok())
    s.result(2.01, "p/public", REFUSED)
    s.result(7.01, "p/public", REFUSED)
    if canaries:
        s.result(11.05, "canary/0", canary_ok())  # started at 11 s, inside the streak (from 2 s)
    assert s.result(12.01, "p/public", REFUSED) is Health.DOWN
    assert s.monitor.health("p").since == pytest.approx(s.start + 12.01)


def test_a_held_portal_is_down_the_moment_the_confirming_canary_arrives(clock: Any) -> None:
    s = Script(clock, config(canaries=1, canary_interval="10s"))
    s.result(0.0, "p/public", OK)
    s.result(1.05, "canary/0", canary_ok())
    for t in (2.01, 7.01, 12.01):
        s.result(t, "p/public", REFUSED)
    assert s.monitor.health("p").health is Health.DEGRADED  # the canary started at 11 s is slow
    assert s.result(13.5, "canary/0", canary_ok(duration=2.5)) is Health.DOWN
    assert s.monitor.health("p").since == s.start + 13.5
    assert s.changes[-1] == (Health.DEGRADED, Health.DOWN)


def test_a_confirming_canary_counts_no_failure_of_its_own(clock: Any) -> None:
    # Two failures (from 2 s) when the canary confirms at 12.5 s: 10.5 s of failing, but only two
    # observations of the portal. Counting the re-check as a third would fail over too early.
    s = Script(clock, config(canaries=1, canary_interval="10s"))
    s.result(0.0, "p/public", OK)
    s.result(2.01, "p/public", REFUSED)
    s.result(7.01, "p/public", REFUSED)
    assert s.result(12.5, "canary/0", canary_ok(duration=1.0)) is Health.DEGRADED
    assert s.result(12.51, "p/public", REFUSED) is Health.DOWN  # started 12.5 s: the third failure


def test_a_canary_started_before_the_streak_confirms_nothing(clock: Any) -> None:
    # Canary results arriving during the streak, but from probes started before it began.
    s = Script(clock, config(canaries=1, canary_interval="10s"))
    s.result(0.0, "p/public", OK)
    s.result(1.99, "p/public", REFUSED)  # the streak begins at 1.98 s
    s.result(5.0, "canary/0", canary_ok(duration=3.5))  # started 1.5 s
    s.result(6.99, "p/public", REFUSED)
    assert s.result(11.99, "p/public", REFUSED) is Health.DEGRADED
    assert s.result(12.0, "canary/0", canary_ok(duration=0.01)) is Health.DOWN  # started 11.99 s


def test_without_any_canary_result_yet_failures_are_held(clock: Any) -> None:
    s = Script(clock, config(canaries=2))
    for t in (0.01, 5.01, 10.01, 15.01):
        assert s.result(t, "p/public", REFUSED) is Health.DEGRADED
    assert s.result(16.0, "canary/1", canary_ok()) is Health.DOWN


# -- network_state --------------------------------------------------------------------------------


def test_network_state_is_unknown_until_every_canary_has_a_result(clock: Any) -> None:
    s = Script(clock, config(canaries=2))
    assert s.monitor.network_state() is None
    s.result(1.0, "canary/0", FAIL)
    assert s.monitor.network_state() is None  # canary/1 not heard from yet
    s.result(1.5, "canary/1", canary_ok())
    assert s.monitor.network_state() is False
    s.result(6.5, "canary/1", FAIL)
    assert s.monitor.network_state() is True
    s.result(11.0, "canary/0", canary_ok())
    assert s.monitor.network_state() is False


def test_network_state_without_canaries_is_up(clock: Any) -> None:
    s = Script(clock, config(canaries=0))
    assert s.monitor.network_state() is False
    s.result(1.0, "p/public", FAIL)
    assert s.monitor.network_state() is False
