"""StaffAlerts and its outbox with real Apprise against local receivers (json:// and mailto:// to
aiosmtpd): queued once per claim, delivered to every target with backoff on an injected clock,
permanent failures, ordering per target, the duplicate marker after a cut send, drills."""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from failover.fakes.receivers import JsonReceiver, SmtpReceiver
from failover.service import staff_directory
from failover.settings import Settings
from failover.staff import DUPLICATE_MARKER, StaffAlerts
from failover.staff.alerts import BACKOFF_CAP, backoff
from failover.store import AsyncStore
from tests.failover.notify_support import (
    PORTAL,
    URL_TOKEN,
    assert_no_secret,
    deliver_all,
    json_target,
    mail_target,
    make_settings,
    make_staff,
    notify_action,
)

if TYPE_CHECKING:
    from tests.conftest import FakeClock

pytest_plugins = ["tests.failover.receivers_fixtures"]
pytestmark = pytest.mark.anyio

CLAIM = "network:1:network_degraded"
RESTORED = "network:1:network_restored"


@pytest.fixture
def db_path(store_location: str) -> str:
    """The store ``open_store`` opens (again): a SQLite file, then a PostgreSQL database."""
    return store_location


def two_targets(hook: JsonReceiver, smtp: SmtpReceiver, **extra: object) -> Settings:
    return make_settings({"staff": notify_action(json_target(hook), mail_target(smtp), **extra)})


def events(store: AsyncStore) -> list[dict[str, object]]:
    return [e.detail | {"action": e.action, "portal": e.portal} for e in store.sync.events(kinds=("notify",))]


def states(store: AsyncStore, claim: str | None = None) -> dict[str, str]:
    return {f"{r.claim}>{r.target}": r.state for r in store.sync.outbox(claim)}


async def test_queued_then_delivered_to_every_target_in_japanese_by_default(
    hook: JsonReceiver, smtp: SmtpReceiver, open_store: Callable[[], AsyncStore], clock: FakeClock
) -> None:
    store = open_store()
    staff = make_staff(two_targets(hook, smtp), store, clock)

    assert await staff.enqueue(CLAIM, "network_degraded", None, since=clock()) is True
    assert hook.requests == [] and smtp.messages == []  # queued: the delivery loop sends
    assert states(store) == {f"{CLAIM}>staff#0": "pending", f"{CLAIM}>staff#1": "pending"}
    await deliver_all(staff)

    (request,) = await hook.wait_for(1)
    (mail,) = await smtp.wait_for(1)
    assert "監視" in request.json()["title"] and "さくら歯科" in request.json()["message"]
    assert "監視" in mail.subject and "カナリア" in mail.text
    assert mail.rcpt_tos == ["staff@clinic.test"]
    assert set(states(store).values()) == {"sent"}
    await store.flush()
    assert sorted((e["target"], e["sent"], e["attempt"], e["topic"]) for e in events(store)) == [
        ("staff#0", True, 1, "network_degraded"),
        ("staff#1", True, 1, "network_degraded"),
    ]


async def test_rendered_at_claim_time_in_the_targets_language(
    hook: JsonReceiver, open_store: Callable[[], AsyncStore], clock: FakeClock
) -> None:
    settings = make_settings({"staff": notify_action(json_target(hook), language="en")})
    staff = make_staff(settings, open_store(), clock)
    await staff.enqueue(RESTORED, "network_restored", None, since=clock() - 600, ended=clock())
    clock.advance(3600)  # delivered later: the text says what it said when it was claimed
    await deliver_all(staff)
    (request,) = await hook.wait_for(1)
    assert request.json()["title"].startswith("[Monitor network restored]")
    assert "10 min" in request.json()["message"]


async def test_a_claim_is_queued_once_even_after_a_restart(
    hook: JsonReceiver, smtp: SmtpReceiver, open_store: Callable[[], AsyncStore], clock: FakeClock
) -> None:
    settings = two_targets(hook, smtp)
    staff = make_staff(settings, open_store(), clock)
    assert await staff.enqueue(CLAIM, "network_degraded", None, since=clock()) is True
    assert await staff.enqueue(CLAIM, "network_degraded", None, since=clock()) is False
    await deliver_all(staff)

    restarted = make_staff(settings, open_store(), clock)
    assert await restarted.enqueue(CLAIM, "network_degraded", None, since=clock()) is False
    await deliver_all(restarted)
    assert len(hook.requests) == 1 and len(smtp.messages) == 1


async def test_portal_gets_only_its_notify_actions(
    hook: JsonReceiver, open_store: Callable[[], AsyncStore], clock: FakeClock
) -> None:
    settings = make_settings(
        {
            "mine": notify_action(json_target(hook, "/mine")),
            "other": notify_action(json_target(hook, "/other")),
            "page": {"type": "fallback_page"},
        },
        portal_actions=["mine", "page"],
    )
    staff = make_staff(settings, open_store(), clock)
    await staff.enqueue("flapping:epark:1", "flapping", PORTAL, cause="flapping")
    await staff.enqueue(CLAIM, "network_degraded", None, since=clock())
    await deliver_all(staff)
    requests = await hook.wait_for(3)
    assert sorted(r.path for r in requests) == ["/mine", "/mine", "/other"]


async def test_apprise_has_threads_of_its_own(
    hook: JsonReceiver, open_store: Callable[[], AsyncStore], clock: FakeClock
) -> None:
    """A hung call elsewhere holds asyncio's shared pool (here its only thread): staff still hear."""
    loop, release = asyncio.get_running_loop(), threading.Event()
    loop.set_default_executor(ThreadPoolExecutor(1))
    hung = loop.run_in_executor(None, release.wait)
    staff = make_staff(make_settings({"staff": notify_action(json_target(hook))}), open_store(), clock)
    try:
        await staff.enqueue(RESTORED, "network_restored", None, since=clock() - 600)
        assert await asyncio.wait_for(staff.deliver_due(), 10) == 1
        assert len(hook.requests) == 1
    finally:
        release.set()
        await hung
        staff.close()


async def test_a_failed_target_is_retried_alone_with_backoff_across_a_restart(
    hook: JsonReceiver, smtp: SmtpReceiver, open_store: Callable[[], AsyncStore], clock: FakeClock
) -> None:
    store = open_store()
    staff = make_staff(two_targets(hook, smtp), store, clock)
    hook.answer_next(500, count=2)
    await staff.enqueue(CLAIM, "network_degraded", None, since=clock())
    await deliver_all(staff)
    assert len(hook.requests) == 1 and len(smtp.messages) == 1

    (row,) = [r for r in store.sync.outbox() if r.target == "staff#0"]
    assert row.state == "pending" and row.attempts == 1
    assert 1.0 <= row.next_try - clock() <= 2.0  # 2 s, jittered
    assert row.last_error and "500" in row.last_error
    assert_no_secret(row.last_error)

    assert await staff.deliver_due() == 0  # not due yet: no sleep, the clock decides
    clock.advance(2)
    await deliver_all(staff)
    (row,) = [r for r in store.sync.outbox() if r.target == "staff#0"]
    assert row.attempts == 2 and 2.0 <= row.next_try - clock() <= 4.0

    reopened = open_store()  # a new process: the state is in the store
    restarted = make_staff(two_targets(hook, smtp), reopened, clock)
    clock.advance(4)
    await deliver_all(restarted)
    assert len(hook.requests) == 3 and len(smtp.messages) == 1  # the mail was never sent again
    assert set(states(store).values()) == {"sent"}
    await store.flush()
    await reopened.flush()
    assert [e["sent"] for e in events(store) if e["target"] == "staff#0"] == [False, False, True]


def test_backoff_is_exponential_jittered_and_capped() -> None:
    rng = random.Random(3)
    assert [round(backoff(n, random.Random(0)), 3) for n in (1, 2, 3)] == [
        round(2.0**n * (0.5 + random.Random(0).random() / 2), 3) for n in (1, 2, 3)
    ]
    assert all(BACKOFF_CAP / 2 <= backoff(n, rng) <= BACKOFF_CAP for n in (9, 20, 400))


async def test_an_unusable_url_fails_permanently_and_is_not_retried(
    hook: JsonReceiver, open_store: Callable[[], AsyncStore], clock: FakeClock
) -> None:
    store = open_store()
    settings = make_settings({"staff": notify_action(json_target(hook), f"nosuchscheme://{URL_TOKEN}")})
    staff = make_staff(settings, store, clock)
    await staff.enqueue("flapping:epark:1", "flapping", PORTAL, cause="x")
    await deliver_all(staff)
    clock.advance(BACKOFF_CAP * 2)
    await deliver_all(staff)
    (bad,) = [r for r in store.sync.outbox() if r.target == "staff#1"]
    assert bad.state == "failed" and bad.attempts == 1 and "not a valid Apprise URL" in (bad.last_error or "")
    assert len(hook.requests) == 1
    await store.flush()
    assert_no_secret(json.dumps(events(store)))


async def test_a_second_message_waits_until_that_target_has_the_first(
    hook: JsonReceiver, smtp: SmtpReceiver, open_store: Callable[[], AsyncStore], clock: FakeClock
) -> None:
    store = open_store()
    staff = make_staff(two_targets(hook, smtp), store, clock)
    hook.answer_next(503)
    await staff.enqueue(CLAIM, "network_degraded", None, since=clock())
    await staff.enqueue(RESTORED, "network_restored", None, after=CLAIM, since=clock(), ended=clock())
    await deliver_all(staff)
    # The mail had both, in order; the hook failed the first, so it does not get the second yet.
    assert len(smtp.messages) == 2 and "復旧" not in smtp.messages[0].subject and "復旧" in smtp.messages[1].subject
    assert states(store) == {
        f"{CLAIM}>staff#0": "pending",
        f"{CLAIM}>staff#1": "sent",
        f"{RESTORED}>staff#0": "pending",
        f"{RESTORED}>staff#1": "sent",
    }
    assert len(hook.requests) == 1
    clock.advance(10)
    await deliver_all(staff)
    titles = [r.json()["title"] for r in hook.requests]
    assert len(titles) == 3 and titles[0] == titles[1] and titles[2] != titles[1]


async def test_a_second_message_is_not_queued_for_a_target_that_never_had_the_first(
    hook: JsonReceiver, open_store: Callable[[], AsyncStore], clock: FakeClock
) -> None:
    store = open_store()
    staff = make_staff(make_settings({"staff": notify_action(json_target(hook))}), store, clock)
    await staff.enqueue(RESTORED, "network_restored", None, after=CLAIM, since=clock(), ended=clock())
    await deliver_all(staff)
    assert store.sync.outbox() == [] and hook.requests == []


@pytest.mark.parametrize("language", ["ja", "en"])
async def test_a_send_cut_by_a_crash_goes_out_again_marked_as_a_possible_duplicate(
    language: str, hook: JsonReceiver, open_store: Callable[[], AsyncStore], clock: FakeClock
) -> None:
    settings = make_settings({"staff": notify_action(json_target(hook), language=language)})
    store = open_store()
    await make_staff(settings, store, clock).enqueue("outage:1", "outage", PORTAL, reason="x", since=clock())
    (row,) = store.sync.outbox()
    store.sync.update_outbox_delivery(replace(row, state="sending", attempts=1))  # then kill -9

    restarted = make_staff(settings, open_store(), clock)
    assert await restarted.requeue_interrupted() == 1
    await deliver_all(restarted)
    (request,) = hook.requests
    assert request.json()["message"].endswith(DUPLICATE_MARKER[language])
    (row,) = store.sync.outbox()
    assert row.state == "sent" and row.possible_duplicate and row.attempts == 2
    assert await make_staff(settings, open_store(), clock).requeue_interrupted() == 0  # once


async def test_the_delivery_loop_is_woken_by_enqueue_and_stops(
    hook: JsonReceiver, open_store: Callable[[], AsyncStore]
) -> None:
    staff = make_staff(make_settings({"staff": notify_action(json_target(hook))}), open_store(), lambda: 1e9)
    stop = asyncio.Event()
    loop = asyncio.create_task(staff.run(stop))
    await asyncio.sleep(0.05)
    await staff.enqueue(CLAIM, "network_degraded", None, since=1e9)
    await hook.wait_for(1, 0.9)  # before the loop's once-a-second look: the enqueue woke it
    stop.set()
    await asyncio.wait_for(loop, 5)


async def test_a_hanging_service_times_out_and_is_retried(
    hook: JsonReceiver, open_store: Callable[[], AsyncStore], clock: FakeClock
) -> None:
    store = open_store()
    settings = make_settings({"staff": notify_action(json_target(hook), timeout="300ms")})
    staff = make_staff(settings, store, clock)
    hook.hang_next()
    await staff.enqueue("flapping:epark:1", "flapping", PORTAL, cause="x")
    await deliver_all(staff)
    (row,) = store.sync.outbox()
    assert row.state == "pending" and row.last_error == "no answer within 0.3s"


async def test_secrets_stay_out_of_rows_events_and_logs(
    hook: JsonReceiver,
    smtp: SmtpReceiver,
    open_store: Callable[[], AsyncStore],
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    store = open_store()
    staff = make_staff(two_targets(hook, smtp), store, clock)
    hook.answer_next(500)
    smtp.refuse_next()
    await staff.enqueue("flapping:epark:1", "flapping", PORTAL, cause="x")
    await deliver_all(staff)
    await store.flush()
    rows = [repr(r) for r in store.sync.outbox()]
    assert all(r.state == "pending" for r in store.sync.outbox())
    assert_no_secret(*rows, json.dumps(events(store)), caplog.text)
    assert any(r.name == "apprise" for r in caplog.records)  # Apprise did log, redacted


async def test_booking_request_sends_no_patient_data(
    hook: JsonReceiver, open_store: Callable[[], AsyncStore], clock: FakeClock
) -> None:
    store = open_store()
    staff = make_staff(make_settings({"staff": notify_action(json_target(hook))}), store, clock)
    await staff.enqueue(
        "bookings:9-9/1", "booking_request", PORTAL, count=1, numbers=[9], name="山田花子", phone="090-1111-2222"
    )
    assert "山田" not in repr(store.sync.outbox())
    await deliver_all(staff)
    (request,) = await hook.wait_for(1)
    text = request.body.decode()
    assert (
        "1件" in request.json()["title"]
        and "No.9" in request.json()["message"]
        and "https://book.example.jp/staff" in request.json()["message"]
    )
    assert "山田" not in text and "090-1111-2222" not in text


async def test_drill_sends_at_once_unqueued_with_a_result_per_target(
    hook: JsonReceiver, smtp: SmtpReceiver, open_store: Callable[[], AsyncStore], clock: FakeClock
) -> None:
    store = open_store()
    settings = make_settings({"staff": notify_action(json_target(hook), f"nosuchscheme://{URL_TOKEN}")})
    results = await make_staff(settings, store, clock).send_now("outage", PORTAL, reason="drill", since=clock())
    assert [(r.target.id, r.ok, r.permanent) for r in results] == [("staff#0", True, False), ("staff#1", False, True)]
    (request,) = await hook.wait_for(1)
    assert request.json()["title"].startswith("[訓練/DRILL]")
    assert store.sync.outbox() == [] and not store.sync.claimed("outage")
    assert_no_secret(*(r.detail for r in results))


async def test_validate_parses_without_sending(
    hook: JsonReceiver, smtp: SmtpReceiver, open_store: Callable[[], AsyncStore], clock: FakeClock
) -> None:
    staff = make_staff(two_targets(hook, smtp), open_store(), clock)
    assert staff.validate("staff") == [f"json://127.0.0.1:{hook.port}", f"mailto://127.0.0.1:{smtp.port}"]
    assert hook.requests == [] and smtp.messages == []

    from failover.actions.base import ActionError

    bad = make_settings({"staff": notify_action(json_target(hook), f"nosuchscheme://{URL_TOKEN}")})
    with pytest.raises(ActionError) as failed:
        make_staff(bad, open_store(), clock).validate("staff")
    assert failed.value.permanent and "actions.staff.urls[1] (nosuchscheme://…)" in failed.value.message
    assert_no_secret(failed.value.message)


async def test_no_notify_action_queues_nothing(open_store: Callable[[], AsyncStore], clock: FakeClock) -> None:
    store = open_store()
    staff = make_staff(make_settings({"page": {"type": "fallback_page"}}), store, clock)
    assert await staff.enqueue("flapping:epark:1", "flapping", PORTAL, cause="x") is False
    assert not store.sync.claimed("flapping:epark:1")  # nothing to claim for


async def test_staff_url_setting_is_the_link_in_messages(store_location: str, hook: JsonReceiver) -> None:
    settings = Settings.model_validate(
        {
            "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
            "server": {"public_url": "https://book.example.jp", "staff_url": "https://pg.clinic.lan/staff"},
            "actions": {"staff": {"type": "notify", "urls": [hook.url("/s", scheme="json")]}},
            "portals": {
                "p": {
                    "endpoints": {"public": {"url": "https://x.example/"}},
                    "book_url": "https://x.example/",
                    "actions": ["staff"],
                }
            },
        }
    )
    store = AsyncStore(store_location)
    staff = StaffAlerts(staff_directory(settings), store)
    await staff.enqueue("bookings:7-7/1", "booking_request", "p", count=1, numbers=[7])
    await deliver_all(staff)
    await store.close()
    body = json.dumps((await hook.wait_for(1))[0].json(), ensure_ascii=False)
    assert "https://pg.clinic.lan/staff" in body and "book.example.jp/staff" not in body


def test_the_staff_package_reads_no_settings_and_no_action() -> None:
    """Layering: staff gets plain data (StaffDirectory); notify may import staff, never the reverse."""
    forbidden = ("failover.settings", "failover.actions.notify", "failover.service")
    for path in (Path(__file__).parents[2] / "failover" / "staff").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad = [n for n in names if n.startswith(forbidden)]
            assert not bad, f"{path.name} imports {bad}"
