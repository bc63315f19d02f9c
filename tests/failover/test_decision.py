"""The failover decision: precedence (override > maintenance > verdict) and damping."""

from __future__ import annotations

import pytest

from failover.decision import Inputs, decide
from failover.store import Maintenance, Override
from watchdog.verdict import Health

NOW = 1_800_000_000.0
ON = Override("p", "on", "staff decided", NOW - 60, None)
OFF = Override("p", "off", "false alarm", NOW - 60, None)
SUPPRESS = Maintenance(1, "p", NOW - 60, NOW + 60, "suppress", "planned", NOW - 120)
FORCE = Maintenance(2, "p", NOW - 60, NOW + 60, "failover", "planned", NOW - 120)


def inputs(**kw: object) -> Inputs:
    base = dict(
        now=NOW,
        health=Health.UP,
        failover=False,
        failover_since=None,
        override=None,
        maintenance=None,
        min_failover=300.0,
        starts_last_hour=0,
        max_starts_per_hour=4,
    )
    base.update(kw)
    return Inputs(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        pytest.param({"health": Health.DOWN}, True, id="down-turns-on"),
        pytest.param({"health": Health.UP}, False, id="up-stays-off"),
        pytest.param({"health": Health.DEGRADED}, False, id="degraded-keeps-off"),
        pytest.param(
            {"health": Health.DEGRADED, "failover": True, "failover_since": NOW}, True, id="degraded-keeps-on"
        ),
        pytest.param(
            {"health": Health.RECOVERING, "failover": True, "failover_since": 0.0}, True, id="recovering-keeps-on"
        ),
        pytest.param({"health": Health.UNKNOWN}, False, id="unknown-keeps-off"),
        pytest.param({"health": Health.UNKNOWN, "failover": True, "failover_since": 0.0}, True, id="unknown-keeps-on"),
        pytest.param({"health": Health.UP, "failover": True, "failover_since": 0.0}, False, id="up-turns-off"),
        pytest.param({"health": Health.UP, "override": ON}, True, id="override-on-beats-up"),
        pytest.param({"health": Health.DOWN, "override": OFF}, False, id="override-off-beats-down"),
        pytest.param({"health": Health.DOWN, "maintenance": SUPPRESS}, False, id="suppress-beats-down"),
        pytest.param({"health": Health.UP, "maintenance": FORCE}, True, id="maintenance-failover-beats-up"),
        pytest.param({"health": Health.UP, "maintenance": SUPPRESS, "override": ON}, True, id="override-beats-maint"),
        pytest.param(
            {"health": Health.DOWN, "maintenance": FORCE, "override": OFF}, False, id="override-off-beats-maint"
        ),
    ],
)
def test_precedence(kw: dict[str, object], expected: bool) -> None:
    assert decide(inputs(**kw)).failover is expected


def test_min_failover_holds_on_then_releases() -> None:
    held = decide(inputs(health=Health.UP, failover=True, failover_since=NOW - 299))
    assert held.failover and "min_failover" in held.cause
    assert not decide(inputs(health=Health.UP, failover=True, failover_since=NOW - 300)).failover


def test_flapping_is_held_on_and_flagged() -> None:
    d = decide(inputs(health=Health.UP, failover=True, failover_since=NOW - 600, starts_last_hour=4))
    assert d.failover and d.flapping and "flapping" in d.cause
    calm = decide(inputs(health=Health.UP, failover=True, failover_since=NOW - 600, starts_last_hour=3))
    assert not calm.failover and not calm.flapping


def test_override_off_releases_even_within_min_failover() -> None:
    assert not decide(inputs(health=Health.DOWN, failover=True, failover_since=NOW, override=OFF)).failover
