"""The staff outbox against real ``portalguard run`` processes killed with kill -9: a message whose
send a crash cut, a network alert whose target was down over a restart, booking requests stored
between crashes. Staff may hear a message twice (marked), never not at all, never an end alone."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from failover.fakes.google_ads_server import FakeGoogleAds
from failover.fakes.portal_simulator import CANARY_PATH, PortalSimulator
from failover.fakes.receivers import JsonReceiver
from failover.staff import DUPLICATE_MARKER
from tests.e2e.test_run_process import FORM, PORTAL, Rig, until

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    with FakeGoogleAds(campaigns={"111": ("PAUSED", 3000)}) as ads:
        async with PortalSimulator() as sim, JsonReceiver() as staff, JsonReceiver() as hook:
            r = Rig(tmp_path, sim, ads, staff, hook)
            try:
                yield r
            finally:
                if r.proc and r.proc.returncode is None:
                    await r.kill9()


def titles(rig: Rig) -> list[str]:
    return rig.staff_topics()


def messages(rig: Rig) -> list[str]:
    return [r.json().get("message", "") for r in rig.staff.requests]


async def test_a_send_cut_by_kill9_is_resent_marked_and_the_recovered_comes_after(rig: Rig) -> None:
    await rig.start()
    await until(lambda: rig.converged(False), 30, "healthy portal converged OFF")
    rig.staff.hang_next()  # the outage message reaches the receiver, which never answers
    rig.sim.set_mode("error500", endpoints=("public",))
    await until(lambda: rig.staff.requests, 30, "the outage message in flight")
    await rig.kill9()  # claimed, marked sending, the receiver has it, Apprise has no answer yet

    rig.sim.set_mode("healthy")  # it recovers while we are down: the all-clear must still follow
    await rig.start()
    await until(lambda: len(rig.staff.requests) >= 3, 40, "outage re-sent and then recovered")
    outage, again, recovered = titles(rig)[:3]
    assert again == outage and "障害" in outage, titles(rig)
    assert messages(rig)[1].endswith(DUPLICATE_MARKER["ja"])
    assert "復旧" in recovered and recovered != outage
    await asyncio.sleep(2)
    assert len(rig.staff.requests) == 3, titles(rig)


async def test_a_network_alert_whose_target_failed_is_delivered_after_a_restart_then_restored(rig: Rig) -> None:
    async with PortalSimulator() as canary:
        doc = yaml.safe_load(rig.config.read_text(encoding="utf-8"))
        doc["canaries"] = [canary.url("public").rstrip("/") + CANARY_PATH]
        rig.config.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        await rig.start()
        await until(lambda: rig.converged(False), 30, "healthy portal converged OFF")

        rig.staff.answer_next(500, count=1000)  # staff's service is down
        canary.set_mode("error500")  # and so is our own network
        await until(lambda: rig.staff.requests, 30, "a degraded alert tried")
        await rig.kill9()
        await rig.start()
        rig.staff._plan.clear()  # staff's service is back
        canary.set_mode("healthy")
        await until(lambda: any("復旧" in t or "戻" in t for t in titles(rig)), 45, "network restored delivered")
        await asyncio.sleep(1)
        seen = titles(rig)
        degraded = seen[0]
        restored = next(i for i, t in enumerate(seen) if t != degraded)
        assert restored >= 2, seen  # tried before the kill, delivered after the restart
        assert seen[restored:] == [seen[-1]], seen  # then "restored", once, last
        from failover.store import Store

        store = Store(rig.tmp / "pg.db")
        try:
            assert {(r.topic, r.state) for r in store.outbox()} == {
                ("network_degraded", "sent"),
                ("network_restored", "sent"),
            }
        finally:
            store.close()


async def test_every_booking_request_is_announced_over_three_kill9(rig: Rig) -> None:
    await rig.start()
    await rig.cli("failover", "on", PORTAL, "--reason", "outage drill")
    async with httpx.AsyncClient(base_url=f"http://{rig.web}", follow_redirects=False) as web:
        await until(lambda: _page_served(web), 10, "the fallback page is served")
        for patient in range(4):
            await _post(web)
            if patient < 3:
                await rig.kill9()  # right after the confirmation: queued or not, sent or not
                await rig.start()
    from failover.store import Store

    store = Store(rig.tmp / "pg.db")
    try:
        numbers = [r.id for r in store.requests()]
    finally:
        store.close()
    assert len(numbers) == 4

    def announced() -> set[int]:
        return {int(n) for m in messages(rig) for n in re.findall(r"No\.(\d+)", m)}

    # Requests within a minute make one message: told a minute after the first was stored.
    await until(lambda: announced() >= set(numbers), 100, f"every request announced: {numbers}")
    assert len([t for t in titles(rig) if "予約リクエスト" in t]) <= 2, titles(rig)  # not one per request


async def _post(web: httpx.AsyncClient) -> None:
    page = await web.get(f"/book/{PORTAL}")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, "no CSRF field"
    done = await web.post(f"/book/{PORTAL}/request", data={"csrf": token.group(1), **FORM}, follow_redirects=True)
    assert done.status_code == 200, done.status_code


async def _page_served(web: httpx.AsyncClient) -> bool:
    return (await web.get(f"/book/{PORTAL}")).status_code == 200
