"""Turns probe results into per-portal verdicts: the watchdog's one stateful object.

It builds the probe jobs from the config, takes each result (the scheduler's callback), keeps the
latest result per endpoint, feeds the verdict state machines and the metrics, and tells listeners
about verdict changes. Time comes from an injected clock; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from watchdog.metrics import WatchdogMetrics, canary_label
from watchdog.probes import endpoint_kind
from watchdog.result import ProbeResult
from watchdog.scheduler import ProbeJob
from watchdog.targets import WatchdogConfig, endpoint_role
from watchdog.verdict import Health, Observation, Verdict, confirm_network, portal_failing, step, trigger_roles


@dataclass(frozen=True, slots=True)
class EndpointView:
    endpoint: str
    result: ProbeResult
    checked: float  # when this result arrived
    since: float  # when this endpoint began being ok / failing this way
    streak: int = 1  # consecutive results ok / failing this way, this one included


@dataclass(frozen=True, slots=True)
class PortalHealth:
    """A portal's health as the failover side sees it."""

    portal: str
    health: Health
    since: float
    network_down: bool
    endpoints: dict[str, EndpointView] = field(default_factory=dict)
    streak_since: float | None = None  # first failure (DEGRADED/DOWN) or success (RECOVERING)

    def failing(self) -> dict[str, EndpointView]:
        return {name: view for name, view in self.endpoints.items() if not view.result.ok}

    def reason(self) -> str:
        """Short human text for what fails, e.g. ``public: http_status (HTTP 503)``."""
        parts = [
            f"{name}: {view.result.error_kind} ({view.result.detail})"
            if view.result.detail
            else f"{name}: {view.result.error_kind}"
            for name, view in sorted(self.failing().items())
        ]
        return "; ".join(parts) or ("network degraded" if self.network_down else "")


Listener = Callable[[PortalHealth, Health], None]  # (new health, previous health)


class Monitor:
    def __init__(
        self,
        config: WatchdogConfig,
        metrics: WatchdogMetrics,
        clock: Callable[[], float],
        settled: dict[str, Health] | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.clock = clock
        now = clock()
        settled = settled or {}
        self._verdicts = {pid: Verdict.start(now, settled.get(pid)) for pid in config.portals}
        self._endpoints: dict[str, dict[str, EndpointView]] = {pid: {} for pid in config.portals}
        self._canaries: dict[str, bool] = {}
        self._canary_ok_started: float | None = None  # when the latest successful canary probe started
        self.listeners: list[Listener] = []
        self.endpoint_listeners: list[Callable[[str, EndpointView], None]] = []
        for pid, portal in config.portals.items():
            metrics.declare_portal(pid, list(portal.endpoints))

    # -- jobs -----------------------------------------------------------------------------------

    def jobs(self) -> list[ProbeJob]:
        jobs = []
        for pid, portal in self.config.portals.items():
            for name, endpoint in portal.endpoints.items():
                kind = endpoint_kind(endpoint)
                jobs.append(ProbeJob(f"{pid}/{name}", pid, name, kind, endpoint, portal.interval, portal.timeout))
        timeout = min(10.0, self.config.canary_interval * 0.8)
        for i, url in enumerate(self.config.canaries):
            jobs.append(ProbeJob(f"canary/{i}", None, url, "canary", url, self.config.canary_interval, timeout))
        return jobs

    # -- results --------------------------------------------------------------------------------

    def on_result(self, job: ProbeJob, result: ProbeResult, lateness: float = 0.0) -> None:
        now = self.clock()
        self.metrics.lateness.observe(max(lateness, 0.0))
        if job.portal is None:
            self._on_canary(job.endpoint, result, now)
        else:
            self._on_endpoint(job.portal, job.endpoint, result, now)

    def _on_endpoint(self, pid: str, endpoint: str, result: ProbeResult, now: float) -> None:
        self.metrics.observe_probe(pid, endpoint, result, now)
        prev = self._endpoints[pid].get(endpoint)
        same = prev is not None and (prev.result.ok, prev.result.error_kind) == (result.ok, result.error_kind)
        view = (
            EndpointView(endpoint, result, now, prev.since, prev.streak + 1)
            if same and prev
            else EndpointView(endpoint, result, now, now)
        )
        self._endpoints[pid][endpoint] = view
        if not same:
            for listener in self.endpoint_listeners:
                listener(pid, view)
        if self._is_evidence(pid, endpoint, result.ok):
            # What the portal did when the probe was sent: probes start on a fixed schedule, so
            # failures one interval apart are one interval apart, whatever each probe took. (Results
            # of different endpoints may come back out of order; a span that comes out negative
            # simply moves nothing.)
            self._observe(pid, now - result.duration)

    def _is_evidence(self, pid: str, endpoint: str, ok: bool) -> bool:
        """Whether this result is a new observation of the portal.

        Only endpoints the trigger looks at count, and a good result while another endpoint still
        fails says nothing new: counting it would repeat that endpoint's last failure, and a portal
        flapping faster than the thresholds would reach DOWN.
        """
        trigger = self.config.portals[pid].trigger
        if endpoint_role(endpoint) not in trigger_roles(trigger):
            return False
        return not ok or not self._failing(pid)

    def _on_canary(self, url: str, result: ProbeResult, now: float) -> None:
        self.metrics.observe_canary(url, result.ok, now)
        was_down = self.network_down()
        self._canaries[url] = result.ok
        if self.network_down() and not was_down:
            for pid in self.config.portals:  # every verdict turns UNKNOWN at once
                self._observe(pid, now)
        if result.ok:
            # Timed like portal observations: by when the probe started, not when it answered.
            started = now - result.duration
            if self._canary_ok_started is None or started > self._canary_ok_started:
                self._canary_ok_started = started
            for pid in self.config.portals:  # a portal held in DEGRADED for want of this goes DOWN now
                self._confirm(pid, now)

    def network_down(self) -> bool:
        """All canaries fail (each probed at least once). Without canaries: never."""
        urls = self.config.canaries
        return bool(urls) and all(self._canaries.get(u) is False for u in urls)

    def network_state(self) -> bool | None:
        """Whether our own network is down: None until every canary has answered or failed once.

        Right after a start nothing is known yet; a caller that must not announce "network
        restored" on no evidence waits for a bool. Without canaries: False.
        """
        if any(u not in self._canaries for u in self.config.canaries):
            return None
        return self.network_down()

    def _network_confirmed(self, streak_since: float) -> bool:
        """A canary answered a probe started at or after ``streak_since`` (always, without canaries).

        A canary that answered before the portal began failing proves nothing: our network may
        have died since, taking the portal's probes with it before the next canary probe notices.
        """
        if not self.config.canaries:
            return True
        return self._canary_ok_started is not None and self._canary_ok_started >= streak_since

    def _failing(self, pid: str) -> bool:
        by_role: dict[str, bool] = {}
        for name, view in self._endpoints[pid].items():
            role = endpoint_role(name)
            by_role[role] = by_role.get(role, False) or not view.result.ok
        return portal_failing(self.config.portals[pid].trigger, by_role)

    def _observe(self, pid: str, now: float) -> None:
        portal = self.config.portals[pid]
        before = self._verdicts[pid]
        # A failure streak already counting began then; any other failure starts one now.
        streak_since = before.streak_since if before.health is Health.DEGRADED else now
        obs = Observation(self._failing(pid), self.network_down(), self._network_confirmed(streak_since))
        self._set(pid, step(before, obs, now, portal.down_after, portal.up_after))

    def _confirm(self, pid: str, now: float) -> None:
        before = self._verdicts[pid]
        if before.held and self._network_confirmed(before.streak_since):
            self._set(pid, confirm_network(before, now))

    def _set(self, pid: str, after: Verdict) -> None:
        before = self._verdicts[pid]
        self._verdicts[pid] = after
        if after.health is not before.health:
            self.metrics.set_health(pid, after.health, changed=True)
            snapshot = self.health(pid)
            for listener in self.listeners:
                listener(snapshot, before.health)

    # -- views ----------------------------------------------------------------------------------

    def health(self, pid: str) -> PortalHealth:
        v = self._verdicts[pid]
        counting = v.health in (Health.DEGRADED, Health.RECOVERING)
        streak = v.streak_since if counting else (v.since if v.health is Health.DOWN else None)
        return PortalHealth(pid, v.health, v.since, self.network_down(), dict(self._endpoints[pid]), streak)

    def canaries(self) -> dict[str, bool]:
        return {canary_label(u): ok for u, ok in self._canaries.items()}
