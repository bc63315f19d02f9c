"""The notify action: outage once per incident, reminders on a fake clock, recovered only after an
outage, retries of failed targets (by the outbox), preflight and drill — real Apprise against local
receivers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import pytest

from failover.actions.base import ActionError, Incident
from failover.actions.notify import Notify
from failover.fakes.receivers import JsonReceiver, SmtpReceiver
from failover.store import AsyncStore
from tests.failover.notify_support import (
    PORTAL,
    URL_TOKEN,
    assert_no_secret,
    deliver_all,
    json_target,
    mail_target,
    make_deps,
    make_settings,
    notify_action,
)

if TYPE_CHECKING:
    from tests.conftest import FakeClock

pytest_plugins = ["tests.failover.receivers_fixtures"]
pytestmark = pytest.mark.anyio

HOUR = 3600.0


class Rig:
    """One notify action named ``staff`` of portal ``epark``, over a store file that can be reopened."""

    def __init__(
        self,
        actions: dict[str, dict[str, object]],
        open_store: Callable[[], AsyncStore],
        http: httpx.AsyncClient,
        clock: FakeClock,
    ) -> None:
        self.settings = make_settings({**actions, "page": {"type": "fallback_page"}})
        self.open_store, self.http, self.clock = open_store, http, clock
        self.restart()

    def restart(self) -> None:
        """A new process: new store connection, new StaffAlerts, new action; same file."""
        self.store = self.open_store()
        self.action = Notify(
            "staff", self.settings.actions["staff"], make_deps(self.settings, self.store, self.http, self.clock)
        )  # type: ignore[arg-type]

    async def deliver(self) -> None:
        """What the service's delivery loop does meanwhile."""
        await deliver_all(self.action.deps.staff)  # type: ignore[arg-type]

    def fail_over(self) -> Incident:
        row = self.store.sync.set_failover(PORTAL, True, "public: http_status (HTTP 503)")
        return Incident(PORTAL, row.incident, row.reason, row.since or self.clock())

    def recover(self, incident: Incident) -> Incident:
        self.store.sync.set_failover(PORTAL, False, "portal up")
        return Incident(PORTAL, incident.number, incident.reason, incident.since, ended=self.clock())


@pytest.fixture
def rig(
    hook: JsonReceiver,
    smtp: SmtpReceiver,
    open_store: Callable[[], AsyncStore],
    http: httpx.AsyncClient,
    clock: FakeClock,
) -> Rig:
    staff = notify_action(json_target(hook), mail_target(smtp), remind_every="2h")
    return Rig({"staff": staff}, open_store, http, clock)


def titles(hook: JsonReceiver) -> list[str]:
    return [r.json()["title"] for r in hook.requests]


async def test_outage_is_sent_once_per_incident_even_across_a_restart(
    rig: Rig, hook: JsonReceiver, smtp: SmtpReceiver
) -> None:
    incident = rig.fail_over()
    assert await rig.action.observe() is False

    await rig.action.apply(incident)
    await rig.action.apply(incident)
    assert await rig.action.observe() is True

    await rig.deliver()
    rig.restart()
    assert await rig.action.observe() is True
    await rig.action.apply(incident)
    await rig.deliver()

    assert len(hook.requests) == 1 and len(smtp.messages) == 1
    body = hook.requests[0].json()
    assert body["title"] == "【予約サイト障害】epark：代替受付に切り替えました"
    assert "HTTP 503" in body["message"] and "代替予約ページ (page)" in body["message"]
    assert "https://book.example.jp/book/epark" in body["message"]
    assert "予約サイト障害" in smtp.messages[0].subject


async def test_recovered_once_and_only_after_the_outage(rig: Rig, hook: JsonReceiver, clock: FakeClock) -> None:
    incident = rig.fail_over()
    await rig.action.apply(incident)
    clock.advance(HOUR + 300)
    ended = rig.recover(incident)

    await rig.action.revert(ended)
    await rig.action.revert(ended)
    rig.restart()
    await rig.action.revert(ended)
    assert await rig.action.observe() is False
    await rig.deliver()  # both queued before either went out: the outage goes first

    assert titles(hook)[0].startswith("【予約サイト障害】")
    assert titles(hook)[1] == "【復旧】epark：予約サイトが復旧しました"
    assert "障害時間：1時間5分" in hook.requests[1].json()["message"]
    assert len(hook.requests) == 2


async def test_no_recovered_for_an_outage_staff_never_heard_of(rig: Rig, hook: JsonReceiver, clock: FakeClock) -> None:
    incident = rig.fail_over()  # e.g. it began and ended while the service was down
    clock.advance(60)
    await rig.action.revert(rig.recover(incident))
    await rig.deliver()
    assert hook.requests == []
    assert await rig.action.observe() is False


async def test_each_incident_has_its_own_messages(rig: Rig, hook: JsonReceiver, clock: FakeClock) -> None:
    first = rig.fail_over()
    await rig.action.apply(first)
    await rig.action.revert(rig.recover(first))
    clock.advance(600)
    second = rig.fail_over()
    assert second.number == first.number + 1
    assert await rig.action.observe() is False
    await rig.action.apply(second)
    assert await rig.action.observe() is True
    await rig.deliver()
    assert len(hook.requests) == 3


async def test_reminders_follow_the_clock_without_repeats_or_skips(
    rig: Rig, hook: JsonReceiver, clock: FakeClock
) -> None:
    incident = rig.fail_over()
    await rig.action.apply(incident)

    clock.advance(2 * HOUR - 1)
    await rig.action.maintain(incident)
    await rig.deliver()
    assert len(hook.requests) == 1  # not yet

    clock.advance(1)
    await rig.action.maintain(incident)
    await rig.action.maintain(incident)
    await rig.deliver()
    assert len(hook.requests) == 2
    assert titles(hook)[1] == "【継続中】epark：予約サイトの障害が2時間続いています"

    clock.advance(HOUR)  # 3 h: the same ordinal
    rig.restart()
    await rig.action.maintain(incident)
    await rig.deliver()
    assert len(hook.requests) == 2

    clock.advance(2 * HOUR)  # 5 h: ordinal 2 is due, sent once even after a restart
    await rig.action.maintain(incident)
    rig.restart()
    await rig.action.maintain(incident)
    await rig.deliver()
    assert len(hook.requests) == 3 and "5時間" in titles(hook)[2]

    clock.advance(6 * HOUR)  # 11 h after a long outage of our own: only the current one
    await rig.action.maintain(incident)
    await rig.deliver()
    assert len(hook.requests) == 4 and "11時間" in titles(hook)[3]


async def test_no_reminders_when_disabled_or_before_the_outage_message(
    hook: JsonReceiver, open_store: Callable[[], AsyncStore], http: httpx.AsyncClient, clock: FakeClock
) -> None:
    quiet = Rig({"staff": notify_action(json_target(hook), remind_every=None)}, open_store, http, clock)
    incident = quiet.fail_over()
    clock.advance(3 * HOUR)
    await quiet.action.maintain(incident)  # outage not sent yet: nothing to remind of
    await quiet.action.apply(incident)
    clock.advance(3 * HOUR)
    await quiet.action.maintain(incident)
    await quiet.deliver()
    assert len(hook.requests) == 1


async def test_a_failed_target_is_retried_by_the_outbox_and_still_gets_the_all_clear(
    rig: Rig, hook: JsonReceiver, smtp: SmtpReceiver, clock: FakeClock
) -> None:
    incident = rig.fail_over()
    hook.answer_next(500)
    await rig.action.apply(incident)  # queued: a failing target is the outbox's to retry, not an error
    await rig.deliver()
    assert len(hook.requests) == 1 and len(smtp.messages) == 1
    # On: the mail got the outage, so on recovery ``revert`` must run and tell it.
    assert await rig.action.observe() is True
    (failed,) = [r for r in rig.store.sync.outbox() if r.state == "pending"]
    assert failed.target == "staff#0" and "500" in (failed.last_error or "")
    assert_no_secret(failed.last_error)

    rig.restart()
    clock.advance(600)  # past the backoff
    await rig.deliver()  # only the target that failed
    assert len(hook.requests) == 2 and len(smtp.messages) == 1  # the mail was not sent twice

    await rig.action.revert(rig.recover(incident))
    await rig.deliver()
    assert len(hook.requests) == 3 and len(smtp.messages) == 2
    assert await rig.action.observe() is False


async def test_a_failed_recovered_message_is_retried_until_delivered(
    rig: Rig, hook: JsonReceiver, clock: FakeClock
) -> None:
    incident = rig.fail_over()
    await rig.action.apply(incident)
    await rig.deliver()
    ended = rig.recover(incident)
    hook.answer_next(503)
    await rig.action.revert(ended)
    assert await rig.action.observe() is False  # queued is off: delivering it is the outbox's job
    await rig.deliver()
    rig.restart()
    await rig.action.revert(ended)  # nothing queued twice
    clock.advance(600)
    await rig.deliver()
    assert len(hook.requests) == 3 and titles(hook)[2] == titles(hook)[1]
    assert {r.state for r in rig.store.sync.outbox()} == {"sent"}


async def test_check_parses_and_sends_nothing(rig: Rig, hook: JsonReceiver, smtp: SmtpReceiver) -> None:
    detail = await rig.action.check()
    assert detail.startswith("2 Apprise target(s) parse")
    assert f"127.0.0.1:{smtp.port}" in detail
    assert hook.requests == [] and smtp.messages == []
    assert_no_secret(detail)


async def test_check_rejects_a_bad_url_permanently(
    open_store: Callable[[], AsyncStore], http: httpx.AsyncClient, clock: FakeClock
) -> None:
    bad = Rig({"staff": notify_action(f"json://{URL_TOKEN}:notaport/x")}, open_store, http, clock)
    with pytest.raises(ActionError) as failed:
        await bad.action.check()
    assert failed.value.permanent and "actions.staff.urls[0]" in failed.value.message
    assert_no_secret(failed.value.message)


async def test_drill_sends_a_marked_message_and_claims_nothing(rig: Rig, hook: JsonReceiver, clock: FakeClock) -> None:
    detail = await rig.action.drill(Incident(PORTAL, 0, "drill", clock()))
    assert "2 target(s)" in detail
    (request,) = await hook.wait_for(1)
    assert request.json()["title"].startswith("[訓練/DRILL] 【予約サイト障害】")
    assert await rig.action.observe() is False
    await rig.action.drill(Incident(PORTAL, 0, "drill", clock()))
    assert len(hook.requests) == 2  # a drill may be repeated
    assert rig.store.sync.outbox() == []  # sent at once, never queued


async def test_english(
    hook: JsonReceiver, open_store: Callable[[], AsyncStore], http: httpx.AsyncClient, clock: FakeClock
) -> None:
    english = Rig({"staff": notify_action(json_target(hook), language="en")}, open_store, http, clock)
    await english.action.apply(english.fail_over())
    await english.deliver()
    assert titles(hook) == ["[Booking portal down] epark: switched to fallback booking"]
