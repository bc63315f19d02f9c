"""The reconciler, stepped tick by tick with a fake clock.

The actions here are in-memory switches with injectable faults: the code under test is the
orchestrator (precedence, retries, damping, restart); the real actions have their own tests.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from failover.actions.base import ActionError, Incident
from failover.metrics import FailoverMetrics
from failover.orchestrator import (
    ALERT_AFTER_FAILING,
    CONVERGED_RECHECK,
    NETWORK_CONFIRM_INTERVALS,
    SETTLING_FOR,
    SETTLING_RECHECK,
    Orchestrator,
)
from failover.resilient import ResilientStore
from failover.settings import Settings
from failover.store import StoreError
from failover.store_url import is_database_url
from watchdog.monitor import PortalHealth
from watchdog.verdict import Health

pytestmark = pytest.mark.anyio

PORTAL = "epark"


class Switch:
    """An action whose effect is a boolean; faults are queued per call."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.on = False
        self.calls: list[str] = []
        self.faults: list[Exception] = []  # for apply/revert
        self.observe_faults: list[Exception] = []
        self.incidents: list[Incident] = []  # what each apply/revert was told
        self.gate: asyncio.Event | None = None  # set: apply waits for it (a hung API)

    def _maybe_fail(self) -> None:
        if self.faults:
            raise self.faults.pop(0)

    async def observe(self) -> bool:
        self.calls.append("observe")
        if self.observe_faults:
            raise self.observe_faults.pop(0)
        return self.on

    async def apply(self, incident: Incident) -> None:
        self.calls.append("apply")
        self.incidents.append(incident)
        if self.gate is not None:
            await self.gate.wait()
        self._maybe_fail()
        self.on = True

    async def revert(self, incident: Incident) -> None:
        self.calls.append("revert")
        self.incidents.append(incident)
        self._maybe_fail()
        self.on = False

    async def maintain(self, incident: Incident) -> None:
        self.calls.append("maintain")

    async def check(self) -> str:
        return "ready"

    async def drill(self, incident: Incident) -> str:
        return "drilled"


class StaffRecorder:
    """Records the staff messages queued (claimed in the real store, as ``StaffAlerts.enqueue`` does;
    delivering them is the outbox's, tested in test_staff)."""

    def __init__(self, store: ResilientStore) -> None:
        self.store = store
        self.sent: list[tuple[str, str | None, dict[str, Any]]] = []
        self.after: dict[str, str | None] = {}
        self.delivered: set[str] = set()  # the claims queued

    async def enqueue(
        self, claim: str, topic: str, portal: str | None, *, after: str | None = None, **fields: Any
    ) -> bool:
        if not await self.store.enqueue(claim, []):
            return False
        self.delivered.add(claim)
        self.after[claim] = after
        self.sent.append((topic, portal, fields))
        return True


def make_settings(tmp_path: Any, location: str) -> Settings:
    """``location``: the ``store_location`` fixture's, a SQLite file or a PostgreSQL database."""
    server = {"secret_file": str(tmp_path / "web.key")} if is_database_url(location) else {}
    return Settings.model_validate(
        {
            "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
            "store": location,
            "server": server,
            "failover": {"max_switches_per_hour": 3},
            "actions": {"page": {"type": "fallback_page"}, "ads": {"type": "fallback_page"}},
            "portals": {
                PORTAL: {
                    "endpoints": {"public": {"url": "http://127.0.0.1:9/"}},
                    "book_url": "http://127.0.0.1:9/book",
                    "actions": ["page", "ads"],
                    "min_failover": "5m",
                }
            },
        }
    )


OPENED: list[ResilientStore] = []  # closed after each test (a PostgreSQL store holds connections)


class Rig:
    def __init__(self, tmp_path: Any, location: str, clock: Any, store: ResilientStore | None = None) -> None:
        self.clock = clock
        self.settings = make_settings(tmp_path, location)
        self.metrics = FailoverMetrics(CollectorRegistry())
        self.store = store or ResilientStore(self.settings.store, clock, self.metrics)
        OPENED.append(self.store)
        self.health = Health.UP
        self.network: bool | None = False  # None: not every canary probed yet
        self.staff = StaffRecorder(self.store)
        self.page, self.ads = Switch("page"), Switch("ads")
        self.orch = Orchestrator(
            self.settings,
            self.store,
            self.metrics,
            self.staff,  # type: ignore[arg-type]
            {PORTAL: {"page": self.page, "ads": self.ads}},
            lambda pid: PortalHealth(pid, self.health, clock(), bool(self.network)),
            lambda: self.network,
            clock,
            random.Random(1),
        )

    async def tick(self, advance: float = 1.0) -> None:
        self.clock.advance(advance)
        await self.orch.tick()
        await asyncio.sleep(0)  # let the rounds start
        await asyncio.wait_for(self.orch.drain(), 5)
        await self.store.flush()  # the fire-and-forget writes (events) are in the file for the asserts

    def row(self, name: str) -> Any:
        return self.store.sync.action(PORTAL, name)


@pytest.fixture(autouse=True)
async def close_stores() -> AsyncIterator[None]:
    yield
    while OPENED:
        await OPENED.pop().close()


@pytest.fixture
def rig(tmp_path: Any, store_location: str, clock: Any) -> Rig:
    return Rig(tmp_path, store_location, clock)


async def test_down_switches_every_action_on_in_one_tick(rig: Rig) -> None:
    rig.health = Health.DOWN
    await rig.tick()
    assert rig.page.on and rig.ads.on
    assert rig.store.sync.portal(PORTAL).failover
    assert (rig.row("ads").desired, rig.row("ads").observed) == ("on", "on")
    kinds = [e.kind for e in rig.store.sync.events(PORTAL)]
    assert kinds.count("failover") == 1 and kinds.count("action") == 2


async def test_recovery_waits_for_min_failover(rig: Rig) -> None:
    rig.health = Health.DOWN
    await rig.tick()
    rig.health = Health.UP
    await rig.tick(299)
    assert rig.page.on, "switched off before min_failover"
    await rig.tick(1)
    assert not rig.page.on and not rig.ads.on and not rig.store.sync.portal(PORTAL).failover


async def test_transient_error_backs_off_and_retries(rig: Rig) -> None:
    rig.ads.faults = [ActionError("API unavailable")]
    rig.health = Health.DOWN
    await rig.tick()
    row = rig.row("ads")
    assert not rig.ads.on and row.attempts == 1 and row.last_error == "API unavailable" and not row.permanent
    assert rig.page.on, "one failing action blocked another"
    wait = row.next_attempt - rig.clock()
    assert 0.5 <= wait <= 2.0
    applies = rig.ads.calls.count("apply")
    await rig.tick(wait / 4)
    assert rig.ads.calls.count("apply") == applies, "retried before the backoff elapsed"
    await rig.tick(wait)
    assert rig.ads.on and rig.row("ads").attempts == 0 and rig.row("ads").last_error is None


async def test_backoff_grows_and_is_capped(rig: Rig) -> None:
    rig.health = Health.DOWN
    waits = []
    for _ in range(12):
        rig.ads.faults = [ActionError("still failing")]
        await rig.tick()
        row = rig.row("ads")
        waits.append(row.next_attempt - rig.clock())
        rig.clock.advance(waits[-1])
    assert waits[0] < waits[3] < waits[6]
    assert max(waits) <= rig.settings.failover.backoff_max


async def test_permanent_error_stops_retrying_and_alerts_once(rig: Rig) -> None:
    rig.ads.faults = [ActionError("bad credentials: fix ads.credentials", permanent=True)]
    rig.health = Health.DOWN
    for _ in range(5):
        await rig.tick(60)
    assert rig.ads.calls.count("apply") == 1
    assert rig.row("ads").permanent
    alerts = [s for s in rig.staff.sent if s[0] == "action_failed"]
    assert len(alerts) == 1 and alerts[0][2]["action"] == "ads"
    assert rig.page.on


async def test_hung_action_never_blocks_the_tick_or_others(rig: Rig) -> None:
    rig.ads.gate = asyncio.Event()
    rig.health = Health.DOWN
    rig.clock.advance(1)
    await rig.orch.tick()
    await asyncio.sleep(0.01)
    assert rig.page.on and not rig.ads.on
    await rig.orch.tick()  # a second tick does not start a second round of the hung action
    await asyncio.sleep(0.01)
    assert rig.ads.calls.count("apply") == 1
    rig.ads.gate.set()
    await asyncio.wait_for(rig.orch.drain(), 5)
    assert rig.ads.on


async def test_converged_actions_are_not_observed_every_tick(rig: Rig) -> None:
    await rig.tick(SETTLING_FOR)  # off and observed off, long after the start
    before = rig.ads.calls.count("observe")
    for _ in range(10):
        await rig.tick(1)
    assert rig.ads.calls.count("observe") == before
    await rig.tick(CONVERGED_RECHECK)
    assert rig.ads.calls.count("observe") == before + 1


async def test_after_a_start_or_a_switch_a_late_mutation_is_undone_within_seconds(rig: Rig) -> None:
    # kill -9 while an ENABLE was in flight; the restarted service paused; the late ENABLE landed:
    # the campaign stayed ENABLED 53.6 s while status said off. Now it is looked at every 5 s.
    await rig.tick()  # just started: observed off
    rig.ads.on = True  # the late mutation lands
    for _ in range(int(SETTLING_RECHECK)):
        await rig.tick(1)
    assert not rig.ads.on and rig.ads.calls.count("revert") == 1
    rig.health = Health.DOWN
    await rig.tick(SETTLING_FOR)  # a switch, long after the start: settling again
    rig.health = Health.UP
    await rig.tick(301)  # min_failover passed: switched off
    assert not rig.ads.on
    rig.ads.on = True
    await rig.tick(SETTLING_RECHECK)
    assert not rig.ads.on and rig.ads.calls.count("revert") == 3
    await rig.tick(SETTLING_FOR)  # settled: back to the slow re-check
    rig.ads.on = True
    await rig.tick(SETTLING_RECHECK)
    assert rig.ads.on


async def test_outside_change_is_healed(rig: Rig) -> None:
    await rig.tick()
    rig.ads.on = True  # someone enabled the campaign by hand
    await rig.tick(CONVERGED_RECHECK)
    assert not rig.ads.on and "revert" in rig.ads.calls


async def test_while_on_upkeep_runs_every_tick_without_observing(rig: Rig) -> None:
    rig.health = Health.DOWN
    await rig.tick()
    await rig.tick(SETTLING_FOR)  # past the re-checks that follow a switch
    observes = rig.ads.calls.count("observe")
    for _ in range(5):
        await rig.tick(1)
    assert rig.ads.calls.count("maintain") >= 5
    assert rig.ads.calls.count("observe") == observes


async def test_override_wins_and_auto_returns_control(rig: Rig) -> None:
    rig.store.sync.set_override(PORTAL, "on", "drill day", None)
    await rig.tick()
    assert rig.page.on
    rig.store.sync.clear_override(PORTAL)
    await rig.tick(301)
    assert not rig.page.on


async def test_override_expires(rig: Rig) -> None:
    rig.health = Health.DOWN
    rig.store.sync.set_override(PORTAL, "off", "known false alarm", rig.clock() + 60)
    await rig.tick()
    assert not rig.page.on
    await rig.tick(61)
    assert rig.page.on


async def test_flapping_portal_is_held_on_and_escalated_once(rig: Rig) -> None:
    for _ in range(3):  # three outages within the hour
        rig.health = Health.DOWN
        await rig.tick(1)
        rig.health = Health.UP
        await rig.tick(301)
    assert rig.page.on, "the third recovery within an hour switched off again"
    for _ in range(3):
        await rig.tick(1)
    assert [s[0] for s in rig.staff.sent].count("flapping") == 1
    (flapping,) = [s[2] for s in rig.staff.sent if s[0] == "flapping"]
    hold = rig.store.sync.value(f"flapping_hold:{PORTAL}")
    first_start = min(e.ts for e in rig.store.sync.events(PORTAL) if e.kind == "failover" and e.detail["to"] == "on")
    assert hold["count"] == 3 and hold["until"] == first_start + 3600 == flapping["held_until"]
    await rig.tick(3600)
    assert not rig.page.on
    assert rig.store.sync.value(f"flapping_hold:{PORTAL}", "gone") is None, "the hold's end is published"


async def test_restart_resumes_without_repeating_effects(tmp_path: Any, store_location: str, clock: Any) -> None:
    first = Rig(tmp_path, store_location, clock)
    first.health = Health.DOWN
    await first.tick()
    # kill -9: a new process, same store file; the world (switches) kept its state
    second = Rig(tmp_path, store_location, clock, ResilientStore(first.settings.store, clock))
    second.page.on, second.ads.on = True, True
    second.health = Health.UNKNOWN  # nothing known yet after the restart
    await second.tick()
    assert "apply" not in second.ads.calls and "revert" not in second.ads.calls
    assert second.store.sync.portal(PORTAL).failover and second.store.sync.portal(PORTAL).incident == 1


async def test_restart_switches_off_a_forgotten_campaign(tmp_path: Any, store_location: str, clock: Any) -> None:
    rig = Rig(tmp_path, store_location, clock)
    rig.ads.on = True  # crashed after enabling, before recording it
    await rig.tick()
    assert not rig.ads.on and rig.row("ads").observed == "off"


def confirmed(rig: Rig) -> float:
    """How long every canary must fail before our own network is told down."""
    return NETWORK_CONFIRM_INTERVALS * rig.settings.canary_interval


async def test_network_loss_alerts_once_and_restoration_follows(rig: Rig) -> None:
    rig.network = True
    rig.health = Health.UNKNOWN
    await rig.tick()
    await rig.tick(confirmed(rig) - 1.5)
    assert rig.staff.sent == [], "one failed canary probe is no outage yet"
    for _ in range(3):
        await rig.tick()
    rig.network = False
    await rig.tick()
    topics = [s[0] for s in rig.staff.sent]
    assert topics == ["network_degraded", "network_restored"]
    assert rig.staff.after["network:1:network_restored"] == "network:1:network_degraded"  # each target: in order
    assert not rig.store.sync.portal(PORTAL).failover


async def test_a_staff_alert_is_queued_once_and_left_to_the_outbox(rig: Rig) -> None:
    rig.ads.faults = [ActionError("campaign 111 not found in customer 123-456-7890", permanent=True)]
    rig.health = Health.DOWN
    await rig.tick()
    for _ in range(3):
        await rig.tick(rig.settings.failover.backoff_max)
    assert [s[0] for s in rig.staff.sent] == ["action_failed"]
    (claim,) = rig.staff.delivered
    assert rig.store.sync.claimed(claim)  # queued in the store: a restart does not queue it again
    assert not hasattr(rig.orch, "_alerts"), "no undelivered alerts kept in memory"


async def test_a_store_error_skips_a_tick_but_never_stops_the_reconciler(rig: Rig) -> None:
    import sqlite3

    real_tick, calls, stop = rig.orch.tick, [], asyncio.Event()
    # What a read failing in the store raises: the driver's error on SQLite, the store's own on PostgreSQL.
    failure: Exception = (
        StoreError("store x: the database system is shutting down")
        if is_database_url(rig.settings.store)
        else sqlite3.OperationalError("database is locked")
    )

    async def flaky_tick() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise failure
        await real_tick()
        stop.set()  # the tick after the failed one ran: enough

    rig.orch.tick = flaky_tick  # type: ignore[method-assign]
    rig.health = Health.DOWN
    await asyncio.wait_for(rig.orch.run(stop), 5)
    assert rig.page.on and len(calls) == 2


async def test_a_restart_during_a_network_outage_is_not_a_new_episode(
    tmp_path: Any, store_location: str, clock: Any
) -> None:
    first = Rig(tmp_path, store_location, clock)
    first.network, first.health = True, Health.UNKNOWN
    await first.tick()
    await first.tick(confirmed(first))
    second = Rig(
        tmp_path, store_location, clock, ResilientStore(first.settings.store, clock)
    )  # kill -9, restart, still down
    second.network, second.health = True, Health.UNKNOWN
    await second.tick()
    second.network = False
    await second.tick()
    assert [s[0] for s in first.staff.sent] == ["network_degraded"]
    assert [s[0] for s in second.staff.sent] == ["network_restored"]


async def test_a_restart_while_the_network_is_not_known_yet_announces_nothing(
    tmp_path: Any, store_location: str, clock: Any
) -> None:
    first = Rig(tmp_path, store_location, clock)
    first.network, first.health = True, Health.UNKNOWN
    await first.tick()
    await first.tick(confirmed(first))
    second = Rig(
        tmp_path, store_location, clock, ResilientStore(first.settings.store, clock)
    )  # restart during our own outage
    second.health = Health.UNKNOWN
    second.network = None  # the monitor has not probed every canary yet
    await second.tick()
    second.network = True  # probed: still down, the same episode
    await second.tick()
    assert [s[0] for s in first.staff.sent] == ["network_degraded"]
    assert second.staff.sent == [], "a false 'restored' or a second 'degraded'"
    second.network = False
    await second.tick()
    assert [s[0] for s in second.staff.sent] == ["network_restored"]


async def test_a_retried_revert_is_told_the_same_outage(rig: Rig) -> None:
    rig.health = Health.DOWN
    await rig.tick()
    went_on = rig.clock()
    rig.health = Health.UP
    rig.ads.faults = [ActionError("ads: API unavailable; will retry")]
    await rig.tick(600)
    went_off = rig.clock()
    await rig.tick(rig.settings.failover.backoff_max)
    assert not rig.ads.on
    reverts = [i for i in rig.ads.incidents if i.ended is not None]
    assert len(reverts) == 2
    assert all((i.number, i.since, i.ended) == (1, went_on, went_off) for i in reverts)


async def test_a_revert_failing_for_long_alerts_staff_once_and_keeps_retrying(rig: Rig) -> None:
    rig.health = Health.DOWN
    await rig.tick()
    rig.health = Health.UP
    rig.ads.faults = [ActionError("ads: API unavailable; will retry")] * 12
    await rig.tick(300)  # failover off: pausing the ads fails
    first_failure = rig.clock()
    while rig.ads.faults:
        alerts = [s for s in rig.staff.sent if s[0] == "action_failed"]
        assert len(alerts) == (1 if rig.clock() - first_failure >= ALERT_AFTER_FAILING else 0), rig.clock()
        await rig.tick(rig.row("ads").next_attempt - rig.clock())  # each retry as soon as it is due
    assert rig.clock() - first_failure > ALERT_AFTER_FAILING, "the script ended before the alert was due"
    await rig.tick(rig.row("ads").next_attempt - rig.clock())  # the faults are over
    assert not rig.ads.on and rig.row("ads").observed == "off", "the retries stopped"
    alerts = [s for s in rig.staff.sent if s[0] == "action_failed"]
    assert len(alerts) == 1
    assert alerts[0][2]["action"] == "ads" and alerts[0][2]["permanent"] is False


async def test_a_blip_the_retries_ride_out_pages_nobody(rig: Rig) -> None:
    rig.ads.faults = [ActionError("ads: API unavailable; will retry")] * 5
    rig.health = Health.DOWN
    await rig.tick()
    while rig.ads.faults:
        await rig.tick(rig.row("ads").next_attempt - rig.clock())
    await rig.tick(rig.row("ads").next_attempt - rig.clock())
    assert rig.ads.on and rig.row("ads").observed == "on"
    assert not [s for s in rig.staff.sent if s[0] == "action_failed"]


async def test_a_failing_recheck_of_a_measure_already_off_pages_nobody(rig: Rig) -> None:
    await rig.tick()  # healthy: everything off and observed off
    rig.ads.observe_faults = [ActionError("ads: API unavailable; will retry")] * 20
    for _ in range(30):  # ten minutes and more of failing re-checks, nothing to switch
        await rig.tick(CONVERGED_RECHECK)
    assert rig.row("ads").observed == "off" and rig.row("ads").attempts > 1
    assert rig.staff.sent == []


async def test_an_apply_failing_for_long_alerts_staff_even_with_few_attempts(rig: Rig) -> None:
    rig.ads.faults = [ActionError("ads: no answer within 30s; will retry")] * 2
    rig.health = Health.DOWN
    await rig.tick()
    assert rig.staff.sent == []
    await rig.tick(ALERT_AFTER_FAILING)  # the second attempt, three minutes after the first failure
    assert [s[0] for s in rig.staff.sent] == ["action_failed"]
    await rig.tick(rig.settings.failover.backoff_max)
    assert rig.ads.on and len(rig.staff.sent) == 1


async def test_a_crashing_action_is_logged_without_its_text(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    rig.ads.faults = [RuntimeError("POST https://hooks.example.com/services/T0KEN-s3cret failed")]
    rig.health = Health.DOWN
    with caplog.at_level("DEBUG", logger="portalguard.failover"):
        await rig.tick()
    assert "RuntimeError" in caplog.text and "ads" in caplog.text
    assert "s3cret" not in caplog.text and "hooks.example.com" not in caplog.text
    assert rig.row("ads").last_error == "ads: internal error RuntimeError"


async def test_down_while_forced_off_tells_staff_once_per_incident(
    rig: Rig, tmp_path: Any, store_location: str
) -> None:
    """A forgotten `failover off` never leaves the clinic unbookable in silence: DOWN while kept off
    tells staff once, not at every tick nor after a flap through RECOVERING; a new DOWN after UP does."""
    rig.store.sync.set_override(PORTAL, "off", "known false alarm", rig.clock() + 7 * 86400)
    rig.health = Health.DOWN
    for _ in range(3):
        await rig.tick()
    assert not rig.page.on
    told = [s for s in rig.staff.sent if s[0] == "down_while_suppressed"]
    assert len(told) == 1 and told[0][1] == PORTAL
    assert told[0][2]["by"] == "override" and told[0][2]["why"] == "known false alarm"
    rig.health = Health.RECOVERING
    await rig.tick()
    rig.health = Health.DOWN
    await rig.tick()
    assert [s[0] for s in rig.staff.sent].count("down_while_suppressed") == 1, "a flap is the same incident"
    # a restart in the middle of the incident: not told again
    second = Rig(tmp_path, store_location, rig.clock, ResilientStore(rig.settings.store, rig.clock))
    second.health = Health.DOWN
    await second.tick()
    assert not [s for s in second.staff.sent if s[0] == "down_while_suppressed"]
    rig.health = Health.UP
    await rig.tick()
    rig.health = Health.DOWN
    await rig.tick()
    assert [s[0] for s in rig.staff.sent].count("down_while_suppressed") == 2, "a new incident is told"


async def test_down_during_a_suppress_window_tells_staff_once(rig: Rig) -> None:
    now = rig.clock()
    rig.store.sync.add_maintenance(PORTAL, now - 10, now + 3600, "suppress", "vendor upgrade")
    rig.health = Health.DOWN
    await rig.tick()
    await rig.tick()
    (told,) = [s for s in rig.staff.sent if s[0] == "down_while_suppressed"]
    assert told[2]["by"] == "maintenance" and told[2]["window"] >= 1 and not rig.page.on
    kinds = [e.kind for e in rig.store.sync.events(PORTAL)]
    assert "suppressed_down" in kinds


async def test_down_without_suppression_or_with_a_failover_window_tells_nothing_extra(rig: Rig) -> None:
    now = rig.clock()
    rig.store.sync.add_maintenance(PORTAL, now - 10, now + 3600, "failover", "vendor upgrade")
    rig.health = Health.DOWN
    await rig.tick()
    rig.store.sync.set_override(PORTAL, "on", "sure", None)
    await rig.tick()
    assert not [s for s in rig.staff.sent if s[0] == "down_while_suppressed"] and rig.page.on


async def test_a_refused_staff_login_tells_staff_once_whatever_the_trigger(
    tmp_path: Any, store_location: str, clock: Any
) -> None:
    """trigger: public ignores the admin endpoint for the verdict, but a login refused for the
    portal's down_after thresholds (3 results over 30 s) sends one message naming the credentials;
    a success ends the episode, the next refusal is a new one."""
    from watchdog.metrics import WatchdogMetrics
    from watchdog.monitor import Monitor
    from watchdog.result import FailureKind, ProbeResult
    from watchdog.scheduler import ProbeJob

    raw = make_settings(tmp_path, store_location).model_dump(mode="json")
    raw["portals"][PORTAL]["endpoints"]["admin"] = {
        "url": "http://127.0.0.1:9/admin",
        "login": {"username": "staff", "password": "a-password-long-enough", "success_contains": ["Logout"]},
    }
    settings = Settings.model_validate(raw)
    assert settings.portals[PORTAL].trigger == "public"
    metrics = FailoverMetrics(CollectorRegistry())
    store = ResilientStore(settings.store, clock, metrics)
    OPENED.append(store)
    staff = StaffRecorder(store)
    monitor = Monitor(settings, WatchdogMetrics(CollectorRegistry()), clock)
    orch = Orchestrator(settings, store, metrics, staff, {PORTAL: {}}, monitor.health, lambda: False, clock)  # type: ignore[arg-type]
    (admin,) = [j for j in monitor.jobs() if j.endpoint == "admin"]
    public = ProbeJob("p", PORTAL, "public", "http", settings.portals[PORTAL].endpoints["public"], 15, 10)
    refused = ProbeResult(False, 0.1, 200, FailureKind.LOGIN, 'login not accepted: missing text "Logout"')

    async def probe(result: ProbeResult, advance: float = 15.0) -> None:
        clock.advance(advance)
        monitor.on_result(public, ProbeResult(True, 0.1, 200))
        monitor.on_result(admin, result)
        await orch.tick()

    told = lambda: [s for s in staff.sent if s[0] == "login_failed"]  # noqa: E731
    for _ in range(2):  # two refusals over 15 s: not yet the thresholds
        await probe(refused)
    assert not told() and monitor.health(PORTAL).health is Health.UP
    await probe(refused)  # the third, 30 s after the first
    await probe(refused)
    (message,) = told()
    assert message[2]["config_key"] == f"portals.{PORTAL}.endpoints.admin.login" and message[2]["endpoint"] == "admin"
    await probe(ProbeResult(True, 0.1, 200))
    for _ in range(3):
        await probe(refused)
    assert len(told()) == 2, "a refusal after a good login is a new episode"


async def test_one_failed_canary_probe_pages_nobody(rig: Rig) -> None:
    # A busy start or a moment of load can make the only canary's probe time out once.
    rig.network, rig.health = True, Health.UNKNOWN
    await rig.tick()
    rig.network = False  # the next canary probe answers
    await rig.tick(confirmed(rig))
    assert rig.staff.sent == [] and rig.store.sync.value("network_down") in (None, False)
