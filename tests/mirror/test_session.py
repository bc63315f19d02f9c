"""The staff session (failover.mirror.session) against the simulator's admin side: one login per
session, its cookies carried, every failure translated into a SyncFailure kind without secrets."""

from __future__ import annotations

import httpx
import pytest

from failover.fakes.portal_simulator import PortalSimulator
from failover.mirror.model import SyncFailure
from failover.mirror.session import StaffSession
from failover.mirror.sources import open_session
from tests.mirror.conftest import endpoints, source
from watchdog.targets import Endpoint, ProbeSettings

pytestmark = pytest.mark.anyio


def admin(sim: PortalSimulator, **login: object) -> Endpoint:
    raw = endpoints(sim)["admin"].model_dump()
    raw["login"] = {**raw["login"], "password": sim.credentials[1], **login}
    return Endpoint.model_validate(raw)


def list_url(sim: PortalSimulator, day: str = "2026-12-02") -> str:
    return sim.url("admin", f"/admin/reservations?date={day}")


async def test_logs_in_once_and_reads_behind_the_login(
    sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings
):
    session = await StaffSession.open(client, admin(sim), settings, 2.0)
    assert session.logged_in and sim.request_count("admin") == 3  # login page, POST, dashboard
    for day in ("2026-12-02", "2026-12-03"):
        page = await session.get(list_url(sim, day))
        assert page.status == 200 and "予約一覧" in page.text
    assert sim.request_count("admin") == 5 and session.requests == 2  # no second login
    assert not client.cookies  # the shared client keeps nothing: the cookies are the session's


async def test_without_the_session_the_list_is_not_served(
    sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings
):
    session = StaffSession(client, admin(sim), settings, 2.0)  # never logged in
    with pytest.raises(SyncFailure) as info:
        await session.get(list_url(sim))
    assert info.value.kind == "login" and "login page" in info.value.detail


async def test_each_session_is_fresh(sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings):
    await StaffSession.open(client, admin(sim), settings, 2.0)
    second = StaffSession(client, admin(sim), settings, 2.0)
    with pytest.raises(SyncFailure):
        await second.get(list_url(sim))  # the first one's cookies are not shared


LOGIN_FAILURES = {
    # case: (admin endpoint mode, login overrides, kind, detail)
    "rejected": ("login_rejected", {}, "login", "login not accepted"),
    "wrong-password": (None, {"password": "wrong-pw-123"}, "login", "login not accepted"),
    "error500": ("error500", {}, "http_status", "login page: HTTP 500"),
    "maintenance": ("maintenance", {}, "maintenance", "maintenance text"),
    "redirect": ("redirect", {}, "redirect", "other host error.invalid"),
    "connect": ("refuse", {}, "connect", "connection refused"),
}


@pytest.mark.parametrize("case", LOGIN_FAILURES.values(), ids=LOGIN_FAILURES.keys())
async def test_login_failures(
    case: tuple[str | None, dict[str, str], str, str],
    sim: PortalSimulator,
    client: httpx.AsyncClient,
    settings: ProbeSettings,
):
    mode, login, kind, detail = case
    if mode is not None:
        sim.set_mode(mode, endpoints=("admin",))
    with pytest.raises(SyncFailure) as info:
        await StaffSession.open(client, admin(sim, **login), settings, 2.0)
    assert info.value.kind == kind and detail in info.value.detail, info.value
    assert sim.credentials[1] not in str(info.value) and "wrong-pw-123" not in str(info.value)


async def test_a_hanging_login_times_out(sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings):
    sim.set_mode("hang", endpoints=("admin",))
    with pytest.raises(SyncFailure) as info:
        await StaffSession.open(client, admin(sim), settings, 0.2)
    assert info.value.kind == "timeout" and "0.2s" in info.value.detail


PAGE_FAILURES = {
    # reservations mode of the html source: (kind, detail)
    "error500": ("http_status", "HTTP 500"),
    "maintenance": ("maintenance", "maintenance text 'メンテナンス中' found"),
    "login_rejected": ("login", "led back to the login page"),
    "redirect": ("redirect", "other host error.invalid"),
}


@pytest.mark.parametrize("case", PAGE_FAILURES.items(), ids=PAGE_FAILURES.keys())
async def test_page_failures(
    case: tuple[str, tuple[str, str]], sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings
):
    mode, (kind, detail) = case
    session = await StaffSession.open(client, admin(sim), settings, 2.0)
    sim.set_reservations_mode(mode, sources=("html",))
    with pytest.raises(SyncFailure) as info:
        await session.get(list_url(sim))
    assert info.value.kind == kind and detail in info.value.detail, info.value


async def test_a_slow_page_times_out_after_the_timeout(
    sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings
):
    session = await StaffSession.open(client, admin(sim), settings, 0.3)
    sim.set_reservations_mode("slow", sources=("html",))  # answers after the admin delay (2s)
    with pytest.raises(SyncFailure) as info:
        await session.get(list_url(sim))
    assert info.value.kind == "timeout"


async def test_a_source_url_on_another_host_is_refused(
    sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings
):
    session = await StaffSession.open(client, admin(sim), settings, 2.0)
    before = sim.request_count("admin")
    with pytest.raises(SyncFailure) as info:
        await session.get("http://phish.invalid/admin/reservations?date=2026-12-02")
    assert info.value.kind == "redirect" and sim.request_count("admin") == before


async def test_links_are_followed_on_the_same_host_only(
    sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings
):
    session = await StaffSession.open(client, admin(sim), settings, 2.0)
    page = await session.get(list_url(sim))
    assert session.follow(page, "?date=2026-12-02&page=2") == httpx.URL(list_url(sim) + "&page=2")
    with pytest.raises(SyncFailure) as info:
        session.follow(page, "http://error.invalid/admin/reservations?page=2")
    assert info.value.kind == "redirect"


async def test_open_session_picks_the_login_or_a_plain_feed(client: httpx.AsyncClient, settings: ProbeSettings):
    async with PortalSimulator(ics_credentials=("calendar", "cal-secret-pw")) as sim:
        logged_in = await open_session(source(sim, "admin_html"), endpoints(sim), client, settings, 2.0)
        assert logged_in.logged_in
        feed = await open_session(source(sim, "ics"), endpoints(sim), client, settings, 2.0)
        assert not feed.logged_in and feed.endpoint.login is None
        assert (await feed.get(sim.url("admin", "/admin/calendar.ics"))).status == 200
        wrong = source(sim, "ics", password="not-the-password")
        session = await open_session(wrong, endpoints(sim), client, settings, 2.0)
        with pytest.raises(SyncFailure) as info:
            await session.get(sim.url("admin", "/admin/calendar.ics"))
        assert info.value.kind == "http_status" and "401" in info.value.detail
        assert "not-the-password" not in str(info.value)
