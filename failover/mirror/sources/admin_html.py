"""``admin_html``: the portal's admin reservation list, one page (or a few, ``next``) per day.

Parsed with selectolax (lexbor, a real HTML5 parser) and CSS selectors from the config; the date and
time texts by ``failover.mirror.dates``. A day is listed completely or fails: a row without its id,
time or name, a time or date not understood, an id twice → ``parse``; no rows and none of the
``empty_contains`` texts → ``empty``; a maintenance text → ``maintenance`` (the session's check).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, Field, field_validator

from failover.mirror.dates import at, parse_date, parse_times
from failover.mirror.model import DayResult, Listed, SyncFailure
from failover.mirror.sources.base import GIVE_UP_KINDS, DayBook, LoginSource, clean, is_cancelled
from watchdog.config_types import HttpUrl, StrictModel

if TYPE_CHECKING:
    from selectolax.lexbor import LexborHTMLParser, LexborNode

    from failover.mirror.session import StaffSession

MAX_PAGES = 50  # per day: more is a loop the URLs did not show, or not a reservation list
_ATTRIBUTE = re.compile(r"^[A-Za-z_:][-A-Za-z0-9_:.]*$")


def _css(selector: str) -> str:
    from selectolax.lexbor import LexborHTMLParser, SelectolaxError

    if not selector.strip():
        raise ValueError("must not be empty (a CSS selector, e.g. td.name)")
    try:
        LexborHTMLParser("<p></p>").css(selector)
    except SelectolaxError:
        raise ValueError(f'"{selector}" is not a CSS selector (e.g. "table.list tbody tr", "td.name")') from None
    return selector


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """``td.name`` (its text), ``a@href`` (an attribute of what it selects), ``@data-id`` (the row's own)."""

    selector: str | None
    attribute: str | None


def field_spec(text: str) -> FieldSpec:
    selector, at_sign, attribute = text.rpartition("@")
    if not at_sign or not _ATTRIBUTE.match(attribute):
        return FieldSpec(text, None)  # no attribute part ("@" inside a selector's quotes)
    return FieldSpec(selector.strip() or None, attribute)


def _field(text: str) -> str:
    spec = field_spec(text)
    if spec.selector is not None:
        _css(spec.selector)
    return text


Selector = Annotated[str, AfterValidator(_css)]
FieldText = Annotated[str, AfterValidator(_field)]


class HtmlFields(StrictModel):
    id: FieldText = Field(description='The reservation number, e.g. "@data-reservation-id" or "td.no".')
    time: FieldText = Field(description='"10:00", "10:00〜10:30", "10:00-10:30".')
    name: FieldText
    date: FieldText | None = Field(None, description="Default: the day the page was asked for.")
    phone: FieldText | None = None
    menu: FieldText | None = None
    status: FieldText | None = None


class AdminHtmlSource(LoginSource):
    type: Literal["admin_html"]
    url: HttpUrl = Field(description="The list of one day; {date} becomes YYYY-MM-DD.")
    next: Selector | None = Field(None, description="The next-page link within a day, e.g. a.next.")
    row: Selector = Field(description='One reservation, e.g. "table.list tbody tr".')
    fields: HtmlFields
    cancelled_contains: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=lambda: ["キャンセル"])
    empty_contains: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: ["予約はありません"],
        min_length=1,
        description="What the list of a day without reservations shows (else an empty list is a failure).",
    )

    @field_validator("url")
    @classmethod
    def _has_date(cls, url: str) -> str:
        if "{date}" not in url:
            raise ValueError("must contain {date} (each day's list is fetched with it replaced by YYYY-MM-DD)")
        return url

    def day_url(self, day: dt.date) -> str:
        return self.url.replace("{date}", day.isoformat())


async def fetch(cfg: AdminHtmlSource, session: StaffSession, days: Sequence[dt.date], tz: ZoneInfo) -> list[DayResult]:
    """One ``DayListing`` or ``DayFailure`` per day of ``days``, in order; ``SyncFailure`` (login) for all."""
    book = DayBook(days)
    specs = _Specs.of(cfg.fields)
    for index, day in enumerate(days):
        try:
            await _read_day(cfg, specs, session, day, tz, book)
        except SyncFailure as failure:
            if failure.kind == "login":
                raise
            book.fail(day, failure)
            if failure.kind in GIVE_UP_KINDS:
                for later in days[index + 1 :]:
                    book.fail(later, failure)
                break
    return book.results()


@dataclass(frozen=True, slots=True)
class _Specs:
    id: FieldSpec
    time: FieldSpec
    name: FieldSpec
    date: FieldSpec | None
    phone: FieldSpec | None
    menu: FieldSpec | None
    status: FieldSpec | None

    @classmethod
    def of(cls, fields: HtmlFields) -> _Specs:
        def opt(text: str | None) -> FieldSpec | None:
            return None if text is None else field_spec(text)

        return cls(
            field_spec(fields.id),
            field_spec(fields.time),
            field_spec(fields.name),
            opt(fields.date),
            opt(fields.phone),
            opt(fields.menu),
            opt(fields.status),
        )


async def _read_day(
    cfg: AdminHtmlSource, specs: _Specs, session: StaffSession, day: dt.date, tz: ZoneInfo, book: DayBook
) -> None:
    """Read ``day``'s pages into ``book`` (its rows, and rows it lists of other requested days)."""
    from selectolax.lexbor import LexborHTMLParser

    url: Any = cfg.day_url(day)
    visited: set[str] = set()
    rows: list[tuple[dt.date, Listed]] = []
    proved_empty = False
    for number in range(1, MAX_PAGES + 1):
        visited.add(str(url))
        page = await session.get(url)
        tree = LexborHTMLParser(page.text)
        found = tree.css(cfg.row)
        rows += [_listed(cfg, specs, node, day, tz, number, n) for n, node in enumerate(found, 1)]
        if number == 1 and not found:
            proved_empty = _shows_empty(tree, cfg.empty_contains)
        link = _next_link(tree, cfg.next)
        if link is None:
            break
        url = session.follow(page, link)
        if str(url) in visited:
            raise SyncFailure("parse", f"the next-page links loop (page {number} leads back to an earlier page)")
    else:
        raise SyncFailure("parse", f"more than {MAX_PAGES} pages for one day")
    for listed_day, listed in rows:
        book.add(listed_day, listed, origin=day)
    book.read(day, proved_empty=proved_empty)


def _shows_empty(tree: LexborHTMLParser, texts: Sequence[str]) -> bool:
    body = tree.body
    shown = body.text(separator=" ") if body is not None else ""
    return any(text in shown for text in texts)


def _next_link(tree: LexborHTMLParser, selector: str | None) -> str | None:
    if selector is None:
        return None
    node = tree.css_first(selector)
    href = node.attributes.get("href") if node is not None else None
    return (href.strip() or None) if href else None


def _listed(
    cfg: AdminHtmlSource, specs: _Specs, row: LexborNode, day: dt.date, tz: ZoneInfo, page: int, n: int
) -> tuple[dt.date, Listed]:
    where = f"page {page}, row {n}"  # never a cell's text: rows hold patients' names and phones

    def required(name: str, spec: FieldSpec) -> str:
        value = _value(row, spec)
        if not value:
            raise SyncFailure("parse", f"{where}: no {name} (fields.{name} finds nothing: has the layout changed?)")
        return value

    def optional(spec: FieldSpec | None) -> str:
        return (_value(row, spec) or "") if spec is not None else ""

    ident, time_text, name = required("id", specs.id), required("time", specs.time), required("name", specs.name)
    listed_day = day
    if specs.date is not None:
        try:
            listed_day = parse_date(required("date", specs.date), near=day)
        except ValueError as err:
            raise SyncFailure("parse", f"{where}: date not understood ({err})") from None
    try:
        start, end = at(listed_day, *parse_times(time_text), tz)
    except ValueError as err:
        raise SyncFailure("parse", f"{where}: time not understood ({err})") from None
    status = optional(specs.status)
    listed = Listed(
        id=ident,
        start=start,
        end=end,
        name=name,
        phone=optional(specs.phone),
        menu=optional(specs.menu),
        status=status,
        cancelled=is_cancelled(status, cfg.cancelled_contains),
    )
    return listed_day, listed


def _value(row: LexborNode, spec: FieldSpec) -> str | None:
    node = row if spec.selector is None else row.css_first(spec.selector)
    if node is None:
        return None
    if spec.attribute is not None:
        value = node.attributes.get(spec.attribute)
        return clean(value) if value is not None else None
    return clean(node.text(deep=True, separator=" "))
