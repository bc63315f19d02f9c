"""The portal simulator's reservation book and its three admin screens (list, CSV, iCalendar),
their per-source failure modes, the in-process and control-port API, and ``mirror_config``."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest
from selectolax.lexbor import LexborHTMLParser

from failover.fakes.portal_simulator import CSV_PATH, ICS_PATH, LOGIN_PATH, RESERVATIONS_PATH, PortalSimulator
from failover.fakes.reservations import CSV_HEADER, SOURCE_MODES, ReservationBook, japanese_date
from failover.mirror.config import MirrorSettings

pytestmark = pytest.mark.anyio
TZ = ZoneInfo("Asia/Tokyo")


@pytest.fixture
async def sim() -> AsyncIterator[PortalSimulator]:
    async with PortalSimulator(page_size=2) as simulator:
        simulator.book.add("2026-12-02T10:00", "山田 太郎", phone="090-0000-1234", menu="検診", id="R1")
        simulator.book.add("2026-12-02T11:00", "佐藤 花子", end="2026-12-02T11:45", id="R2")
        simulator.book.add("2026-12-02T12:00", "鈴木 一郎", id="R3", cancelled=True)
        yield simulator


@pytest.fixture
async def http(sim: PortalSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
        page = await client.get(sim.url("admin"))
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        username, password = sim.credentials
        await client.post(sim.url("admin"), data={"csrf_token": csrf, "username": username, "password": password})
        yield client


def rows(text: str) -> list[dict[str, str]]:
    tree = LexborHTMLParser(text)
    out = []
    for tr in tree.css("table.list tbody tr"):
        cells = {td.attributes["class"] or "": td.text() for td in tr.css("td")}
        out.append({"id": tr.attributes.get("data-reservation-id") or "", **cells})
    return out


async def test_the_list_needs_the_login(sim: PortalSimulator):
    async with httpx.AsyncClient(trust_env=False) as anonymous:
        for path in (f"{RESERVATIONS_PATH}?date=2026-12-02", f"{CSV_PATH}?from=2026-12-02&to=2026-12-02"):
            response = await anonymous.get(sim.url("admin", path))
            assert response.status_code == 303 and response.headers["location"] == LOGIN_PATH


async def test_the_list_of_a_day_in_pages(sim: PortalSimulator, http: httpx.AsyncClient):
    first = await http.get(sim.url("admin", f"{RESERVATIONS_PATH}?date=2026-12-02"))
    assert first.status_code == 200 and "ログアウト" in first.text
    assert rows(first.text) == [
        {"id": "R1", "date": "12月2日(水)", "time": "10:00〜10:30", "name": "山田 太郎", "tel": "090-0000-1234",
         "menu": "検診", "status": "予約確定"},
        {"id": "R2", "date": "12月2日(水)", "time": "11:00〜11:45", "name": "佐藤 花子", "tel": "", "menu": "",
         "status": "予約確定"},
    ]  # fmt: skip
    link = LexborHTMLParser(first.text).css_first("a.next")
    assert link is not None and link.text() == "次へ"
    second = await http.get(sim.url("admin", link.attributes["href"] or ""))
    assert [(r["id"], r["status"]) for r in rows(second.text)] == [("R3", "キャンセル")]
    assert LexborHTMLParser(second.text).css_first("a.next") is None
    empty = await http.get(sim.url("admin", f"{RESERVATIONS_PATH}?date=2026-12-03"))
    assert rows(empty.text) == [] and "予約はありません" in empty.text
    bad = await http.get(sim.url("admin", f"{RESERVATIONS_PATH}?date=tomorrow"))
    assert bad.status_code == 400


async def test_the_csv_export_is_cp932(sim: PortalSimulator, http: httpx.AsyncClient):
    response = await http.get(sim.url("admin", f"{CSV_PATH}?from=2026-12-01&to=2026-12-02"))
    assert response.status_code == 200 and response.headers["content-type"] == "text/csv"
    text = response.content.decode("cp932")
    table = list(csv.reader(io.StringIO(text)))
    assert tuple(table[0]) == CSV_HEADER
    assert table[1] == ["R1", "2026/12/02", "10:00-10:30", "山田 太郎", "090-0000-1234", "検診", "予約確定"]
    assert [r[0] for r in table[1:]] == ["R1", "R2", "R3"] and table[3][6] == "キャンセル"
    none = await http.get(sim.url("admin", f"{CSV_PATH}?from=2026-12-03&to=2026-12-04"))
    assert none.content.decode("cp932") == ",".join(CSV_HEADER) + "\r\n"


@pytest.mark.parametrize("utc", [False, True], ids=["tzid", "utc"])
async def test_the_ical_feed(utc: bool):
    async with PortalSimulator(ics_credentials=("calendar", "cal-secret-pw"), ics_utc=utc) as sim:
        sim.book.add("2026-12-02T10:00", "山田 太郎, 様; ok", phone="090-0000-1234", id="R1")
        sim.book.add("2026-12-02T11:00", "佐藤 花子" * 20, id="R2", cancelled=True)  # a folded line
        async with httpx.AsyncClient(trust_env=False) as client:
            assert (await client.get(sim.url("admin", ICS_PATH))).status_code == 401
            response = await client.get(sim.url("admin", ICS_PATH), auth=("calendar", "cal-secret-pw"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/calendar")
    assert ("DTSTART;TZID=Asia/Tokyo:20261202T100000" in response.text) != utc
    assert ("DTSTART:20261202T010000Z" in response.text) == utc
    events = icalendar.Calendar.from_ical(response.text).walk("VEVENT")
    assert [str(e["UID"]) for e in events] == ["R1@portal.example", "R2@portal.example"]
    assert events[0].decoded("DTSTART") == dt.datetime(2026, 12, 2, 10, tzinfo=TZ)
    assert events[0].decoded("DTEND") == dt.datetime(2026, 12, 2, 10, 30, tzinfo=TZ)
    assert str(events[0]["SUMMARY"]) == "山田 太郎, 様; ok" and str(events[0]["X-PHONE"]) == "090-0000-1234"
    assert str(events[1]["SUMMARY"]) == "佐藤 花子" * 20 and str(events[1]["STATUS"]) == "CANCELLED"


LIST = f"{RESERVATIONS_PATH}?date=2026-12-02"


async def test_the_sources_break_one_at_a_time(sim: PortalSimulator, http: httpx.AsyncClient):
    sim.set_reservations_mode("error500", sources=("html",))
    assert (await http.get(sim.url("admin", LIST))).status_code == 500
    assert (await http.get(sim.url("admin", f"{CSV_PATH}?from=2026-12-02&to=2026-12-02"))).status_code == 200
    assert (await http.get(sim.url("admin", ICS_PATH))).status_code == 200
    assert sim.reservations_mode("html") == "error500" and sim.reservations_mode("csv") == "healthy"


async def test_the_html_modes(sim: PortalSimulator, http: httpx.AsyncClient):
    async def page(mode: str, path: str = LIST) -> httpx.Response:
        sim.set_reservations_mode(mode, sources=("html",))
        return await http.get(sim.url("admin", path))

    assert "メンテナンス中" in (await page("maintenance")).text
    empty = await page("empty_without_text")
    assert '<table class="list">' in empty.text and rows(empty.text) == [] and "予約はありません" not in empty.text
    changed = await page("layout_changed")
    assert "data-reservation-id" not in changed.text and 'class="name"' not in changed.text
    assert "山田 太郎" in changed.text  # still the bookings, in another layout
    assert (await page("redirect")).headers["location"] == "http://error.invalid/"
    assert (await page("login_rejected")).status_code == 303
    last = await page("pagination_loop", LIST + "&page=2")
    assert 'href="/admin/reservations?date=2026-12-02&amp;page=1"' in last.text
    assert 'href="http://error.invalid/admin/reservations?date=2026-12-02' in (await page("next_other_host")).text


async def test_the_admin_endpoint_modes_cover_the_lists_too(sim: PortalSimulator, http: httpx.AsyncClient):
    sim.set_mode("error500", endpoints=("admin",))
    assert (await http.get(sim.url("admin", LIST))).status_code == 500


def test_unknown_modes_and_sources_are_refused() -> None:
    sim = PortalSimulator()
    with pytest.raises(ValueError, match="unknown reservations mode"):
        sim.set_reservations_mode("broken")
    with pytest.raises(ValueError, match="sources must be among html, csv, ics"):
        sim.set_reservations_mode("error500", sources=("pdf",))
    assert "healthy" in SOURCE_MODES and len(SOURCE_MODES) == len(set(SOURCE_MODES))


def test_the_book_add_change_cancel_remove() -> None:
    book = ReservationBook()
    a = book.add("2026-12-02T10:00", "山田 太郎")
    assert a.id == "R0000001" and a.end - a.start == dt.timedelta(minutes=30) and a.start.tzinfo == TZ
    moved = book.change(a.id, start="2026-12-03T15:00", name="山田 花子")
    assert moved.end == dt.datetime(2026, 12, 3, 15, 30, tzinfo=TZ) and moved.day == dt.date(2026, 12, 3)
    assert book.on(dt.date(2026, 12, 2)) == [] and book.cancel(a.id).status == "キャンセル"
    book.remove(a.id)
    assert len(book) == 0
    with pytest.raises(KeyError):
        book.cancel(a.id)
    with pytest.raises(ValueError, match="unknown fields"):
        book.add("2026-12-02T10:00", "x", id="X")
        book.change("X", colour="red")


def test_the_generator_is_deterministic_and_fictional() -> None:
    first, second = ReservationBook(), ReservationBook()
    made = first.seed(days=14, per_day=80, start=dt.date(2026, 12, 1), seed=7)
    assert len(made) == 14 * 80 and made == second.seed(days=14, per_day=80, start=dt.date(2026, 12, 1), seed=7)
    assert made != ReservationBook().seed(days=14, per_day=80, start=dt.date(2026, 12, 1), seed=8)
    assert all(a.phone.startswith("090-0000-") and len(a.phone) == 13 for a in made)
    assert all(" " in a.name and not a.name.isascii() for a in made)
    assert len({a.id for a in made}) == len(made)
    day = first.on(dt.date(2026, 12, 1))
    assert len(day) == 80 and min(a.start.hour for a in day) == 9 and max(a.start.hour for a in day) < 19
    assert 0 < sum(a.cancelled for a in made) < len(made) // 5
    assert japanese_date(dt.date(2026, 12, 2)) == "12月2日(水)"


async def test_the_control_port_changes_the_book(sim: PortalSimulator):
    async with httpx.AsyncClient(base_url=sim.control_url, trust_env=False) as control:
        added = await control.post("/_sim/appointments", json={"start": "2026-12-04T09:30", "name": "高橋 健太"})
        assert added.status_code == 200
        ident = added.json()["id"]
        changed = await control.post(f"/_sim/appointments/{ident}", json={"menu": "矯正相談"})
        assert changed.json()["menu"] == "矯正相談"
        assert (await control.post(f"/_sim/appointments/{ident}/cancel")).json()["cancelled"] is True
        listed = (await control.get("/_sim/appointments")).json()
        assert [a["id"] for a in listed] == ["R1", "R2", "R3", ident]
        assert (await control.delete(f"/_sim/appointments/{ident}")).status_code == 200
        assert (await control.delete(f"/_sim/appointments/{ident}")).status_code == 404
        seeded = await control.post("/_sim/appointments/seed", json={"days": 2, "per_day": 3, "start": "2026-12-10"})
        assert seeded.json() == {"added": 6, "appointments": 9}
        mode = await control.post("/_sim/reservations/mode", json={"mode": "layout_changed", "sources": ["csv"]})
        assert mode.json()["reservations"]["modes"] == {"html": "healthy", "csv": "layout_changed", "ics": "healthy"}
        bad = await control.post("/_sim/reservations/mode", content=json.dumps({"mode": "nope"}))
        assert bad.status_code == 400
        assert (await control.post("/_sim/reset")).json()["reservations"]["modes"]["csv"] == "healthy"
    assert len(sim.book) == 9  # a reset keeps the book


@pytest.mark.parametrize("kind", ["admin_html", "admin_csv", "ics"])
def test_mirror_config_is_a_valid_mirror_section(kind: str) -> None:
    sim = PortalSimulator(ics_credentials=("calendar", "cal-secret-pw"))
    section = sim.mirror_config(kind, days_ahead=3)
    mirror = MirrorSettings.model_validate(section)
    assert mirror.source.type == kind and mirror.days_ahead == 3
    with pytest.raises(ValueError, match="unknown source type"):
        sim.mirror_config("pdf")
