"""Service-level duties that run beside the reconciler: preflight gauge, missed announcements,
booking-request retention."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from failover.actions.base import ActionError, Incident
from failover.fakes.receivers import JsonReceiver
from failover.service import Service
from failover.settings import Settings
from failover.store_url import is_database_url
from failover.web.server import ConnectionGuard, http_server
from tests.failover.notify_support import deliver_all

pytestmark = pytest.mark.anyio
DAY = 86400.0


@pytest.fixture
def where(tmp_path: Path, store_location: str) -> tuple[Path, str]:
    """The test's directory and its store: a SQLite file, then a PostgreSQL database."""
    return tmp_path, store_location


def settings(
    where: tuple[Path, str], staff: JsonReceiver, portals: tuple[str, ...] = ("sakura",), **server: object
) -> Settings:
    tmp_path, location = where
    if is_database_url(location):
        server.setdefault("secret_file", str(tmp_path / "web.key"))
    portal = {
        "endpoints": {"public": {"url": "http://127.0.0.1:9/"}},
        "book_url": "http://127.0.0.1:9/",
        "actions": ["staff"],
    }
    return Settings.model_validate(
        {
            "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
            "store": location,
            "server": {"listen": "127.0.0.1:9", "metrics_listen": None, **server},
            "booking": {"retention": "30d"},
            "actions": {"staff": {"type": "notify", "urls": [staff.url("/staff", scheme="json")]}},
            "portals": {pid: portal for pid in portals},
        }
    )


async def leading(svc: Service) -> Service:
    """What ``run()`` waits for before its duties start: on PostgreSQL (several instances may share
    the store) the leader lease; alone on SQLite it leads without one."""
    if svc.leadership is not None:
        await svc.leadership.step()
        assert svc.leadership.is_leader
    return svc


async def shut(svc: Service) -> None:
    await svc.http.aclose()
    await svc.probe_client.aclose()
    await svc.store.close()


class NotReady:
    """An action whose preflight fails (as a portal-specific check would, e.g. its /book page)."""

    name = "staff"

    async def check(self) -> str:
        raise ActionError("not ready for this portal")

    async def drill(self, incident: Incident) -> str:  # pragma: no cover - not called here
        raise AssertionError


async def test_unannounced_booking_requests_are_announced_once(where: tuple[Path, str], clock: Any) -> None:
    async with JsonReceiver() as staff:
        svc = await leading(Service(settings(where, staff), clock))
        first = svc.store.sync.add_request("sakura", {"name": "山田 花子", "phone": "090-1234-5678"})
        await svc.bookings.arrived("sakura", first)  # told when it was stored
        clock.advance(60)
        await svc.bookings.flush_due()
        second = svc.store.sync.add_request("sakura", {"name": "佐藤 太郎", "phone": "090-8765-4321"})  # then: kill -9
        restarted = await leading(Service(settings(where, staff), clock))
        await restarted.bookings.sweep()
        await restarted.bookings.sweep()
        clock.advance(60)
        await restarted.bookings.flush_due()
        await deliver_all(restarted.staff)  # the killed process delivers nothing (on PostgreSQL: fenced out)
        bodies = [str(r.json()) for r in await staff.wait_for(2)]
        assert len(staff.requests) == 2
        # The two messages are delivered concurrently: either may arrive first.
        assert sorted(f"No.{n}" in b for n in (first, second) for b in bodies) == [False, False, True, True]
        assert any(f"No.{first}" in b for b in bodies) and any(f"No.{second}" in b for b in bodies)
        assert not any("山田" in b or "090-" in b for b in bodies), "patient data in a staff message"
        for s in (svc, restarted):
            await shut(s)


async def test_periodic_preflight_sets_the_ready_gauge(where: tuple[Path, str]) -> None:
    async with JsonReceiver() as staff:
        svc = await leading(Service(settings(where, staff)))
        await svc.doctor()
        assert b'portalguard_action_ready{action="staff"} 1.0' in generate_latest(svc.registry)
        await shut(svc)


async def test_a_failed_announcement_is_retried_by_the_outbox(where: tuple[Path, str], clock: Any) -> None:
    async with JsonReceiver() as staff:
        svc = await leading(Service(settings(where, staff), clock))
        number = svc.store.sync.add_request("sakura", {"name": "山田 花子"})
        staff.answer_next(503)
        await svc.bookings.arrived("sakura", number)
        clock.advance(60)
        await svc.bookings.flush_due()
        await deliver_all(svc.staff)
        await svc.bookings.sweep()  # queued already: the sweep queues nothing more
        clock.advance(60)
        await svc.bookings.flush_due()
        await deliver_all(svc.staff)
        assert [r.json()["title"] for r in staff.requests].count(staff.requests[0].json()["title"]) == 2
        assert len(staff.requests) == 2
        await shut(svc)


async def test_a_drill_request_is_announced_as_a_drill(where: tuple[Path, str], clock: Any) -> None:
    async with JsonReceiver() as staff:
        svc = await leading(Service(settings(where, staff), clock))
        await svc.bookings.arrived("sakura", svc.store.sync.add_request("sakura", {"name": "x", "drill": True}))
        clock.advance(60)
        await svc.bookings.flush_due()
        await deliver_all(svc.staff)
        assert "訓練" in (await staff.wait_for(1))[0].json()["title"]
        await shut(svc)


@pytest.mark.parametrize("failing", ["sakura", "ume"], ids=["first-portal-fails", "last-portal-fails"])
async def test_a_shared_action_is_ready_only_if_every_portal_check_passed(
    where: tuple[Path, str], failing: str
) -> None:
    async with JsonReceiver() as staff:
        svc = await leading(Service(settings(where, staff, portals=("sakura", "ume"))))
        svc.actions[failing]["staff"] = NotReady()  # type: ignore[assignment]
        await svc.doctor()
        assert b'portalguard_action_ready{action="staff"} 0.0' in generate_latest(svc.registry)
        svc.actions[failing] = {}  # fixed: the next preflight sets it back
        await svc.doctor()
        assert b'portalguard_action_ready{action="staff"} 1.0' in generate_latest(svc.registry)
        await shut(svc)


async def test_the_hourly_retention_pass_deletes_only_expired_booking_requests(
    where: tuple[Path, str], clock: Any
) -> None:
    async with JsonReceiver() as staff:
        svc = await leading(Service(settings(where, staff), clock))
        old = svc.store.sync.add_request("sakura", {"name": "山田 花子"})
        clock.advance(DAY)
        kept = svc.store.sync.add_request("sakura", {"name": "佐藤 太郎"})
        clock.advance(30 * DAY - DAY / 2)  # `old` is 30.5 days old, `kept` 29.5 days
        await svc._purge()
        assert [r.id for r in svc.store.sync.requests()] == [kept]
        assert svc.store.sync.request(old) is None
        await shut(svc)


async def _client_host(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.client.host if request.client else "-")


@pytest.mark.parametrize(
    ("peer", "seen"),
    [
        pytest.param("172.30.80.1", "203.0.113.7", id="trusted-proxy"),
        pytest.param("172.30.80.9", "172.30.80.9", id="anyone-else"),
    ],
)
async def test_x_forwarded_for_is_believed_only_from_server_trusted_proxies(peer: str, seen: str) -> None:
    settings = Settings.model_validate(
        {
            "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
            "server": {"trusted_proxies": ["127.0.0.1", "172.30.80.1"]},
            "portals": {
                "sakura": {"endpoints": {"public": {"url": "http://127.0.0.1:9/"}}, "book_url": "http://127.0.0.1:9/"}
            },
        }
    )
    server = http_server(Starlette(routes=[Route("/", _client_host)]), settings.server, ConnectionGuard(64, 8))
    server.config.load()  # wraps the app in uvicorn's proxy-headers middleware, as serve() does
    transport = httpx.ASGITransport(server.config.loaded_app, client=(peer, 40000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://portalguard") as web:
        assert (await web.get("/", headers={"X-Forwarded-For": "203.0.113.7"})).text == seen


async def test_the_web_listener_uses_server_trusted_proxies(
    where: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")  # uvicorn's variable: must not widen the trust
    async with JsonReceiver() as staff:
        svc = await leading(Service(settings(where, staff, listen="127.0.0.1:0", trusted_proxies=["172.30.80.1"])))
        ((server, sock),) = svc._servers()
        sock.close()
        assert server.config.forwarded_allow_ips == ["172.30.80.1"]
        assert "FORWARDED_ALLOW_IPS is ignored" in caplog.text and "server.trusted_proxies" in caplog.text
        await shut(svc)
