"""The availability report of the configured portals: what the config says each one is (its ads
measures), handed with the store's history to the pure computation. The CLI and the staff page
both call this."""

from __future__ import annotations

from failover.report.availability import Availability, availability
from failover.report.history import read_history
from failover.report.period import Period
from failover.settings import Settings
from failover.store import Store

ADS_TYPE = "google_ads"


def ads_measures(settings: Settings, portal: str) -> list[str]:
    """The names of the portal's ads measures (the actions whose minutes the report counts)."""
    return [name for name in settings.portals[portal].actions if settings.actions[name].type == ADS_TYPE]


def reports(settings: Settings, store: Store, portals: list[str], period: Period, now: float) -> list[Availability]:
    """One report per portal, in the order given."""
    out = []
    for pid in portals:
        history = read_history(store, pid, ads_measures(settings, pid), period.start, now)
        out.append(availability(pid, history, period.start, period.end, now))
    return out
