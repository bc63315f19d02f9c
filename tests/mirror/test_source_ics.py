"""The ics source against the simulator's iCalendar feed (TZID=Asia/Tokyo and UTC, HTTP Basic,
cancelled events), and the feed rules on hand-written calendars (all-day, floating, RRULE, DURATION)."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from failover.fakes.portal_simulator import PortalSimulator
from failover.mirror.model import DayListing
from failover.mirror.sources import read_days
from failover.mirror.sources.ics import read
from tests.mirror.conftest import DAY, DAYS, TZ, assert_no_patient_data, endpoints, failures, listings, source
from watchdog.targets import ProbeSettings

pytestmark = pytest.mark.anyio

EXPECTED = {DAYS[0]: ["R3@portal.example", "R1@portal.example", "R2@portal.example"], DAYS[1]: ["R4@portal.example"]}
EXPECTED[DAYS[2]] = []


async def fetch(sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings, timeout=2.0, **cfg: object):
    return await read_days(source(sim, "ics", **cfg), endpoints(sim), client, settings, timeout, DAYS, TZ)


async def test_the_feed_lists_every_day(sim: PortalSimulator, client: httpx.AsyncClient, settings):
    results = await fetch(sim, client, settings)
    assert [r.day for r in results] == DAYS and listings(results) == EXPECTED
    assert sim.request_count("admin") == 1  # no login: one GET of the feed
    assert isinstance(results[0], DayListing) and isinstance(results[1], DayListing)
    r2 = next(a for a in results[0].appointments if a.id == "R2@portal.example")
    assert (r2.start, r2.end) == (
        dt.datetime(2026, 12, 2, 11, 0, tzinfo=TZ),
        dt.datetime(2026, 12, 2, 11, 45, tzinfo=TZ),
    )
    assert r2.start.tzinfo == TZ
    assert (r2.name, r2.phone, r2.status, r2.cancelled) == ("佐藤 花子", "090-0000-5678", "CONFIRMED", False)
    assert next(a for a in results[0].appointments if a.id.startswith("R1")).menu == "検診"
    assert results[1].appointments[0].cancelled and results[1].appointments[0].status == "CANCELLED"


async def test_utc_times_are_read_in_the_clinic_zone(client, settings):
    async with PortalSimulator(ics_utc=True) as sim:
        sim.book.add("2026-12-03T08:00", "山田 太郎", id="R1")  # 23:00 UTC on 12/2: the clinic's 12/3
        sim.book.add("2026-12-02T23:30", "佐藤 花子", id="R2")  # 14:30 UTC
        results = await fetch(sim, client, settings)
    assert listings(results) == {DAYS[0]: ["R2@portal.example"], DAYS[1]: ["R1@portal.example"], DAYS[2]: []}
    assert isinstance(results[1], DayListing)
    assert results[1].appointments[0].start == dt.datetime(2026, 12, 3, 8, 0, tzinfo=TZ)


async def test_http_basic_credentials(client, settings):
    async with PortalSimulator(ics_credentials=("calendar", "cal-secret-pw")) as sim:
        sim.book.add("2026-12-02T10:00", "山田 太郎", id="R1")
        assert listings(await fetch(sim, client, settings))[DAY] == ["R1@portal.example"]
        found = failures(await fetch(sim, client, settings, username=None, password=None))
        assert set(found.values()) == {("http_status", "HTTP 401")}


MODES = {
    "error500": ("http_status", "HTTP 500"),
    "login_rejected": ("http_status", "HTTP 401"),
    "maintenance": ("parse", "not an iCalendar feed"),  # a feed has no maintenance text of its own
    "empty_without_text": ("parse", "not an iCalendar feed"),
    "layout_changed": ("parse", "no SUMMARY (fields.name)"),
    "redirect": ("redirect", "redirect to other host error.invalid"),
}


@pytest.mark.parametrize("case", MODES.items(), ids=MODES.keys())
async def test_a_broken_feed_fails_its_days(case: tuple[str, tuple[str, str]], sim: PortalSimulator, client, settings):
    mode, (kind, detail) = case
    sim.set_reservations_mode(mode, sources=("ics",))
    found = failures(await fetch(sim, client, settings))
    expected_days = DAYS[:2] if mode == "layout_changed" else DAYS  # 12/4 has no event to fail on
    assert list(found) == expected_days
    for got_kind, got_detail in found.values():
        assert got_kind == kind and detail in got_detail
        assert_no_patient_data(got_detail)


async def test_a_slow_feed_times_out(sim: PortalSimulator, client, settings):
    sim.set_reservations_mode("slow", sources=("ics",))
    assert {kind for kind, _ in failures(await fetch(sim, client, settings, timeout=0.3)).values()} == {"timeout"}


def calendar(*events: str) -> str:
    body = "".join(f"BEGIN:VEVENT\r\n{event.strip()}\r\nEND:VEVENT\r\n" for event in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{body}END:VCALENDAR\r\n"


def source_config(**overrides: object):
    from failover.mirror.sources.ics import IcsSource

    return IcsSource.model_validate({"type": "ics", "url": "http://127.0.0.1:9/feed.ics", **overrides})


def test_all_day_events_are_ignored_and_floating_times_are_the_clinics() -> None:
    text = calendar(
        "UID:holiday\r\nDTSTART;VALUE=DATE:20261202\r\nSUMMARY:休診日",
        "UID:a\r\nDTSTART:20261202T100000\r\nDURATION:PT45M\r\nSUMMARY:山田 太郎",
    )
    results = read(source_config(), text, DAYS, TZ)
    assert listings(results)[DAY] == ["a"]
    assert isinstance(results[0], DayListing)
    only = results[0].appointments[0]
    assert only.start == dt.datetime(2026, 12, 2, 10, tzinfo=TZ) and only.end == dt.datetime(
        2026, 12, 2, 10, 45, tzinfo=TZ
    )


def test_a_recurring_event_counts_once_on_its_first_day() -> None:
    text = calendar("UID:r\r\nDTSTART;TZID=Asia/Tokyo:20261202T100000\r\nRRULE:FREQ=DAILY;COUNT=3\r\nSUMMARY:山田 太郎")
    assert listings(read(source_config(), text, DAYS, TZ)) == {DAYS[0]: ["r"], DAYS[1]: [], DAYS[2]: []}


def test_fields_map_other_properties() -> None:
    text = calendar("UID:a\r\nDTSTART:20261202T010000Z\r\nSUMMARY:予約\r\nX-NAME:山田 太郎\r\nX-TEL:090-0000-1234")
    results = read(source_config(fields={"name": "X-NAME", "phone": "X-TEL"}), text, DAYS, TZ)
    assert isinstance(results[0], DayListing)
    a = results[0].appointments[0]
    assert (a.name, a.phone, a.start.hour, a.end) == ("山田 太郎", "090-0000-1234", 10, None)


def test_an_event_without_uid_fails_its_day_one_without_start_fails_all() -> None:
    no_uid = calendar("DTSTART:20261203T010000Z\r\nSUMMARY:山田 太郎", "UID:b\r\nDTSTART:20261202T010000Z\r\nSUMMARY:x")
    results = read(source_config(), no_uid, DAYS, TZ)
    assert failures(results) == {DAYS[1]: ("parse", "event 1: no UID")} and listings(results)[DAY] == ["b"]
    no_start = calendar("UID:a\r\nSUMMARY:山田 太郎")
    assert set(failures(read(source_config(), no_start, DAYS, TZ)).values()) == {("parse", "event 1: no DTSTART")}


def test_an_empty_calendar_lists_every_day_empty_and_garbage_is_no_feed() -> None:
    assert listings(read(source_config(), calendar(), DAYS, TZ)) == {day: [] for day in DAYS}
    found = failures(read(source_config(), "<html>山田 太郎 090-0000-1234</html>", DAYS, TZ))
    assert set(found.values()) == {("parse", "not an iCalendar feed")}


def test_username_and_password_go_together() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="username and password go together"):
        source_config(username="calendar")
