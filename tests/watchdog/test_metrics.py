"""The verdict metrics on a fresh registry: the state gauge is one-hot, transitions are counted."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from watchdog.metrics import WatchdogMetrics
from watchdog.verdict import Health


def states(registry: CollectorRegistry, portal: str) -> dict[str, float | None]:
    return {
        h.value: registry.get_sample_value("portalguard_portal_state", {"portal": portal, "state": h.value})
        for h in Health
    }


def changes(registry: CollectorRegistry, portal: str, to: Health) -> float | None:
    return registry.get_sample_value("portalguard_portal_state_changes_total", {"portal": portal, "to": to.value})


def test_state_is_one_hot_and_changes_are_counted_by_target_state() -> None:
    registry = CollectorRegistry()
    metrics = WatchdogMetrics(registry)
    metrics.declare_portal("p", ["public"])
    assert states(registry, "p") == {h.value: 1.0 if h is Health.UNKNOWN else 0.0 for h in Health}
    assert all(changes(registry, "p", h) == 0.0 for h in Health)  # declared up front, at zero

    for health in (Health.UP, Health.DEGRADED, Health.DOWN, Health.RECOVERING, Health.UP):
        metrics.set_health("p", health, changed=True)
        now = states(registry, "p")
        assert now[health.value] == 1.0 and list(now.values()).count(1.0) == 1 and set(now.values()) == {0.0, 1.0}
        assert registry.get_sample_value("portalguard_portal_up", {"portal": "p"}) == (
            0.0 if health is Health.DOWN else 1.0
        )

    assert {h: changes(registry, "p", h) for h in Health} == {
        Health.UP: 2.0,
        Health.DEGRADED: 1.0,
        Health.DOWN: 1.0,
        Health.RECOVERING: 1.0,
        Health.UNKNOWN: 0.0,
    }


def test_setting_the_same_health_without_a_change_counts_nothing() -> None:
    registry = CollectorRegistry()
    metrics = WatchdogMetrics(registry)
    metrics.declare_portal("p", ["public"])
    metrics.set_health("p", Health.UP, changed=True)
    metrics.set_health("p", Health.UP)
    assert changes(registry, "p", Health.UP) == 1.0
    assert states(registry, "p")["up"] == 1.0
