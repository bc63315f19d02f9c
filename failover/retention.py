"""What is kept how long: booking requests (``booking.retention``), the audit log
(``failover.audit_retention``; the events the availability report reads for at least
``report.history_retention``) and the appointment mirror (each portal's ``mirror.retention``, from
the appointment's start). The service runs ``purge`` hourly; ``requests purge`` by hand.

Appointments of a portal that has no ``mirror`` section (any more) are kept no longer than booking
requests: patient data nobody syncs is not kept for ever.

Send-once records (claims) go with the audit log, except while an incident is open: a claim made
during an outage still in failover is what keeps its messages and webhooks from being sent again
after a restart, however short the audit retention.
"""

from __future__ import annotations

import logging

from failover.report.history import HISTORY_KINDS
from failover.settings import Settings
from failover.store import Store
from watchdog.duration import format_duration

log = logging.getLogger("portalguard.retention")


def purge_expired_requests(store: Store, settings: Settings, now: float) -> int:
    """Delete booking requests older than ``booking.retention``; returns how many."""
    purged = store.purge_requests(now - settings.booking.retention)
    if purged:
        log.info(
            "retention: deleted %d booking request(s) older than %s",
            purged,
            format_duration(settings.booking.retention),
        )
    return purged


def purge_expired_appointments(store: Store, settings: Settings, now: float) -> int:
    """Delete mirrored appointments that started longer ago than their portal's ``mirror.retention``."""
    mirrored: dict[str, float] = {}
    for pid, portal in settings.portals.items():
        mirror = getattr(portal, "mirror", None)
        if mirror is not None:
            mirrored[pid] = float(mirror.retention)
    purged = sum(store.purge_appointments(now - keep, pid) for pid, keep in mirrored.items())
    purged += store.purge_appointments(now - settings.booking.retention, other_than=list(mirrored))
    if purged:
        log.info("retention: deleted %d mirrored appointment(s) past their retention", purged)
    # The subjects of booking mails no template read: kept as long as the longest mirror keeps anything.
    keep = max(mirrored.values(), default=float(settings.booking.retention))
    unread = store.purge_unread_mails(now - keep)
    if unread:
        log.info("retention: deleted %d unread booking mail(s) past their retention", unread)
    return purged + unread


def purge(store: Store, settings: Settings, now: float) -> int:
    """Booking requests, mirrored appointments and the audit log past their retention; returns how
    many rows went."""
    older_than = now - settings.failover.audit_retention
    open_since = [row.outage_since for pid in settings.portals if (row := store.portal(pid)).failover]
    claims_older_than = min([older_than, *[s for s in open_since if s is not None]])
    expired = purge_expired_requests(store, settings, now) + purge_expired_appointments(store, settings, now)
    history_older_than = now - settings.report.history_retention
    return expired + store.purge_audit(older_than, claims_older_than, HISTORY_KINDS, history_older_than)
