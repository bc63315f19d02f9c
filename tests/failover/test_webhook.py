"""The webhook action against a local JSON receiver: payload, signature, error classes, claims."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from failover.actions.base import ActionError, Incident
from failover.actions.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, Webhook, sign, verify
from failover.fakes.receivers import JsonReceiver
from failover.store import AsyncStore
from tests.failover.notify_support import (
    PORTAL,
    URL_TOKEN,
    WEBHOOK_SECRET,
    assert_no_secret,
    make_deps,
    make_settings,
)

if TYPE_CHECKING:
    from tests.conftest import FakeClock

pytest_plugins = ["tests.failover.receivers_fixtures"]
pytestmark = pytest.mark.anyio

PATH = f"/hooks/{URL_TOKEN}"


def build(url: str, store: AsyncStore, http: httpx.AsyncClient, clock: FakeClock, **config: Any) -> Webhook:
    settings = make_settings({"ivr": {"type": "webhook", "url": url, "secret": WEBHOOK_SECRET, **config}})
    return Webhook("ivr", settings.actions["ivr"], make_deps(settings, store, http, clock))  # type: ignore[arg-type]


@pytest.fixture
def store(open_store: Callable[[], AsyncStore]) -> AsyncStore:
    return open_store()


@pytest.fixture
def webhook(hook: JsonReceiver, store: AsyncStore, http: httpx.AsyncClient, clock: FakeClock) -> Webhook:
    return build(hook.url(PATH + "?key=" + URL_TOKEN), store, http, clock, timeout="500ms")


def fail_over(store: AsyncStore) -> Incident:
    row = store.sync.set_failover(PORTAL, True, "public: http_status (HTTP 503)")
    return Incident(PORTAL, row.incident, row.reason, row.since or 0.0)


async def test_apply_posts_the_documented_body(webhook: Webhook, hook: JsonReceiver, store: AsyncStore) -> None:
    incident = fail_over(store)
    await webhook.apply(incident)

    (request,) = hook.requests
    assert request.method == "POST" and request.path == PATH
    assert request.headers["content-type"].startswith("application/json")
    assert request.headers["idempotency-key"] == f"{PORTAL}:1:failover"
    assert request.json() == {
        "portal": PORTAL,
        "state": "failover",
        "reason": "public: http_status (HTTP 503)",
        "incident": 1,
        "since": "2027-01-15T17:00:00+09:00",
        "ended": None,
        "clinic": "さくら歯科",
        "fallback_url": "https://book.example.jp/book/epark",
        "drill": False,
        "sent_at": "2027-01-15T17:00:00+09:00",
    }


async def test_signature_verifies_and_tampering_or_replay_fails(
    webhook: Webhook, hook: JsonReceiver, store: AsyncStore, clock: FakeClock
) -> None:
    await webhook.apply(fail_over(store))
    (request,) = hook.requests
    now = clock()

    assert request.headers[TIMESTAMP_HEADER.lower()] == str(int(now))
    assert request.headers[SIGNATURE_HEADER.lower()].startswith("sha256=")
    assert verify(WEBHOOK_SECRET, request.headers, request.body, now)

    tampered = request.body.replace(b'"failover"', b'"recovered"')
    assert not verify(WEBHOOK_SECRET, request.headers, tampered, now)
    assert not verify("another-secret", request.headers, request.body, now)
    assert not verify(WEBHOOK_SECRET, request.headers, request.body, now + 3600)  # replayed an hour later
    fresh = {**request.headers, TIMESTAMP_HEADER: str(int(now + 3600))}  # new timestamp, old signature
    assert not verify(WEBHOOK_SECRET, fresh, request.body, now + 3600)


def test_sign_is_hmac_sha256_over_timestamp_dot_body() -> None:
    # printf '%s' '1700000000.{}' | openssl dgst -sha256 -hmac key
    expected = "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
    assert sign("key", "1700000000", b"{}") == expected


async def test_observe_follows_what_was_delivered_and_survives_a_restart(
    webhook: Webhook,
    hook: JsonReceiver,
    store: AsyncStore,
    open_store: Callable[[], AsyncStore],
    http: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    assert await webhook.observe() is False
    incident = fail_over(store)
    assert await webhook.observe() is False
    await webhook.apply(incident)
    await webhook.apply(incident)  # delivered already: not sent again
    assert await webhook.observe() is True

    restarted = build(hook.url(PATH), open_store(), http, clock)
    assert await restarted.observe() is True

    clock.advance(600)
    store.sync.set_failover(PORTAL, False, "portal up")
    await restarted.revert(Incident(PORTAL, incident.number, incident.reason, incident.since, ended=clock()))
    assert await webhook.observe() is False
    assert [r.json()["state"] for r in hook.requests] == ["failover", "recovered"]
    recovered = hook.requests[1].json()
    assert recovered["ended"] == "2027-01-15T17:10:00+09:00" and recovered["incident"] == 1

    fail_over(store)  # incident 2: nothing delivered for it yet
    assert await webhook.observe() is False


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(500, False), (503, False), (408, False), (429, False), (400, True), (401, True), (404, True), (302, True)],
    ids=lambda v: str(v),
)
async def test_status_classes(
    webhook: Webhook, hook: JsonReceiver, store: AsyncStore, status: int, permanent: bool
) -> None:
    hook.answer_next(status)
    with pytest.raises(ActionError) as failed:
        await webhook.apply(fail_over(store))
    assert failed.value.permanent is permanent
    assert f"HTTP {status}" in failed.value.message
    assert f"webhook ivr (http://127.0.0.1:{hook.port})" in failed.value.message
    assert await webhook.observe() is False  # claimed only after a 2xx


async def test_a_transient_failure_is_retried_by_the_next_apply(
    webhook: Webhook, hook: JsonReceiver, store: AsyncStore
) -> None:
    incident = fail_over(store)
    hook.answer_next(502)
    with pytest.raises(ActionError):
        await webhook.apply(incident)
    await webhook.apply(incident)
    assert await webhook.observe() is True
    assert len(hook.requests) == 2  # the receiver saw it twice: it must be idempotent


async def test_a_hanging_receiver_times_out(webhook: Webhook, hook: JsonReceiver, store: AsyncStore) -> None:
    hook.hang_next()
    with pytest.raises(ActionError, match=r"no answer within 0\.5s; will retry") as failed:
        await webhook.apply(fail_over(store))
    assert not failed.value.permanent


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_connection_refused_is_transient(store: AsyncStore, http: httpx.AsyncClient, clock: FakeClock) -> None:
    port = closed_port()
    webhook = build(f"http://127.0.0.1:{port}{PATH}", store, http, clock)
    with pytest.raises(ActionError) as failed:
        await webhook.apply(fail_over(store))
    assert not failed.value.permanent and "ConnectError" in failed.value.message
    with pytest.raises(ActionError, match="cannot connect"):
        await webhook.check()


async def test_secrets_stay_out_of_errors_events_and_logs(
    webhook: Webhook, hook: JsonReceiver, store: AsyncStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # `portalguard run` quiets httpx; another test may have run it
    incident = fail_over(store)
    await webhook.apply(incident)
    hook.answer_next(400)
    with pytest.raises(ActionError) as failed:
        await webhook.revert(incident)
    events = json.dumps([e.detail for e in store.sync.events()])
    assert_no_secret(failed.value.message, events, caplog.text)
    assert "HTTP Request: POST http://127.0.0.1" in caplog.text  # httpx logged, without path or query


async def test_check_connects_without_sending_a_request(webhook: Webhook, hook: JsonReceiver) -> None:
    detail = await webhook.check()
    assert detail == f"http://127.0.0.1:{hook.port} reachable, signed; nothing sent"
    assert hook.requests == []


async def test_check_rejects_a_non_http_url(store: AsyncStore, http: httpx.AsyncClient, clock: FakeClock) -> None:
    with pytest.raises(ActionError) as failed:
        await build(f"ftp://files.example.jp/{URL_TOKEN}", store, http, clock).check()
    assert failed.value.permanent and "actions.ivr.url" in failed.value.message
    assert_no_secret(failed.value.message)


async def test_drill_sends_drill_true_and_claims_nothing(
    webhook: Webhook, hook: JsonReceiver, store: AsyncStore, clock: FakeClock
) -> None:
    detail = await webhook.drill(Incident(PORTAL, 0, "drill", clock()))
    assert detail == f"drill POST to http://127.0.0.1:{hook.port}: HTTP 200"
    (request,) = hook.requests
    assert request.json()["drill"] is True and request.json()["state"] == "failover"
    assert request.headers["idempotency-key"].endswith(":drill")
    assert await webhook.observe() is False


async def test_without_secret_there_is_no_signature(
    hook: JsonReceiver, store: AsyncStore, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    settings = make_settings({"ivr": {"type": "webhook", "url": hook.url(PATH)}})
    webhook = Webhook("ivr", settings.actions["ivr"], make_deps(settings, store, http, clock))  # type: ignore[arg-type]
    await webhook.apply(fail_over(store))
    assert SIGNATURE_HEADER.lower() not in hook.requests[0].headers
    with pytest.raises(ActionError) as not_ready:  # it still sends, but the preflight says it is not ready
        await webhook.check()
    assert "UNSIGNED" in not_ready.value.message and "actions.ivr" in not_ready.value.message
