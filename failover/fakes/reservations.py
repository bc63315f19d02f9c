"""The simulated portal's reservation book and the admin screens that list it.

Plain data and renderers, no server: ``failover.fakes.portal_simulator`` serves them behind its
admin login. Three ways out, each breakable on its own (``SOURCE_MODES``):

- ``html``: ``/admin/reservations?date=YYYY-MM-DD[&page=N]``, a Japanese table, paginated;
- ``csv``: ``/admin/reservations.csv?from=…&to=…``, CP932 (Shift_JIS) as Japanese admin screens export;
- ``ics``: ``/admin/calendar.ics``, an iCalendar feed (TZID=Asia/Tokyo, or UTC).

The generator (``ReservationBook.seed``) is deterministic for a seed: Japanese names and fictional
phone numbers (090-0000-xxxx).
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Tokyo")
SOURCES = ("html", "csv", "ics")
SOURCE_MODES = (
    "healthy",
    "error500",  # 500 Internal Server Error
    "login_rejected",  # html/csv: the session is not accepted (303 to the login page); ics: 401
    "maintenance",  # 200 with 「ただいまシステムメンテナンス中です。」
    "empty_without_text",  # html: an empty table without 「予約はありません」; csv/ics: an empty body
    "layout_changed",  # html: other class names; csv: other header names; ics: the name in X-NAME
    "redirect",  # 302 to another host
    "slow",  # answers after the admin endpoint's ``delay``
    "pagination_loop",  # html: the last page's 次へ leads back to page 1
    "next_other_host",  # html: 次へ leads to another host
)
CONFIRMED, CANCELLED = "予約確定", "キャンセル"
EMPTY_TEXT = "予約はありません"
MAINTENANCE_TEXT = "ただいまシステムメンテナンス中です。"
CSV_HEADER = ("予約番号", "予約日", "予約時間", "お名前", "電話番号", "メニュー", "状態")
_CHANGED_CSV_HEADER = ("No.", "日付", "時間", "氏名", "TEL", "コース", "ステータス")
_WEEKDAYS = "月火水木金土日"
_FAMILY = [
    "佐藤",
    "鈴木",
    "高橋",
    "田中",
    "伊藤",
    "渡辺",
    "山本",
    "中村",
    "小林",
    "加藤",
    "吉田",
    "山田",
    "佐々木",
    "山口",
    "松本",
    "井上",
    "木村",
    "林",
    "清水",
    "斎藤",
]
_GIVEN = [
    "太郎",
    "花子",
    "一郎",
    "美咲",
    "健太",
    "陽菜",
    "翔太",
    "結衣",
    "大輔",
    "彩",
    "拓也",
    "優子",
    "直樹",
    "真由美",
    "悠真",
    "さくら",
    "蓮",
    "葵",
    "湊",
    "凛",
]
_MENUS = ("一般歯科", "クリーニング", "定期検診", "ホワイトニング", "矯正相談", "小児歯科")


@dataclass(frozen=True, slots=True)
class Appointment:
    id: str
    start: dt.datetime  # aware, Asia/Tokyo
    end: dt.datetime
    name: str
    phone: str = ""
    menu: str = ""
    cancelled: bool = False

    @property
    def day(self) -> dt.date:
        return self.start.astimezone(TZ).date()

    @property
    def status(self) -> str:
        return CANCELLED if self.cancelled else CONFIRMED

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "name": self.name,
            "phone": self.phone,
            "menu": self.menu,
            "cancelled": self.cancelled,
        }


def moment(value: dt.datetime | str) -> dt.datetime:
    """An aware datetime: naive ones and ISO texts (``2026-12-02T10:00``) are Asia/Tokyo."""
    when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=TZ) if when.tzinfo is None else when


class ReservationBook:
    """The portal's appointments, changed at will by tests, the demo and the benchmark."""

    def __init__(self) -> None:
        self._items: dict[str, Appointment] = {}
        self._counter = 0
        # Told of each booking, change and cancellation: ``listener(kind, appointment)`` with kind
        # booked | changed | cancelled (the portal's booking mails: ``failover.fakes.booking_mail``).
        self.listeners: list[Callable[[str, Appointment], None]] = []

    def _tell(self, kind: str, appointment: Appointment) -> None:
        for listener in self.listeners:
            listener(kind, appointment)

    def add(
        self,
        start: dt.datetime | str,
        name: str,
        *,
        end: dt.datetime | str | None = None,
        minutes: int = 30,
        phone: str = "",
        menu: str = "",
        cancelled: bool = False,
        id: str | None = None,
    ) -> Appointment:
        begins = moment(start)
        ends = moment(end) if end is not None else begins + dt.timedelta(minutes=minutes)
        if id is None:
            self._counter += 1
            id = f"R{self._counter:07d}"
        if id in self._items:
            raise ValueError(f"appointment {id} exists")
        appointment = Appointment(id, begins, ends, name, phone, menu, cancelled)
        self._items[id] = appointment
        if not cancelled:
            self._tell("booked", appointment)
        return appointment

    def change(self, id: str, **fields: object) -> Appointment:
        """Change ``start``, ``end``, ``name``, ``phone``, ``menu`` or ``cancelled`` of appointment ``id``."""
        unknown = set(fields) - {"start", "end", "name", "phone", "menu", "cancelled"}
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}")
        current = self.get(id)
        values = dict(fields)
        for key in ("start", "end"):
            if key in values:
                values[key] = moment(values[key])  # type: ignore[arg-type]
        if "start" in values and "end" not in values:
            values["end"] = values["start"] + (current.end - current.start)  # type: ignore[operator]
        changed = replace(current, **values)  # type: ignore[arg-type]
        self._items[id] = changed
        if changed.cancelled and not current.cancelled:
            self._tell("cancelled", changed)
        elif changed != current and not changed.cancelled:
            self._tell("changed", changed)
        return changed

    def cancel(self, id: str) -> Appointment:
        """Cancelled: still listed, with status キャンセル."""
        return self.change(id, cancelled=True)

    def remove(self, id: str) -> Appointment:
        """Gone from every listing (a portal that deletes instead of cancelling)."""
        appointment = self.get(id)
        del self._items[id]
        return appointment

    def get(self, id: str) -> Appointment:
        try:
            return self._items[id]
        except KeyError:
            raise KeyError(f"no appointment {id}") from None

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def all(self) -> list[Appointment]:
        return sorted(self._items.values(), key=lambda a: (a.start, a.id))

    def on(self, day: dt.date) -> list[Appointment]:
        return [a for a in self.all() if a.day == day]

    def between(self, first: dt.date, last: dt.date) -> list[Appointment]:
        return [a for a in self.all() if first <= a.day <= last]

    def seed(
        self, days: int = 14, per_day: int = 80, *, start: dt.date | None = None, seed: int = 0
    ) -> list[Appointment]:
        """``per_day`` appointments on each of ``days`` days from ``start`` (default: today in Tokyo),
        the same for the same seed: 15-minute slots from 9:00 over as many chairs as needed, about
        one in twenty cancelled."""
        rng = random.Random(seed)
        first = start or dt.datetime.now(TZ).date()
        made = []
        for offset in range(days):
            day = first + dt.timedelta(days=offset)
            for n in range(per_day):
                slot = n // max(1, -(-per_day // 40))  # at most 40 slots (9:00-19:00)
                begins = dt.datetime.combine(day, dt.time(9, 0), tzinfo=TZ) + dt.timedelta(minutes=15 * slot)
                made.append(
                    self.add(
                        begins,
                        f"{rng.choice(_FAMILY)} {rng.choice(_GIVEN)}",
                        minutes=rng.choice((15, 30, 30, 45, 60)),
                        phone=f"090-0000-{rng.randrange(10000):04d}",
                        menu=rng.choice(_MENUS),
                        cancelled=rng.random() < 0.05,
                    )
                )
        return made


# -- the admin screens ---------------------------------------------------------------------------


def japanese_date(day: dt.date) -> str:
    """``12月2日(水)``"""
    return f"{day.month}月{day.day}日({_WEEKDAYS[day.weekday()]})"


def html_list(
    appointments: list[Appointment],
    day: dt.date,
    page: int,
    page_size: int,
    mode: str,
    path: str,
    clinic_name: str,
    other_host: str,
) -> str:
    """The body of one page of ``day``'s reservation list (the caller wraps it in a page)."""
    rows = [] if mode == "empty_without_text" else appointments
    shown = rows[(page - 1) * page_size : page * page_size]
    pages = max(1, -(-len(rows) // page_size))
    changed = mode == "layout_changed"
    cells = "".join(_html_row(a, changed) for a in shown)
    head = "".join(f"<th>{h}</th>" for h in ("日付", "時間", "お名前", "電話番号", "メニュー", "状態"))
    table_class = "list" if not changed else "list v2"
    body = [
        f'<h1>{html.escape(clinic_name)} 管理画面</h1><a href="/admin/login">ログアウト</a>',
        f"<h2>{japanese_date(day)}の予約一覧</h2>",
        f'<table class="{table_class}"><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>',
    ]
    if not rows and mode != "empty_without_text":
        body.append(f'<p class="empty">{EMPTY_TEXT}</p>')
    link = None
    if mode == "next_other_host":
        link = f"{other_host}{path}?date={day.isoformat()}&page={page + 1}"
    elif page < pages:
        link = f"{path}?date={day.isoformat()}&page={page + 1}"
    elif mode == "pagination_loop":
        link = f"{path}?date={day.isoformat()}&page=1"
    if link is not None:
        body.append(f'<p class="pager"><a class="next" href="{html.escape(link)}">次へ</a></p>')
    return "".join(body)


def _html_row(a: Appointment, changed: bool) -> str:
    end = a.end.astimezone(TZ)
    start = a.start.astimezone(TZ)
    values = (
        ("date", japanese_date(a.day)),
        ("time", f"{start:%H:%M}〜{end:%H:%M}"),
        ("name", a.name),
        ("tel", a.phone),
        ("menu", a.menu),
        ("status", a.status),
    )
    prefix, attribute = ("col-", "data-id") if changed else ("", "data-reservation-id")
    cells = "".join(f'<td class="{prefix}{cls}">{html.escape(text)}</td>' for cls, text in values)
    return f'<tr {attribute}="{html.escape(a.id)}">{cells}</tr>'


def csv_export(appointments: Iterable[Appointment], mode: str, encoding: str = "cp932") -> bytes:
    """The CSV export, CP932-encoded by default (characters it lacks become ``?``, as such exports do)."""
    if mode == "empty_without_text":
        return b""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(_CHANGED_CSV_HEADER if mode == "layout_changed" else CSV_HEADER)
    for a in appointments:
        start, end = a.start.astimezone(TZ), a.end.astimezone(TZ)
        writer.writerow((a.id, f"{start:%Y/%m/%d}", f"{start:%H:%M}-{end:%H:%M}", a.name, a.phone, a.menu, a.status))
    return out.getvalue().encode(encoding, errors="replace")


def ics_feed(appointments: Iterable[Appointment], mode: str, *, utc: bool = False) -> bytes:
    """An iCalendar feed of ``appointments``; times with TZID=Asia/Tokyo, or in UTC (``...Z``)."""
    if mode == "empty_without_text":
        return b""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//portalguard//portal simulator//JA", "CALSCALE:GREGORIAN"]
    stamp = "20260101T000000Z"
    for a in appointments:
        lines += ["BEGIN:VEVENT", f"UID:{_ics_text(a.id)}@portal.example", f"DTSTAMP:{stamp}"]
        for key, when in (("DTSTART", a.start), ("DTEND", a.end)):
            if utc:
                lines.append(f"{key}:{when.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}")
            else:
                lines.append(f"{key};TZID=Asia/Tokyo:{when.astimezone(TZ):%Y%m%dT%H%M%S}")
        name_key = "X-NAME" if mode == "layout_changed" else "SUMMARY"
        lines += [
            f"{name_key}:{_ics_text(a.name)}",
            f"X-PHONE:{_ics_text(a.phone)}",
            f"DESCRIPTION:{_ics_text(a.menu)}",
            f"STATUS:{'CANCELLED' if a.cancelled else 'CONFIRMED'}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines).encode("utf-8")


def _ics_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """RFC 5545 folding: lines of at most 75 octets, continued with a space."""
    out, current = [], b""
    for char in line:
        encoded = char.encode("utf-8")
        if len(current) + len(encoded) > (75 if not out else 74):
            out.append(current.decode("utf-8"))
            current = b""
        current += encoded
    out.append(current.decode("utf-8"))
    return "\r\n ".join(out)


def parse_day(text: str | None) -> dt.date:
    if not text:
        raise ValueError("missing date")
    return dt.date.fromisoformat(text)
