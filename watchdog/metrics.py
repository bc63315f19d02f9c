"""The watchdog's Prometheus metrics. Labels stay small: portal ids, endpoint names, failure kinds."""

from __future__ import annotations

from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from watchdog.result import FailureKind, ProbeResult
from watchdog.verdict import Health

disable_created_metrics()  # *_created series only add noise to every counter

_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def canary_label(url: str) -> str:
    """A canary's label: host and path, never a query string (it may hold a token)."""
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1] + (parts.path if parts.path not in ("", "/") else "")


class WatchdogMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        pe = ["portal", "endpoint"]
        self.probe_success = Gauge("portalguard_probe_success", "1 if the last probe succeeded", pe, registry=registry)
        self.probe_duration = Histogram(
            "portalguard_probe_duration_seconds", "Probe duration", pe, buckets=_BUCKETS, registry=registry
        )
        self.http_status = Gauge(
            "portalguard_probe_http_status_code",
            "HTTP status of the last probe (0: none)",
            pe,
            registry=registry,
        )
        self.failures = Counter(
            "portalguard_probe_failures_total", "Failed probes by reason", [*pe, "reason"], registry=registry
        )
        self.tls_expiry = Gauge(
            "portalguard_tls_cert_expiry_timestamp_seconds",
            "Server certificate notAfter",
            pe,
            registry=registry,
        )
        self.canary_up = Gauge("portalguard_canary_up", "1 if the canary answered", ["canary"], registry=registry)
        self.portal_up = Gauge("portalguard_portal_up", "1 unless the verdict is DOWN", ["portal"], registry=registry)
        self.portal_state = Gauge(
            "portalguard_portal_state", "The verdict, one-hot", ["portal", "state"], registry=registry
        )
        self.state_changes = Counter(
            "portalguard_portal_state_changes_total",
            "Verdict transitions",
            ["portal", "to"],
            registry=registry,
        )
        self.last_cycle = Gauge(
            "portalguard_last_cycle_timestamp_seconds",
            "When the watchdog last handled a probe",
            registry=registry,
        )
        self.lateness = Histogram(
            "portalguard_probe_schedule_lateness_seconds",
            "How late probes started against their schedule",
            buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 5),
            registry=registry,
        )

    def declare_portal(self, portal: str, endpoints: list[str]) -> None:
        """Create every series up front, so dashboards and rules see zeros rather than nothing."""
        for endpoint in endpoints:
            for kind in FailureKind:
                self.failures.labels(portal, endpoint, kind.value)
        for health in Health:
            self.state_changes.labels(portal, health.value)
        self.set_health(portal, Health.UNKNOWN)

    def observe_probe(self, portal: str, endpoint: str, result: ProbeResult, now: float) -> None:
        self.probe_success.labels(portal, endpoint).set(1 if result.ok else 0)
        self.probe_duration.labels(portal, endpoint).observe(result.duration)
        self.http_status.labels(portal, endpoint).set(result.status or 0)
        if result.error_kind is not None:
            self.failures.labels(portal, endpoint, result.error_kind.value).inc()
        if result.tls_expiry is not None:
            self.tls_expiry.labels(portal, endpoint).set(result.tls_expiry)
        self.last_cycle.set(now)

    def observe_canary(self, url: str, ok: bool, now: float) -> None:
        self.canary_up.labels(canary_label(url)).set(1 if ok else 0)
        self.last_cycle.set(now)

    def set_health(self, portal: str, health: Health, changed: bool = False) -> None:
        self.portal_up.labels(portal).set(0 if health is Health.DOWN else 1)
        for h in Health:
            self.portal_state.labels(portal, h.value).set(1 if h is health else 0)
        if changed:
            self.state_changes.labels(portal, health.value).inc()
