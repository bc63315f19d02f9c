"""``report:`` in the config: how long the history the availability report reads is kept."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from watchdog.config_types import Duration, StrictModel, at_least

# Thirteen months of the longest kind (366 + 31 days): this month and the same month a year ago.
THIRTEEN_MONTHS = 397 * 86400.0


class ReportSettings(StrictModel):
    history_retention: Annotated[
        Duration, at_least(THIRTEEN_MONTHS, "the availability report compares a month with the same month a year ago")
    ] = Field(
        400 * 86400.0,
        description="The events the availability report reads (verdicts, failovers, actions, service starts and "
        "stops, booking request times) are kept this long, however short `failover.audit_retention`.",
    )
