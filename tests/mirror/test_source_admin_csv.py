"""The admin_csv source against the simulator's CSV export: one fetch for the range, CP932 and
UTF-8 (with or without BOM), the header's columns, and every failure mode without patient data."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from failover.fakes.portal_simulator import PortalSimulator
from failover.mirror.model import DayListing, SyncFailure
from failover.mirror.sources import read_days
from failover.mirror.sources.admin_csv import decode
from tests.mirror.conftest import DAY, DAYS, TZ, assert_no_patient_data, endpoints, failures, listings, source
from watchdog.targets import ProbeSettings

pytestmark = pytest.mark.anyio

EXPECTED = {DAYS[0]: ["R3", "R1", "R2"], DAYS[1]: ["R4"], DAYS[2]: []}


async def read(sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings, timeout=2.0, **cfg: object):
    return await read_days(source(sim, "admin_csv", **cfg), endpoints(sim), client, settings, timeout, DAYS, TZ)


async def test_one_export_lists_every_day(sim: PortalSimulator, client: httpx.AsyncClient, settings):
    results = await read(sim, client, settings)
    assert [r.day for r in results] == DAYS and listings(results) == EXPECTED
    assert sim.request_count("admin") == 3 + 1  # the login, then one export for 12/2..12/4
    assert isinstance(results[0], DayListing) and isinstance(results[1], DayListing)
    r2 = next(a for a in results[0].appointments if a.id == "R2")
    assert (r2.start, r2.end) == (
        dt.datetime(2026, 12, 2, 11, 0, tzinfo=TZ),
        dt.datetime(2026, 12, 2, 11, 45, tzinfo=TZ),
    )
    assert (r2.name, r2.phone, r2.menu, r2.status, r2.cancelled) == (
        "佐藤 花子",
        "090-0000-5678",
        "",
        "予約確定",
        False,
    )
    assert results[1].appointments[0].cancelled and results[1].appointments[0].status == "キャンセル"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
async def test_utf8_with_or_without_bom_else_cp932_by_default(encoding: str, client, settings):
    async with PortalSimulator(csv_encoding=encoding) as sim:
        sim.book.add("2026-12-02T10:00", "山田 太郎", id="R1", menu="ホワイトニング")
        results = await read(sim, client, settings)
    assert listings(results) == {DAYS[0]: ["R1"], DAYS[1]: [], DAYS[2]: []}
    assert isinstance(results[0], DayListing) and results[0].appointments[0].name == "山田 太郎"


async def test_an_explicit_encoding_is_used_as_given(sim: PortalSimulator, client, settings):
    assert listings(await read(sim, client, settings, encoding="cp932")) == EXPECTED
    results = await read(sim, client, settings, encoding="utf-8")  # the body is CP932
    assert {f for f in failures(results).values()} == {("parse", "the export is not utf-8 text")}


def test_decoding() -> None:
    text = "予約番号,お名前\r\n"
    assert decode(b"\xef\xbb\xbf" + text.encode(), None) == text
    assert decode(text.encode("cp932"), None) == text
    assert decode(text.encode("euc-jp"), "euc-jp") == text
    with pytest.raises(SyncFailure) as info:
        decode(b"\xff\xff\xfe\x80\x81", None)
    assert info.value.kind == "parse" and "set encoding" in info.value.detail


async def test_a_header_without_rows_is_an_empty_listing_of_every_day(client, settings):
    async with PortalSimulator() as sim:
        results = await read(sim, client, settings)
    assert listings(results) == {day: [] for day in DAYS}


MODES = {
    "error500": ("http_status", "HTTP 500"),
    "maintenance": ("maintenance", "maintenance text 'メンテナンス中' found"),
    "empty_without_text": ("parse", "the export has no header row"),
    "layout_changed": ("parse", "the export's header has no column 予約番号 (columns.id)"),
    "redirect": ("redirect", "redirect to other host error.invalid"),
}


@pytest.mark.parametrize("case", MODES.items(), ids=MODES.keys())
async def test_a_broken_export_fails_every_day(
    case: tuple[str, tuple[str, str]], sim: PortalSimulator, client, settings
):
    mode, (kind, detail) = case
    sim.set_reservations_mode(mode, sources=("csv",))
    found = failures(await read(sim, client, settings))
    assert list(found) == DAYS
    for got_kind, got_detail in found.values():
        assert got_kind == kind and detail in got_detail
        assert_no_patient_data(got_detail)


async def test_a_refused_session_fails_the_whole_sync(sim: PortalSimulator, client, settings):
    sim.set_reservations_mode("login_rejected", sources=("csv",))
    with pytest.raises(SyncFailure) as info:
        await read(sim, client, settings)
    assert info.value.kind == "login"


async def test_a_slow_export_times_out(sim: PortalSimulator, client, settings):
    sim.set_reservations_mode("slow", sources=("csv",))
    assert {kind for kind, _ in failures(await read(sim, client, settings, timeout=0.3)).values()} == {"timeout"}


COLUMNS = {
    # columns (merged into the defaults) -> (failed days, detail)
    "time-not-understood": ({"time": "お名前"}, [DAYS[0], DAYS[1]], "time not understood"),
    "no-name": ({"name": "メニュー"}, [DAYS[0], DAYS[1]], "no name (column メニュー)"),
    "id-twice": ({"id": "状態"}, [DAYS[0]], "an appointment id is listed twice"),
    "date-not-understood": ({"date": "メニュー"}, DAYS, "line 2: date not understood"),
}


@pytest.mark.parametrize("case", COLUMNS.values(), ids=COLUMNS.keys())
async def test_a_bad_row_fails_its_day(case, sim: PortalSimulator, client, settings):
    columns, failed, detail = case
    results = await read(sim, client, settings, columns=columns)
    found = failures(results)
    assert list(found) == failed
    for kind, got in found.values():
        assert kind == "parse" and detail in got
        assert_no_patient_data(got)
    assert all(day in listings(results) for day in DAYS if day not in failed)


async def test_a_column_the_export_lacks_can_be_left_out(sim: PortalSimulator, client, settings):
    sim.set_reservations_mode("healthy")
    results = await read(sim, client, settings, columns={"phone": None, "menu": None, "status": None})
    assert listings(results) == EXPECTED
    assert isinstance(results[0], DayListing) and {a.phone for a in results[0].appointments} == {""}
    assert not results[0].appointments[0].cancelled


async def test_the_range_in_the_url(sim: PortalSimulator, client, settings):
    cfg = source(sim, "admin_csv")
    assert cfg.range_url(DAY, DAYS[-1]).endswith("?from=2026-12-02&to=2026-12-04")  # type: ignore[attr-defined]
