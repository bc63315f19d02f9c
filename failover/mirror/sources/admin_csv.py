"""``admin_csv``: the admin screen's CSV export of a date range, read with the stdlib ``csv`` module.

One fetch for all the days (``{from}``..``{to}``); every requested day gets a ``DayListing`` (a header
without rows is a valid empty listing) or all fail alike. Japanese admin screens export Shift_JIS: by
default the body is read as UTF-8 (with or without a BOM), else as CP932. Messages name columns and
row numbers, never a cell's value.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from failover.mirror.dates import at, parse_date, parse_times
from failover.mirror.model import DayResult, Listed, SyncFailure
from failover.mirror.sources.base import DayBook, LoginSource, clean, fail_all, is_cancelled
from watchdog.config_types import HttpUrl, StrictModel

if TYPE_CHECKING:
    from failover.mirror.session import StaffSession


class CsvColumns(StrictModel):
    """The header names of the export's columns; ``null`` for an optional column the export lacks."""

    id: str = Field("予約番号", min_length=1)
    date: str = Field("予約日", min_length=1)
    time: str = Field("予約時間", min_length=1)
    name: str = Field("お名前", min_length=1)
    phone: str | None = "電話番号"
    menu: str | None = "メニュー"
    status: str | None = "状態"


class AdminCsvSource(LoginSource):
    type: Literal["admin_csv"]
    url: HttpUrl = Field(description="The export of a range: {from} and {to} become YYYY-MM-DD.")
    encoding: str | None = Field(None, description="Default: UTF-8 (with or without BOM), else CP932.")
    columns: CsvColumns = Field(default_factory=CsvColumns)
    cancelled_contains: list[str] = Field(default_factory=lambda: ["キャンセル"])

    @field_validator("url")
    @classmethod
    def _has_range(cls, url: str) -> str:
        missing = [p for p in ("{from}", "{to}") if p not in url]
        if missing:
            raise ValueError(
                f"must contain {' and '.join(missing)} (the export is fetched with {{from}} and {{to}} "
                "replaced by the first and last day, YYYY-MM-DD)"
            )
        return url

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str | None) -> str | None:
        if encoding is not None:
            try:
                codecs.lookup(encoding)
            except LookupError:
                raise ValueError(f'"{encoding}" is not an encoding Python knows (e.g. cp932, utf-8)') from None
        return encoding

    def range_url(self, first: dt.date, last: dt.date) -> str:
        return self.url.replace("{from}", first.isoformat()).replace("{to}", last.isoformat())


async def fetch(cfg: AdminCsvSource, session: StaffSession, days: Sequence[dt.date], tz: ZoneInfo) -> list[DayResult]:
    """One export for ``min(days)``..``max(days)``; a result per day, in order."""
    if not days:
        return []
    try:
        page = await session.get(cfg.range_url(min(days), max(days)))
        text = decode(page.body, cfg.encoding)
    except SyncFailure as failure:
        if failure.kind == "login":
            raise
        return fail_all(days, failure)
    return read(cfg, text, days, tz)


def decode(body: bytes, encoding: str | None) -> str:
    """The export as text: ``encoding`` strictly when given, else UTF-8 (BOM or not), else CP932."""
    if encoding is not None:
        try:
            return body.decode(encoding)
        except UnicodeDecodeError:
            raise SyncFailure("parse", f"the export is not {encoding} text") from None
    for candidate in ("utf-8-sig", "cp932"):
        try:
            return body.decode(candidate)
        except UnicodeDecodeError:
            continue
    raise SyncFailure("parse", "the export is neither UTF-8 nor CP932 (Shift_JIS) text; set encoding")


def read(cfg: AdminCsvSource, text: str, days: Sequence[dt.date], tz: ZoneInfo) -> list[DayResult]:
    """The export's rows gathered into ``days`` (rows of other days are ignored)."""
    book = DayBook(days)
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next((row for row in rows if any(cell.strip() for cell in row)), None)
        if header is None:
            return fail_all(days, SyncFailure("parse", "the export has no header row (an empty body)"))
        index = _columns(cfg.columns, header)
        near = days[len(days) // 2]
        for row in rows:
            if any(cell.strip() for cell in row):
                _row(cfg, index, row, rows.line_num, near, tz, book)
    except csv.Error:
        return fail_all(days, SyncFailure("parse", f"line {rows.line_num}: not CSV"))
    except _AllDays as failure:
        return fail_all(days, failure.failure)
    for day in days:
        book.read(day)
    return book.results()


class _AllDays(Exception):
    def __init__(self, failure: SyncFailure) -> None:
        super().__init__(failure.detail)
        self.failure = failure


def _columns(columns: CsvColumns, header: list[str]) -> dict[str, int]:
    names = [cell.strip().lstrip("\ufeff").strip() for cell in header]
    index = {}
    for key, column in columns.model_dump().items():
        if column is None:
            continue
        if column not in names:
            raise _AllDays(
                SyncFailure("parse", f"the export's header has no column {column} (columns.{key}); has it changed?")
            )
        index[key] = names.index(column)
    return index


def _row(
    cfg: AdminCsvSource, index: dict[str, int], row: list[str], line: int, near: dt.date, tz: ZoneInfo, book: DayBook
) -> None:
    def cell(key: str) -> str:
        at_index = index.get(key)
        return clean(row[at_index]) if at_index is not None and at_index < len(row) else ""

    try:
        day = parse_date(cell("date"), near=near)
    except ValueError as err:
        # Which day this row belongs to is unknown: no day can be called complete.
        raise _AllDays(SyncFailure("parse", f"line {line}: date not understood ({err})")) from None
    if not book.wants(day):
        return
    missing = next((key for key in ("id", "time", "name") if not cell(key)), None)
    if missing is not None:
        book.fail(day, SyncFailure("parse", f"line {line}: no {missing} (column {index_name(cfg, missing)})"))
        return
    try:
        start, end = at(day, *parse_times(cell("time")), tz)
    except ValueError as err:
        book.fail(day, SyncFailure("parse", f"line {line}: time not understood ({err})"))
        return
    status = cell("status")
    listed = Listed(
        id=cell("id"),
        start=start,
        end=end,
        name=cell("name"),
        phone=cell("phone"),
        menu=cell("menu"),
        status=status,
        cancelled=is_cancelled(status, cfg.cancelled_contains),
    )
    book.add(day, listed, origin="export")


def index_name(cfg: AdminCsvSource, key: str) -> str:
    return str(getattr(cfg.columns, key))
