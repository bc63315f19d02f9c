"""Action ``notify``: tells staff through Apprise (Slack, e-mail, LINE, SMS gateways...).

Rendering, the outbox and its delivery live in ``failover.staff.StaffAlerts``; this action only
decides *which* message an incident needs and when (``failover.service.staff_directory`` tells the
staff package who staff are: it never reads the settings).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr

from failover.actions.base import ActionContext, ActionError, Incident
from failover.staff import failure_message
from watchdog.config_types import PositiveDuration, StrictModel

log = logging.getLogger("portalguard.notify")


class NotifyConfig(StrictModel):
    type: Literal["notify"]
    urls: list[SecretStr] = Field(min_length=1, description="Apprise URLs; they carry tokens: use ${VAR}.")
    remind_every: PositiveDuration | None = 7200.0
    language: Literal["ja", "en"] = "ja"
    timeout: PositiveDuration = 15.0


class Notify:
    """Tells staff when the portal's failover goes on (``outage``), while it stays on
    (``reminder`` every ``remind_every``) and when it goes off (``recovered``).

    Each message is claimed per incident (``notify:{portal}:{incident}:{action}:{topic}``) and
    queued in the store's outbox in the same transaction, so calling apply twice, or again after a
    restart, never queues it twice, and the outbox delivers it to every target, across restarts.
    "On" means: the current incident's outage message is queued and its recovered one is not.
    """

    def __init__(self, name: str, config: NotifyConfig, deps: ActionContext) -> None:
        self.name = name
        self.config = config
        self.deps = deps

    def _key(self, number: int, topic: str) -> str:
        return f"notify:{self.deps.portal_id}:{number}:{self.name}:{topic}"

    async def _claimed(self, number: int, topic: str) -> bool:
        return await self.deps.store.claimed(self._key(number, topic))

    async def _enqueue(self, topic: str, incident: Incident, claim_as: str, **fields: object) -> bool:
        return await self.deps.staff.enqueue(
            self._key(incident.number, claim_as),
            topic,
            self.deps.portal_id,
            via=self.name,
            after=None if topic == "outage" else self._key(incident.number, "outage"),
            **self._fields(incident),
            **fields,
        )

    def _fields(self, incident: Incident) -> dict[str, object]:
        return {"reason": incident.reason, "since": incident.since, "measures": self._measures()}

    def _measures(self) -> list[tuple[str, dict[str, str]]]:
        """What the portal switches besides telling staff: (action name, its label by language)."""
        return [(m.name, dict(m.labels)) for m in self.deps.measures if not m.tells_staff]

    async def observe(self) -> bool:
        number = (await self.deps.store.portal(self.deps.portal_id)).incident
        if number == 0:
            return False
        # Queued is on: delivering it to every target, however long that takes, is the outbox's job.
        return await self._claimed(number, "outage") and not await self._claimed(number, "recovered")

    async def apply(self, incident: Incident) -> None:
        await self._enqueue("outage", incident, "outage", **await self._mirror_counts())

    async def _mirror_counts(self) -> dict[str, object]:
        """Today's and tomorrow's booked appointments in the mirror, and when it last synced: counts
        only (names stay behind /staff). Nothing if the portal has no mirror or the store cannot say."""
        if not self.deps.mirrored:
            return {}
        store, pid = self.deps.store, self.deps.portal_id
        today = datetime.fromtimestamp(self.deps.now(), ZoneInfo(self.deps.clinic.timezone)).date()
        try:
            state = await store.mirror_state(pid, today)
            tomorrow = await store.count_appointments(pid, today + timedelta(days=1))
            return {
                "mirror_today": await store.count_appointments(pid, today),
                "mirror_tomorrow": tomorrow,
                "mirror_synced": state.last_success,
            }
        except Exception as err:  # the outage message matters more than its counts
            log.warning("outage message of %s without mirror counts (store: %s)", pid, type(err).__name__)
            return {}

    async def revert(self, incident: Incident) -> None:
        # No all-clear for an outage staff never heard of (e.g. it began and ended while we were down).
        if await self._claimed(incident.number, "outage"):
            await self._enqueue("recovered", incident, "recovered", ended=incident.ended or self.deps.now())

    async def maintain(self, incident: Incident) -> None:
        every = self.config.remind_every
        if not every or not await self._claimed(incident.number, "outage"):
            return
        # The ordinal comes from the clock, not a counter: a restart neither repeats nor skips one.
        ordinal = int((self.deps.now() - incident.since) // every)
        claim_as = f"reminder:{ordinal}"
        if ordinal >= 1 and not await self._claimed(incident.number, claim_as):
            await self._enqueue("reminder", incident, claim_as)

    async def check(self) -> str:
        origins = self.deps.staff.validate(self.name)
        return f"{len(origins)} Apprise target(s) parse: {', '.join(origins)} (nothing sent)"

    async def drill(self, incident: Incident) -> str:
        """Sent at once, never queued or claimed: a drill reports what each target did now."""
        drill = replace(incident, drill=True)
        results = await self.deps.staff.send_now(
            "outage", self.deps.portal_id, via=self.name, drill=True, **self._fields(drill)
        )
        failed = failure_message("outage", results)
        if failed is not None:
            raise ActionError(failed, permanent=all(r.permanent for r in results if not r.ok))
        return f"drill message sent to {len(results)} target(s) of {self.name}"
