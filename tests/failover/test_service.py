"""Service-level duties that run beside the reconciler: preflight gauge, missed announcements."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest

from failover.actions.base import ActionError
from failover.fakes.receivers import JsonReceiver
from failover.service import Service
from failover.settings import Settings

pytestmark = pytest.mark.anyio


def settings(tmp_path: Path, staff: JsonReceiver) -> Settings:
    return Settings.model_validate(
        {
            "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
            "store": str(tmp_path / "pg.db"),
            "server": {"listen": "127.0.0.1:9", "metrics_listen": None},
            "actions": {"staff": {"type": "notify", "urls": [staff.url("/staff", scheme="json")]}},
            "portals": {
                "sakura": {
                    "endpoints": {"public": {"url": "http://127.0.0.1:9/"}},
                    "book_url": "http://127.0.0.1:9/",
                    "actions": ["staff"],
                }
            },
        }
    )


async def test_unannounced_booking_requests_are_announced_once(tmp_path: Path) -> None:
    async with JsonReceiver() as staff:
        svc = Service(settings(tmp_path, staff))
        first = svc.store.add_request("sakura", {"name": "山田 花子", "phone": "090-1234-5678"})
        await svc._announce("sakura", first)  # announced when it was stored
        second = svc.store.add_request("sakura", {"name": "佐藤 太郎", "phone": "090-8765-4321"})  # then: kill -9
        await svc._announce_missed()
        await svc._announce_missed()
        bodies = [str(r.json()) for r in await staff.wait_for(2)]
        assert len(staff.requests) == 2
        assert f"No.{first}" in bodies[0] and f"No.{second}" in bodies[1]
        assert not any("山田" in b or "090-" in b for b in bodies), "patient data in a staff message"
        await svc.http.aclose()
        await svc.probe_client.aclose()


async def test_periodic_preflight_sets_the_ready_gauge(tmp_path: Path) -> None:
    async with JsonReceiver() as staff:
        svc = Service(settings(tmp_path, staff))
        await svc.doctor()
        assert b'portalguard_action_ready{action="staff"} 1.0' in generate_latest(svc.registry)
        await svc.http.aclose()
        await svc.probe_client.aclose()


async def test_a_failed_announcement_is_retried_by_the_sweep(tmp_path: Path) -> None:
    async with JsonReceiver() as staff:
        svc = Service(settings(tmp_path, staff))
        number = svc.store.add_request("sakura", {"name": "山田 花子"})
        staff.answer_next(503)
        with pytest.raises(ActionError):
            await svc._announce("sakura", number)
        await svc._announce_missed()
        await svc._announce_missed()
        assert [r.json()["title"] for r in staff.requests].count(staff.requests[0].json()["title"]) == 2
        await svc.http.aclose()
        await svc.probe_client.aclose()


async def test_a_drill_request_is_announced_as_a_drill(tmp_path: Path) -> None:
    async with JsonReceiver() as staff:
        svc = Service(settings(tmp_path, staff))
        await svc._announce("sakura", svc.store.add_request("sakura", {"name": "x", "drill": True}))
        assert "訓練" in (await staff.wait_for(1))[0].json()["title"]
        await svc.http.aclose()
        await svc.probe_client.aclose()
