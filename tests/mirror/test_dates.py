"""The date and time texts of Japanese admin screens (failover.mirror.dates)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from failover.mirror.dates import at, clinic_day, parse_date, parse_times, upcoming

TZ = ZoneInfo("Asia/Tokyo")
NEAR = dt.date(2026, 12, 2)


@pytest.mark.parametrize(
    "text",
    ["2026/12/02", "2026-12-02", "2026/12/2", "2026年12月2日", "12月2日(水)", "12月2日（水）", "12/2", " 12 / 2 ",
     "１２月２日(水)", "２０２６／１２／０２", "12月2日", "2026/12/02(水)"],
)  # fmt: skip
def test_date_texts(text: str) -> None:
    assert parse_date(text, near=NEAR) == dt.date(2026, 12, 2)


@pytest.mark.parametrize(
    ("text", "near", "expected"),
    [
        ("1/3", dt.date(2026, 12, 30), dt.date(2027, 1, 3)),  # a list that runs into the new year
        ("12/30", dt.date(2027, 1, 2), dt.date(2026, 12, 30)),
        ("6月1日", dt.date(2026, 5, 30), dt.date(2026, 6, 1)),
        ("2/29", dt.date(2028, 2, 20), dt.date(2028, 2, 29)),
        ("2/29", dt.date(2027, 3, 1), dt.date(2028, 2, 29)),  # the nearest year that has it
    ],
)
def test_a_date_without_year_takes_the_nearest_year(text: str, near: dt.date, expected: dt.date) -> None:
    assert parse_date(text, near=near) == expected


@pytest.mark.parametrize("text", ["", "明日", "2026/13/01", "2026/02/30", "12/32", "13/1", "10:00", "2026-12"])
def test_not_a_date(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_date(text, near=NEAR)
    assert str(info.value).startswith("not a")  # a fixed text: never the cell's own


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("10:00", (10, 0), None),
        ("9:05", (9, 5), None),
        ("10:00〜10:30", (10, 0), (10, 30)),
        ("10:00-10:30", (10, 0), (10, 30)),
        ("10:00～10:30", (10, 0), (10, 30)),  # full-width tilde
        ("10:00 ~ 10:30", (10, 0), (10, 30)),
        ("１０：００〜１０：３０", (10, 0), (10, 30)),  # full-width digits and colon
        ("10:00－10:30", (10, 0), (10, 30)),  # full-width hyphen
        ("10:00〜", (10, 0), None),
        ("23:30〜24:00", (23, 30), (0, 0)),
    ],
)
def test_time_texts(text: str, start: tuple[int, int], end: tuple[int, int] | None) -> None:
    assert parse_times(text) == (dt.time(*start), dt.time(*end) if end else None)


@pytest.mark.parametrize("text", ["", "10時", "25:00", "10:60", "10:00〜11", "午前10:00", "10:00〜10:30〜11:00"])
def test_not_a_time(text: str) -> None:
    with pytest.raises(ValueError):
        parse_times(text)


def test_aware_start_and_end_an_end_past_midnight_is_the_next_day() -> None:
    start, end = at(NEAR, dt.time(10), dt.time(10, 30), TZ)
    assert start == dt.datetime(2026, 12, 2, 10, tzinfo=TZ) and end == dt.datetime(2026, 12, 2, 10, 30, tzinfo=TZ)
    _, overnight = at(NEAR, dt.time(23, 30), dt.time(0, 0), TZ)
    assert overnight == dt.datetime(2026, 12, 3, 0, 0, tzinfo=TZ)
    assert at(NEAR, dt.time(9), None, TZ)[1] is None


def test_upcoming_days_and_the_clinic_day() -> None:
    assert upcoming(NEAR, 3) == [NEAR, dt.date(2026, 12, 3), dt.date(2026, 12, 4)]
    late_utc = dt.datetime(2026, 12, 1, 16, 0, tzinfo=dt.UTC)  # 01:00 on the 2nd in Tokyo
    assert clinic_day(late_utc, TZ) == NEAR
