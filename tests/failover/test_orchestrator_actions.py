"""The reconciler with real actions: notify and webhook through local receivers, google_ads against
the fake API. What staff and receivers get over a whole incident, stepped with a fake clock."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from prometheus_client import CollectorRegistry

from failover.actions.base import Action
from failover.actions.table import build_action
from failover.fakes.google_ads_server import FakeGoogleAds
from failover.fakes.receivers import JsonReceiver
from failover.metrics import FailoverMetrics
from failover.orchestrator import Orchestrator
from failover.resilient import ResilientStore
from failover.service import action_context, staff_directory
from failover.settings import Settings
from failover.staff import StaffAlerts
from tests.failover.notify_support import (
    PORTAL,
    WEBHOOK_SECRET,
    deliver_all,
    json_target,
    make_settings,
    notify_action,
)
from watchdog.monitor import EndpointView, PortalHealth
from watchdog.result import FailureKind, ProbeResult
from watchdog.verdict import Health

if TYPE_CHECKING:
    from tests.conftest import FakeClock

pytest_plugins = ["tests.failover.receivers_fixtures"]
pytestmark = pytest.mark.anyio

HOUR = 3600.0
REASON = "public: http_status (HTTP 503)"
TZ = ZoneInfo("Asia/Tokyo")


class Rig:
    """One portal whose actions are built from ``settings`` exactly as the service builds them."""

    def __init__(self, settings: Settings, store: ResilientStore, http: httpx.AsyncClient, clock: FakeClock) -> None:
        self.settings, self.store, self.clock = settings, store, clock
        self.down = False
        self.staff = StaffAlerts(staff_directory(settings), store, clock, random.Random(1))
        deps = action_context(settings, PORTAL, store, http, self.staff, clock)
        self.actions: dict[str, Action] = {
            name: build_action(name, settings.actions[name], deps) for name in settings.portals[PORTAL].actions
        }
        self.orch = Orchestrator(
            settings,
            store,
            FailoverMetrics(CollectorRegistry()),
            self.staff,
            {PORTAL: self.actions},
            self._health,
            lambda: False,
            clock,
            random.Random(1),
        )

    def _health(self, pid: str) -> PortalHealth:
        now = self.clock()
        if not self.down:
            return PortalHealth(pid, Health.UP, now, False)
        failed = ProbeResult.failure(FailureKind.HTTP_STATUS, 0.1, "HTTP 503", 503)
        return PortalHealth(pid, Health.DOWN, now, False, {"public": EndpointView("public", failed, now, now)})

    async def tick(self, advance: float = 1.0) -> None:
        self.clock.advance(advance)
        await self.orch.tick()
        await self.orch.drain()
        await deliver_all(self.staff)  # the service's delivery loop, between two ticks
        await self.store.flush()


@pytest.fixture
async def service_store(store_location: str, clock: FakeClock) -> AsyncIterator[ResilientStore]:
    store = ResilientStore(store_location, clock)  # a SQLite file, then a PostgreSQL database
    yield store
    await store.close()


@pytest.fixture
async def ivr() -> AsyncIterator[JsonReceiver]:
    async with JsonReceiver() as receiver:
        yield receiver


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, TZ).isoformat(timespec="seconds")


async def test_the_recovered_notice_tells_the_outage_length_and_cause_on_every_retry(
    hook: JsonReceiver, ivr: JsonReceiver, service_store: ResilientStore, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    settings = make_settings(
        {
            "staff": notify_action(json_target(hook), language="en"),
            "ivr": {"type": "webhook", "url": ivr.url("/ivr"), "secret": WEBHOOK_SECRET},
        }
    )
    rig = Rig(settings, service_store, http, clock)
    rig.down = True
    await rig.tick()
    went_on = clock()
    assert rig.store.sync.portal(PORTAL).failover

    rig.down = False
    ivr.answer_next(503)  # the receiver is busy: the recovered POST is retried
    await rig.tick(HOUR + 5 * 60)
    went_off = clock()
    assert not rig.store.sync.portal(PORTAL).failover
    for _ in range(3):
        await rig.tick(rig.settings.failover.backoff_max)

    recovered = [r.json()["message"] for r in hook.requests if r.json()["title"].startswith("[Recovered]")]
    assert len(recovered) == 1
    assert "Outage: 1 h 5 min" in recovered[0]
    posts = [r.json() for r in ivr.requests if r.json()["state"] == "recovered"]
    assert len(posts) == 2, "the failed recovered POST was not retried"
    for post in posts:  # the retry tells the same story as the first attempt
        assert (post["since"], post["ended"], post["reason"]) == (iso(went_on), iso(went_off), REASON)


# -- the max_active spend guard -------------------------------------------------------------------


@pytest.fixture
def ads() -> Any:
    with FakeGoogleAds(campaigns={"111": ("PAUSED", 3000), "222": ("PAUSED", 5000)}) as server:
        yield server


async def test_max_active_pauses_tells_staff_once_and_an_override_enables_again(
    hook: JsonReceiver, ads: FakeGoogleAds, service_store: ResilientStore, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    settings = make_settings(
        {"staff": notify_action(json_target(hook), language="en"), "ads": ads.action_config(max_active="1h")}
    )
    rig = Rig(settings, service_store, http, clock)
    rig.down = True
    await rig.tick()
    assert (ads.status("111"), ads.status("222")) == ("ENABLED", "ENABLED")

    await rig.tick(HOUR)  # still down, an hour on: the cap pauses the campaigns
    for _ in range(3):
        await rig.tick(60)
    assert (ads.status("111"), ads.status("222")) == ("PAUSED", "PAUSED")
    row = rig.store.sync.action(PORTAL, "ads")
    assert (row.desired, row.observed, row.permanent) == ("on", "off", True), "status must show the pause"
    confirm = [r.json() for r in hook.requests if r.json()["title"].startswith("[Please confirm]")]
    assert len(confirm) == 1
    assert f"/staff/decide/{PORTAL}" in confirm[0]["message"]  # where staff confirm: the decide page
    assert not [r for r in hook.requests if r.json()["title"].startswith("[Action needed]")]

    # What `portalguard failover on epark --reason ...` writes: an override, permanent errors cleared.
    rig.store.sync.set_override(PORTAL, "on", "ads confirmed", None)
    rig.store.sync.clear_permanent_errors(PORTAL)
    await rig.tick()
    assert (ads.status("111"), ads.status("222")) == ("ENABLED", "ENABLED")
    assert rig.store.sync.action(PORTAL, "ads").observed == "on"
    assert sum(r.json()["title"].startswith("[Please confirm]") for r in hook.requests) == 1
