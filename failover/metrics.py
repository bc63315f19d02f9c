"""The failover side's Prometheus metrics, registered beside the watchdog's in one registry."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

ERROR_KINDS = ("transient", "permanent")


class FailoverMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        pa = ["portal", "action"]
        self.failover_active = Gauge(
            "portalguard_failover_active", "1 while the portal is in failover", ["portal"], registry=registry
        )
        self.transitions = Counter(
            "portalguard_failover_transitions_total", "Failover switches", ["portal", "to"], registry=registry
        )
        self.desired = Gauge("portalguard_action_desired", "1 if the action should be on", pa, registry=registry)
        self.observed = Gauge(
            "portalguard_action_observed", "1 on, 0 off, -1 unknown (as last observed)", pa, registry=registry
        )
        self.errors = Counter(
            "portalguard_action_errors_total", "Failed action attempts", [*pa, "kind"], registry=registry
        )
        self.override_active = Gauge(
            "portalguard_override_active",
            "1 while a manual override is in force",
            ["portal", "mode"],
            registry=registry,
        )
        self.maintenance_active = Gauge(
            "portalguard_maintenance_active",
            "1 while a maintenance window is in force",
            ["portal", "mode"],
            registry=registry,
        )
        self.action_ready = Gauge(
            "portalguard_action_ready",
            "1 if the action's last preflight passed",
            ["action"],
            registry=registry,
        )
        self.booking_requests = Counter(
            "portalguard_booking_requests_total", "Booking requests stored", ["portal"], registry=registry
        )
        self.http_requests = Counter(
            "portalguard_http_requests_total", "HTTP requests served", ["route", "code"], registry=registry
        )

        # A full disk must show before anything is lost: failover goes on from memory meanwhile.
        self.store_writable = Gauge(
            "portalguard_store_writable",
            "1 while the store takes writes, 0 while they fail (failover goes on from memory)",
            registry=registry,
        )
        self.store_writable.set(1)
        # A damaged file does not heal by itself (unlike a full disk): it needs its own alarm.
        self.store_damaged = Gauge(
            "portalguard_store_damaged",
            "1 while SQLite's quick_check finds the store damaged (restore it from the latest backup)",
            registry=registry,
        )
        self.store_damaged.set(0)
        # The one gauge for "the store answers" on either backend (a PostgreSQL server down shows
        # here as a full disk does): what the StoreDown alert watches.
        self.store_up = Gauge(
            "portalguard_store_up",
            "1 while the store (SQLite file or PostgreSQL) answers reads and writes, 0 while it does not",
            registry=registry,
        )
        self.store_up.set(1)

    def declare_portal(self, portal: str, actions: list[str]) -> None:
        self.failover_active.labels(portal).set(0)
        self.booking_requests.labels(portal)
        for to in ("on", "off"):
            self.transitions.labels(portal, to)
        for mode in ("on", "off"):
            self.override_active.labels(portal, mode).set(0)
        for mode in ("suppress", "failover"):
            self.maintenance_active.labels(portal, mode).set(0)
        for action in actions:
            self.desired.labels(portal, action).set(0)
            self.observed.labels(portal, action).set(-1)
            for kind in ERROR_KINDS:
                self.errors.labels(portal, action, kind)


class SiteMetrics:
    """Several instances (sites) on one store: who leads, who lives, what each site sees. Every
    instance exports every site's view, so one scrape of any instance shows the whole picture."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.leader = Gauge(
            "portalguard_leader", "1 while this instance holds the leader lease (it alone acts)", registry=registry
        )
        self.leader.set(0)
        self.site_up = Gauge(
            "portalguard_site_up",
            "1 while the site's heartbeat is fresh (ha.site_stale_after), 0 once it is silent",
            ["site"],
            registry=registry,
        )
        self.portal_site_state = Gauge(
            "portalguard_portal_site_state",
            "1 for the state the site's own verdict of the portal is in (one-hot)",
            ["portal", "site", "state"],
            registry=registry,
        )


class MirrorMetrics:
    """The appointment mirror's health per portal: counts and times, never anything personal."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.last_success = Gauge(
            "portalguard_mirror_last_success_timestamp_seconds",
            "Unix time of the last sync that listed every day of the window",
            ["portal"],
            registry=registry,
        )
        self.appointments = Gauge(
            "portalguard_mirror_appointments",
            "Booked (not cancelled) appointments the mirror holds from today on",
            ["portal"],
            registry=registry,
        )
        self.sync_errors = Counter(
            "portalguard_mirror_sync_errors_total",
            "Syncs that failed, by why (each kind once per sync)",
            ["portal", "kind"],
            registry=registry,
        )
        # The rule MirrorStale compares the last success with each portal's own interval.
        self.interval = Gauge(
            "portalguard_mirror_sync_interval_seconds",
            "The portal's mirror.every: how often its mirror syncs while the portal is up",
            ["portal"],
            registry=registry,
        )
        self.sync_duration = Histogram(
            "portalguard_mirror_sync_duration_seconds",
            "Wall time of one sync of the whole window",
            ["portal"],
            buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
            registry=registry,
        )

        # The mail source (failover.mirror.mail): the mailbox read, and the mails it could not read.
        self.mail_last_success = Gauge(
            "portalguard_mirror_mail_last_success_timestamp_seconds",
            "Unix time of the last check of the mailbox that read every new booking mail",
            ["portal"],
            registry=registry,
        )
        self.mail_unparsed = Counter(
            "portalguard_mirror_mail_unparsed",
            "Mails from an allowed sender that no template could read (listed on /staff/appointments)",
            ["portal"],
            registry=registry,
        )
        self.mail_ignored = Counter(
            "portalguard_mirror_mail_ignored",
            "Mails in the mailbox from senders not in mirror.mail.from (skipped, not listed)",
            ["portal"],
            registry=registry,
        )

    def declare_mail(self, portal: str, last_success: float | None) -> None:
        self.mail_unparsed.labels(portal)
        self.mail_ignored.labels(portal)
        if last_success is not None:
            self.mail_last_success.labels(portal).set(last_success)

    def mail_checked(self, portal: str, now: float) -> None:
        self.mail_last_success.labels(portal).set(now)

    def mail_unparsed_one(self, portal: str) -> None:
        self.mail_unparsed.labels(portal).inc()

    def mail_ignored_one(self, portal: str) -> None:
        self.mail_ignored.labels(portal).inc()

    def declare_portal(self, portal: str, every: float, kinds: tuple[str, ...], last_success: float | None) -> None:
        self.interval.labels(portal).set(every)
        self.appointments.labels(portal)
        self.sync_duration.labels(portal)
        for kind in kinds:
            self.sync_errors.labels(portal, kind)
        if last_success is not None:  # a restart must not look like "never synced" to MirrorStale
            self.last_success.labels(portal).set(last_success)

    def synced(self, portal: str, report: Any, booked: int | None) -> None:
        """After each sync (``failover.mirror.sync.SyncReport``)."""
        self.sync_duration.labels(portal).observe(report.duration)
        if report.ok:
            self.last_success.labels(portal).set(report.started)
        for kind in sorted({f.failure.kind for f in report.failures}):
            self.sync_errors.labels(portal, kind).inc()
        if booked is not None:
            self.appointments.labels(portal).set(booked)
