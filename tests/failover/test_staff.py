"""StaffAlerts with real Apprise against local receivers (json:// and mailto:// to aiosmtpd)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from failover.actions.base import ActionError
from failover.fakes.receivers import JsonReceiver, SmtpReceiver
from failover.settings import Settings
from failover.staff import Delivery, StaffAlerts
from failover.store import AsyncStore
from tests.failover.notify_support import (
    PORTAL,
    URL_TOKEN,
    assert_no_secret,
    json_target,
    mail_target,
    make_settings,
    notify_action,
)

pytest_plugins = ["tests.failover.receivers_fixtures"]
pytestmark = pytest.mark.anyio

CLAIM = "network:1:network_degraded"


def two_targets(hook: JsonReceiver, smtp: SmtpReceiver, **extra: object) -> Settings:
    return make_settings({"staff": notify_action(json_target(hook), mail_target(smtp), **extra)})


def events(store: AsyncStore) -> list[dict[str, object]]:
    return [e.detail | {"action": e.action, "portal": e.portal} for e in store.sync.events(kinds=("notify",))]


async def test_sends_to_every_target_in_japanese_by_default(
    hook: JsonReceiver, smtp: SmtpReceiver, open_store: Callable[[], AsyncStore], clock: Callable[[], float]
) -> None:
    store = open_store()
    staff = StaffAlerts(two_targets(hook, smtp), store, clock)

    assert await staff.send("network_degraded", None, since=clock()) is True

    (request,) = await hook.wait_for(1)
    (mail,) = await smtp.wait_for(1)
    assert "監視" in request.json()["title"] and "さくら歯科" in request.json()["message"]
    assert "監視" in mail.subject and "カナリア" in mail.text
    assert mail.rcpt_tos == ["staff@clinic.test"]
    (event,) = events(store)
    assert event == {
        "topic": "network_degraded",
        "sent": True,
        "targets": 2,
        "failed": 0,
        "drill": False,
        "claim": None,
        "retry": False,
        "action": None,
        "portal": None,
    }


async def test_english_action(
    hook: JsonReceiver, open_store: Callable[[], AsyncStore], clock: Callable[[], float]
) -> None:
    settings = make_settings({"staff": notify_action(json_target(hook), language="en")})
    await StaffAlerts(settings, open_store(), clock).send("network_restored", None, since=clock() - 600)
    (request,) = await hook.wait_for(1)
    assert request.json()["title"].startswith("[Monitor network restored]")
    assert "10 min" in request.json()["message"]


async def test_claim_sends_once_even_after_a_restart(
    hook: JsonReceiver, smtp: SmtpReceiver, open_store: Callable[[], AsyncStore], clock: Callable[[], float]
) -> None:
    settings = two_targets(hook, smtp)
    staff = StaffAlerts(settings, open_store(), clock)
    assert await staff.send("network_degraded", None, claim=CLAIM, since=clock()) is True
    assert await staff.send("network_degraded", None, claim=CLAIM, since=clock()) is False

    restarted = StaffAlerts(settings, open_store(), clock)
    assert await restarted.send("network_degraded", None, claim=CLAIM, since=clock()) is False
    assert await restarted.delivery(CLAIM, None) is Delivery.SENT
    assert len(hook.requests) == 1 and len(smtp.messages) == 1


async def test_portal_gets_only_its_notify_actions(
    hook: JsonReceiver, open_store: Callable[[], AsyncStore], clock: Callable[[], float]
) -> None:
    settings = make_settings(
        {
            "mine": notify_action(json_target(hook, "/mine")),
            "other": notify_action(json_target(hook, "/other")),
            "page": {"type": "fallback_page"},
        },
        portal_actions=["mine", "page"],
    )
    staff = StaffAlerts(settings, open_store(), clock)
    await staff.send("flapping", PORTAL, cause="flapping")
    await staff.send("network_degraded", None, since=clock())
    requests = await hook.wait_for(3)
    assert sorted(r.path for r in requests) == ["/mine", "/mine", "/other"]


async def test_apprise_has_threads_of_its_own(
    hook: JsonReceiver, open_store: Callable[[], AsyncStore], clock: Callable[[], float]
) -> None:
    """A hung call elsewhere holds asyncio's shared pool (here its only thread): staff still hear."""
    loop, release = asyncio.get_running_loop(), threading.Event()
    loop.set_default_executor(ThreadPoolExecutor(1))
    hung = loop.run_in_executor(None, release.wait)
    staff = StaffAlerts(make_settings({"staff": notify_action(json_target(hook))}), open_store(), clock)
    try:
        assert await asyncio.wait_for(staff.send("network_restored", None, since=clock() - 600), 10)
    finally:
        release.set()
        await hung
        staff.close()


async def test_failed_target_is_retried_alone(
    hook: JsonReceiver, smtp: SmtpReceiver, open_store: Callable[[], AsyncStore], clock: Callable[[], float]
) -> None:
    store = open_store()
    staff = StaffAlerts(two_targets(hook, smtp), store, clock)
    hook.answer_next(500)

    with pytest.raises(ActionError) as failed:
        await staff.send("network_degraded", None, claim=CLAIM, since=clock())

    err = failed.value
    assert not err.permanent and err.message.startswith("notify staff: 1 of 2 targets")
    assert "actions.staff.urls[0]" in err.message and f"json://127.0.0.1:{hook.port}" in err.message
    assert "500" in err.message
    assert_no_secret(err.message)
    assert await staff.delivery(CLAIM, None) is Delivery.FAILING
    assert len(smtp.messages) == 1

    # The caller retries by sending again with the same claim: only the failed target gets it.
    assert await StaffAlerts(two_targets(hook, smtp), open_store(), clock).send(
        "network_degraded", None, claim=CLAIM, since=clock()
    )
    assert len(hook.requests) == 2 and len(smtp.messages) == 1
    assert await staff.delivery(CLAIM, None) is Delivery.SENT
    assert await staff.send("network_degraded", None, claim=CLAIM, since=clock()) is False
    assert [e["failed"] for e in events(store)] == [1, 0]
    assert [e["retry"] for e in events(store)] == [False, True]


async def test_smtp_refusal_is_transient(
    smtp: SmtpReceiver, open_store: Callable[[], AsyncStore], clock: Callable[[], float]
) -> None:
    staff = StaffAlerts(make_settings({"mail": notify_action(mail_target(smtp))}), open_store(), clock)
    smtp.refuse_next()
    with pytest.raises(ActionError) as failed:
        await staff.send("flapping", PORTAL, cause="x")
    assert not failed.value.permanent
    assert f"mailto://127.0.0.1:{smtp.port}" in failed.value.message
    assert_no_secret(failed.value.message)


async def test_a_hanging_service_times_out(
    hook: JsonReceiver, open_store: Callable[[], AsyncStore], clock: Callable[[], float]
) -> None:
    settings = make_settings({"staff": notify_action(json_target(hook), timeout="300ms")})
    hook.hang_next()
    with pytest.raises(ActionError, match=r"no answer within 0\.3s"):
        await StaffAlerts(settings, open_store(), clock).send("flapping", PORTAL, cause="x")


async def test_secrets_stay_out_of_errors_events_and_logs(
    hook: JsonReceiver,
    smtp: SmtpReceiver,
    open_store: Callable[[], AsyncStore],
    clock: Callable[[], float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    store = open_store()
    staff = StaffAlerts(two_targets(hook, smtp), store, clock)
    await staff.send("flapping", PORTAL, cause="x")
    hook.answer_next(500)
    smtp.refuse_next()
    with pytest.raises(ActionError) as failed:
        await staff.send("flapping", PORTAL, cause="x")
    assert "2 of 2 targets" in failed.value.message
    assert_no_secret(failed.value.message, json.dumps(events(store)), caplog.text)
    assert any(r.name == "apprise" for r in caplog.records)  # Apprise did log, redacted


async def test_booking_request_sends_no_patient_data(
    hook: JsonReceiver, open_store: Callable[[], AsyncStore], clock: Callable[[], float]
) -> None:
    staff = StaffAlerts(make_settings({"staff": notify_action(json_target(hook))}), open_store(), clock)
    await staff.send("booking_request", PORTAL, claim="booking:9", request_id=9, name="山田花子", phone="090-1111-2222")
    (request,) = await hook.wait_for(1)
    text = request.body.decode()
    assert "No.9" in request.json()["title"] and "https://book.example.jp/staff" in request.json()["message"]
    assert "山田" not in text and "090-1111-2222" not in text


async def test_drill_is_marked(
    hook: JsonReceiver, open_store: Callable[[], AsyncStore], clock: Callable[[], float]
) -> None:
    staff = StaffAlerts(make_settings({"staff": notify_action(json_target(hook))}), open_store(), clock)
    await staff.send("outage", PORTAL, drill=True, reason="drill", since=clock())
    (request,) = await hook.wait_for(1)
    assert request.json()["title"].startswith("[訓練/DRILL]")


async def test_validate_parses_without_sending(
    hook: JsonReceiver, smtp: SmtpReceiver, open_store: Callable[[], AsyncStore], clock: Callable[[], float]
) -> None:
    staff = StaffAlerts(two_targets(hook, smtp), open_store(), clock)
    assert staff.validate("staff") == [f"json://127.0.0.1:{hook.port}", f"mailto://127.0.0.1:{smtp.port}"]
    assert hook.requests == [] and smtp.messages == []

    bad = make_settings({"staff": notify_action(json_target(hook), f"nosuchscheme://{URL_TOKEN}")})
    with pytest.raises(ActionError) as failed:
        StaffAlerts(bad, open_store(), clock).validate("staff")
    assert failed.value.permanent and "actions.staff.urls[1] (nosuchscheme://…)" in failed.value.message
    assert_no_secret(failed.value.message)


async def test_no_notify_action_sends_nothing(open_store: Callable[[], AsyncStore], clock: Callable[[], float]) -> None:
    staff = StaffAlerts(make_settings({"page": {"type": "fallback_page"}}), open_store(), clock)
    assert await staff.send("flapping", PORTAL, claim="flapping:epark:1", cause="x") is False
    assert not await staff.store.claimed("flapping:epark:1")  # nothing to claim for


async def test_an_unusable_url_fails_permanently(
    open_store: Callable[[], AsyncStore], clock: Callable[[], float]
) -> None:
    settings = make_settings({"staff": notify_action(f"nosuchscheme://{URL_TOKEN}")})
    with pytest.raises(ActionError) as failed:
        await StaffAlerts(settings, open_store(), clock).send("flapping", PORTAL, cause="x")
    assert failed.value.permanent and "not a valid Apprise URL" in failed.value.message
    assert_no_secret(failed.value.message)


async def test_staff_url_setting_is_the_link_in_messages(tmp_path: Path, hook: JsonReceiver) -> None:
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
    store = AsyncStore(tmp_path / "s.db")
    await StaffAlerts(settings, store).send("booking_request", "p", request_id=7)
    await store.close()
    body = json.dumps((await hook.wait_for(1))[0].json(), ensure_ascii=False)
    assert "https://pg.clinic.lan/staff" in body and "book.example.jp/staff" not in body
