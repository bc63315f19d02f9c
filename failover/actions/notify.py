"""Action ``notify``: tells staff through Apprise (Slack, e-mail, LINE, SMS gateways...).

Rendering, delivery, exactly-once claims and retries live in ``failover.staff.StaffAlerts``; this
action only decides *which* message an incident needs and when.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import Field, SecretStr

from failover.actions.base import ActionContext, Incident
from failover.staff import Delivery
from watchdog.config_types import PositiveDuration, StrictModel


class NotifyConfig(StrictModel):
    type: Literal["notify"]
    urls: list[SecretStr] = Field(min_length=1, description="Apprise URLs; they carry tokens: use ${VAR}.")
    remind_every: PositiveDuration | None = 7200.0
    language: Literal["ja", "en"] = "ja"
    timeout: PositiveDuration = 15.0


class Notify:
    """Tells staff when the portal's failover goes on (``outage``), while it stays on
    (``reminder`` every ``remind_every``) and when it goes off (``recovered``), through StaffAlerts.

    Each message is claimed per incident (``notify:{portal}:{incident}:{action}:{topic}``), so
    calling apply twice, or again after a restart, never repeats it. "On" means: staff were told of
    the current incident (every target took it) and not yet of its end.
    """

    def __init__(self, name: str, config: NotifyConfig, deps: ActionContext) -> None:
        self.name = name
        self.config = config
        self.deps = deps

    def _key(self, number: int, topic: str) -> str:
        return f"notify:{self.deps.portal_id}:{number}:{self.name}:{topic}"

    async def _delivery(self, number: int, topic: str) -> Delivery:
        return await self.deps.staff.delivery(self._key(number, topic), self.deps.portal_id, via=self.name)

    async def _send(self, topic: str, incident: Incident, claim_as: str | None, **fields: object) -> bool:
        """Send ``topic`` to this action's targets, claimed per incident as ``claim_as`` (drills never)."""
        claim = None if claim_as is None or incident.drill else self._key(incident.number, claim_as)
        return await self.deps.staff.send(
            topic,
            self.deps.portal_id,
            claim=claim,
            drill=incident.drill,
            via=self.name,
            reason=incident.reason,
            since=incident.since,
            measures=self._measures(),
            **fields,
        )

    def _measures(self) -> list[tuple[str, dict[str, str]]]:
        """What the portal switches besides telling staff: (action name, its label by language)."""
        return [(m.name, dict(m.labels)) for m in self.deps.measures if not m.tells_staff]

    async def observe(self) -> bool:
        number = (await self.deps.store.portal(self.deps.portal_id)).incident
        if number == 0:
            return False
        recovered = await self._delivery(number, "recovered")
        if recovered is not Delivery.NONE:
            return recovered is Delivery.FAILING  # still on until staff got the all-clear
        # Claimed is on, even if a target still fails: ``maintain`` retries that target, and on
        # recovery ``revert`` runs, so whoever heard of the outage also hears of its end.
        return await self._delivery(number, "outage") is not Delivery.NONE

    async def apply(self, incident: Incident) -> None:
        await self._send("outage", incident, "outage")

    async def revert(self, incident: Incident) -> None:
        # No all-clear for an outage staff never heard of (e.g. it began and ended while we were down).
        if await self.deps.store.claimed(self._key(incident.number, "outage")):
            await self._send("recovered", incident, "recovered", ended=incident.ended or self.deps.now())

    async def maintain(self, incident: Incident) -> None:
        if await self._delivery(incident.number, "outage") is Delivery.FAILING:
            await self._send("outage", incident, "outage")  # retries only the targets that failed
        every = self.config.remind_every
        if not every or not await self.deps.store.claimed(self._key(incident.number, "outage")):
            return
        # The ordinal comes from the clock, not a counter: a restart neither repeats nor skips one.
        ordinal = int((self.deps.now() - incident.since) // every)
        claim_as = f"reminder:{ordinal}"
        if ordinal >= 1 and await self._delivery(incident.number, claim_as) is not Delivery.SENT:
            await self._send("reminder", incident, claim_as)

    async def check(self) -> str:
        origins = self.deps.staff.validate(self.name)
        return f"{len(origins)} Apprise target(s) parse: {', '.join(origins)} (nothing sent)"

    async def drill(self, incident: Incident) -> str:
        await self._send("outage", replace(incident, drill=True), None)
        return f"drill message sent to {len(self.config.urls)} target(s) of {self.name}"
