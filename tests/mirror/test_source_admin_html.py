"""The admin_html source against the simulator's reservation list: complete days or failed days,
pagination within a day, and every failure mode; never a patient's name or phone in a message."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from failover.fakes.portal_simulator import PortalSimulator
from failover.mirror.model import DayListing, SyncFailure
from failover.mirror.sources import SOURCES, open_session, read_days
from failover.mirror.sources.admin_html import MAX_PAGES
from tests.mirror.conftest import DAY, DAYS, TZ, assert_no_patient_data, endpoints, failures, listings, source
from watchdog.targets import ProbeSettings

pytestmark = pytest.mark.anyio


async def read(sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings, timeout=2.0, **cfg: object):
    return await read_days(source(sim, "admin_html", **cfg), endpoints(sim), client, settings, timeout, DAYS, TZ)


async def test_every_day_is_listed_completely(sim: PortalSimulator, client: httpx.AsyncClient, settings):
    results = await read(sim, client, settings)
    assert [r.day for r in results] == DAYS and all(isinstance(r, DayListing) for r in results)
    assert listings(results) == {DAYS[0]: ["R3", "R1", "R2"], DAYS[1]: ["R4"], DAYS[2]: []}  # 12/4: 予約はありません
    first = results[0]
    assert isinstance(first, DayListing)
    r2 = next(a for a in first.appointments if a.id == "R2")
    assert r2.start == dt.datetime(2026, 12, 2, 11, 0, tzinfo=TZ) and r2.end == dt.datetime(
        2026, 12, 2, 11, 45, tzinfo=TZ
    )
    assert (r2.name, r2.phone, r2.status, r2.cancelled) == ("佐藤 花子", "090-0000-5678", "予約確定", False)
    r1 = next(a for a in first.appointments if a.id == "R1")
    assert r1.menu == "検診"
    cancelled = results[1]
    assert isinstance(cancelled, DayListing)
    assert cancelled.appointments[0].status == "キャンセル" and cancelled.appointments[0].cancelled


async def test_pages_are_followed_within_the_day_and_login_is_once(sim: PortalSimulator, client, settings):
    await read(sim, client, settings)
    # login (3 requests) + 12/2 on two pages (page size 2, three bookings) + 12/3 + 12/4
    assert sim.request_count("admin") == 3 + 2 + 1 + 1


async def test_optional_fields_may_be_left_out(sim: PortalSimulator, client, settings):
    fields = {"id": "@data-reservation-id", "time": "td.time", "name": "td.name"}
    results = await read(sim, client, settings, fields=fields)
    assert listings(results)[DAY] == ["R3", "R1", "R2"]
    assert isinstance(results[0], DayListing)
    assert {(a.phone, a.menu, a.status, a.cancelled) for a in results[0].appointments} == {("", "", "", False)}


async def test_a_day_with_no_rows_needs_its_empty_text(sim: PortalSimulator, client, settings):
    results = await read(sim, client, settings, empty_contains=["本日の予約はありません"])
    assert failures(results) == {DAYS[2]: ("empty", "no appointments listed and no text saying there are none")}
    assert set(listings(results)) == {DAYS[0], DAYS[1]}


MODES = {
    # reservations mode of the html source -> (kind, detail), the same for every day
    "error500": ("http_status", "HTTP 500"),
    "maintenance": ("maintenance", "maintenance text 'メンテナンス中' found"),
    "empty_without_text": ("empty", "no appointments listed and no text saying there are none"),
    "layout_changed": ("parse", "page 1, row 1: no id (fields.id finds nothing: has the layout changed?)"),
    "redirect": ("redirect", "redirect to other host error.invalid"),
    "pagination_loop": ("parse", "the next-page links loop"),
    "next_other_host": ("redirect", "a link leads to other host error.invalid"),
}


@pytest.mark.parametrize("case", MODES.items(), ids=MODES.keys())
async def test_a_broken_list_fails_its_days(case: tuple[str, tuple[str, str]], sim: PortalSimulator, client, settings):
    mode, (kind, detail) = case
    sim.set_reservations_mode(mode, sources=("html",))
    results = await read(sim, client, settings)
    found = failures(results)
    # A changed layout still says 予約はありません on an empty day: that day is read as it is.
    assert list(found) == (DAYS[:2] if mode == "layout_changed" else DAYS), results
    for got_kind, got_detail in found.values():
        assert got_kind == kind and detail in got_detail
        assert_no_patient_data(got_detail)


async def test_a_refused_login_fails_the_whole_sync(sim: PortalSimulator, client, settings):
    sim.set_mode("login_rejected", endpoints=("admin",))
    with pytest.raises(SyncFailure) as info:
        await read(sim, client, settings)
    assert info.value.kind == "login"


async def test_a_session_the_list_does_not_accept_fails_the_whole_sync(sim: PortalSimulator, client, settings):
    sim.set_reservations_mode("login_rejected", sources=("html",))
    with pytest.raises(SyncFailure) as info:
        await read(sim, client, settings)
    assert info.value.kind == "login" and "login page" in info.value.detail


async def test_a_timeout_fails_the_rest_without_asking_again(sim: PortalSimulator, client, settings):
    sim.set_reservations_mode("slow", sources=("html",))  # 2s; the timeout is 0.3s
    results = await read(sim, client, settings, timeout=0.3)
    assert {day: kind for day, (kind, _) in failures(results).items()} == dict.fromkeys(DAYS, "timeout")
    assert sim.request_count("admin") == 3 + 1  # the login, then the first day's page only


async def test_pages_per_day_are_bounded(client, settings):
    async with PortalSimulator(page_size=1) as sim:
        for n in range(MAX_PAGES + 1):
            sim.book.add(dt.datetime(2026, 12, 2, 9, 0) + dt.timedelta(minutes=10 * n), f"患者{n}")
        results = await read(sim, client, settings)
    assert failures(results)[DAY] == ("parse", f"more than {MAX_PAGES} pages for one day")
    assert set(listings(results)) == {DAYS[1], DAYS[2]}


async def test_a_row_belongs_to_the_day_it_says(sim: PortalSimulator, client, settings):
    # Every page shows 12/3's list: its row goes to 12/3 (once, though three pages list it), and the
    # other days, whose pages list only another day's rows and no empty text, are not "empty" listings.
    url = sim.url("admin", "/admin/reservations?date=2026-12-03&asked={date}")
    results = await read(sim, client, settings, url=url)
    assert listings(results) == {DAYS[1]: ["R4"]}
    assert {day: kind for day, (kind, _) in failures(results).items()} == {DAYS[0]: "empty", DAYS[2]: "empty"}


async def test_rows_of_days_not_asked_for_are_ignored(sim: PortalSimulator, client, settings):
    url = sim.url("admin", "/admin/reservations?date=2026-12-10&asked={date}")
    results = await read(sim, client, settings, url=url)
    assert {kind for kind, _ in failures(results).values()} == {"empty"} and not listings(results)


ROW_PROBLEMS = {
    # fields (merged into the simulator's) -> detail
    "no-name": ({"name": "td.nope"}, "page 1, row 1: no name"),
    "time-not-understood": ({"time": "td.name"}, "page 1, row 1: time not understood"),
    "date-not-understood": ({"date": "td.menu"}, "page 1, row 1: date not understood"),
    "id-twice": ({"id": "td.status"}, "an appointment id is listed twice"),
}


@pytest.mark.parametrize("case", ROW_PROBLEMS.values(), ids=ROW_PROBLEMS.keys())
async def test_a_bad_row_fails_its_whole_day(case: tuple[dict[str, str], str], sim: PortalSimulator, client, settings):
    overrides, detail = case
    fields = {**sim.mirror_config("admin_html")["source"]["fields"], **overrides}  # type: ignore[index]
    results = await read(sim, client, settings, fields=fields)
    kind, got = failures(results)[DAY]
    assert kind == "parse" and detail in got
    assert_no_patient_data(got)
    assert DAYS[2] in listings(results)  # 12/4 has no rows: nothing to fail on


async def test_the_row_itself_and_attributes_of_cells(sim: PortalSimulator, client, settings):
    fields = {"id": "@data-reservation-id", "time": "td.time", "name": "td.name", "phone": "td.tel@class"}
    results = await read(sim, client, settings, fields=fields)
    assert isinstance(results[0], DayListing) and {a.phone for a in results[0].appointments} == {"tel"}


async def test_the_table_lists_this_source(sim: PortalSimulator, client, settings):
    cfg = source(sim, "admin_html")
    assert SOURCES["admin_html"].config is type(cfg) and SOURCES["admin_html"].login
    session = await open_session(cfg, endpoints(sim), client, settings, 2.0)
    results = await SOURCES["admin_html"].fetch(cfg, session, [DAYS[1]], TZ)
    assert listings(results) == {DAYS[1]: ["R4"]}
