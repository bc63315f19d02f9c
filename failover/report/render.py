"""The availability report as people and programs read it: Markdown (Japanese or English), CSV
(one row per portal, or one per outage) and JSON. Times are the clinic's wall clock, in its zone."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from failover.report.availability import Availability, Outage
from failover.report.period import Period
from watchdog.duration import format_duration


@dataclass(frozen=True, slots=True)
class View:
    """How to show times: the clinic's zone, and the service's clock reading as wall time."""

    zone: ZoneInfo
    to_wall: Callable[[float], float] = field(default=lambda ts: ts)
    names: dict[str, str] = field(default_factory=dict)  # portal id -> the name people read

    def local(self, ts: float) -> datetime:
        return datetime.fromtimestamp(self.to_wall(ts), self.zone)

    def when(self, ts: float) -> str:
        return self.local(ts).strftime("%Y-%m-%d %H:%M:%S %Z")

    def iso(self, ts: float) -> str:
        return self.local(ts).isoformat(timespec="seconds")

    def name(self, portal: str) -> str:
        return self.names.get(portal, portal)


TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Availability report",
        "period": "Period",
        "until_now": "ends now",
        "rule": "Unobserved time (the service stopped, or our own network down) counts neither as up nor as down. "
        "Availability = time up ÷ time observed.",
        "availability": "Availability",
        "observed": "Time observed",
        "unobserved": "Time unobserved",
        "outages": "Outages",
        "downtime": "Total downtime",
        "longest": "Longest outage",
        "mttr": "Mean time to recovery",
        "to_failover": "First failed probe to failover on (mean)",
        "requests": "Booking requests during outages",
        "ads": "Ads ran",
        "minutes": "min",
        "none": "none",
        "nothing": "nothing observed",
        "start": "start",
        "end": "end",
        "duration": "duration",
        "cause": "cause",
        "before": "before the period: cut at its start",
        "after": "goes on after the period: cut at its end",
        "ongoing": "ongoing",
        "no_failover": "no failover",
        "figure": "figure",
        "value": "value",
    },
    "ja": {
        "title": "稼働率レポート",
        "period": "期間",
        "until_now": "現在まで",
        "rule": "未観測時間（サービス停止中、または当方のネットワーク障害中）は稼働にも停止にも数えません。"
        "稼働率 = 稼働時間 ÷ 観測時間。",
        "availability": "稼働率",
        "observed": "観測時間",
        "unobserved": "未観測時間",
        "outages": "障害回数",
        "downtime": "停止時間の合計",
        "longest": "最長の障害",
        "mttr": "平均復旧時間 (MTTR)",
        "to_failover": "最初の失敗からフェイルオーバーまで（平均）",
        "requests": "障害中の予約リクエスト",
        "ads": "広告の配信時間",
        "minutes": "分",
        "none": "なし",
        "nothing": "観測なし",
        "start": "開始",
        "end": "終了",
        "duration": "継続時間",
        "cause": "原因",
        "before": "期間前から：期間の開始で区切り",
        "after": "期間後も継続：期間の終了で区切り",
        "ongoing": "継続中",
        "no_failover": "フェイルオーバーなし",
        "figure": "項目",
        "value": "値",
    },
}


def percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.3f} %"


def markdown(reports: list[Availability], period: Period, view: View, language: str = "en") -> str:
    t = TEXT[language]
    lines = [f"# {t['title']}: {period.label} ({view.zone.key})", ""]
    end = f"{view.when(reports[0].end)} ({t['until_now']})" if reports and reports[0].end < period.end else None
    lines += [f"- {t['period']}: {view.when(period.start)} – {end or view.when(period.end)}", f"- {t['rule']}", ""]
    for r in reports:
        lines += _portal_markdown(r, view, t)
    return "\n".join(lines).rstrip("\n") + "\n"


def _portal_markdown(r: Availability, view: View, t: dict[str, str]) -> list[str]:
    title = view.name(r.portal) if view.name(r.portal) == r.portal else f"{view.name(r.portal)} ({r.portal})"
    rows = [
        (t["availability"], percent(r.ratio) if r.ratio is not None else t["nothing"]),
        (t["observed"], format_duration(r.observed)),
        (t["unobserved"], format_duration(r.unobserved)),
        (t["outages"], str(len(r.outages))),
        (t["downtime"], format_duration(r.down)),
        (t["longest"], format_duration(r.longest)),
        (t["mttr"], _maybe(r.mttr, t)),
        (t["to_failover"], _maybe(r.to_failover, t)),
        (t["requests"], str(r.requests)),
        (t["ads"], f"{_minutes(r.ads)} {t['minutes']}"),
    ]
    lines = [f"## {title}", "", f"| {t['figure']} | {t['value']} |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    if r.outages:
        lines += ["", f"### {t['outages']}", ""]
        lines += [
            f"| # | {t['start']} | {t['end']} | {t['duration']} | {t['unobserved']} | {t['cause']} | "
            f"{t['to_failover']} | {t['requests']} |",
            "|---:|---|---|---:|---:|---|---:|---:|",
        ]
        lines += [_outage_row(i, o, view, t) for i, o in enumerate(r.outages, 1)]
    return [*lines, ""]


def _outage_row(n: int, o: Outage, view: View, t: dict[str, str]) -> str:
    start = view.when(o.start) + (f" ({t['before']})" if o.clipped_start else "")
    if o.ongoing:
        end = f"{view.when(o.end)} ({t['ongoing']})"
    else:
        end = view.when(o.end) + (f" ({t['after']})" if o.clipped_end else "")
    to_failover = format_duration(o.to_failover) if o.to_failover is not None else t["no_failover"]
    cause = _cell(o.cause) or "-"
    return (
        f"| {n} | {start} | {end} | {format_duration(o.duration)} | {format_duration(o.unobserved)} | {cause} | "
        f"{to_failover} | {o.requests} |"
    )


PORTAL_COLUMNS = [
    "portal",
    "name",
    "period_start",
    "period_end",
    "availability_percent",
    "observed_s",
    "unobserved_s",
    "up_s",
    "down_s",
    "outages",
    "longest_outage_s",
    "mttr_s",
    "to_failover_mean_s",
    "requests_during_outages",
    "ads_minutes",
]
OUTAGE_COLUMNS = [
    "portal",
    "number",
    "start",
    "end",
    "duration_s",
    "unobserved_s",
    "down_s",
    "cause",
    "to_failover_s",
    "requests",
    "clipped_start",
    "clipped_end",
    "ongoing",
]


def portal_rows(reports: list[Availability], view: View) -> list[dict[str, Any]]:
    """One dict per portal with every figure (seconds, the ratio as a percentage): CSV and JSON."""
    return [
        {
            "portal": r.portal,
            "name": view.name(r.portal),
            "period_start": view.iso(r.start),
            "period_end": view.iso(r.end),
            "availability_percent": None if r.ratio is None else round(r.ratio * 100, 4),
            "observed_s": _num(r.observed),
            "unobserved_s": _num(r.unobserved),
            "up_s": _num(r.up),
            "down_s": _num(r.down),
            "outages": len(r.outages),
            "longest_outage_s": _num(r.longest),
            "mttr_s": None if r.mttr is None else _num(r.mttr),
            "to_failover_mean_s": None if r.to_failover is None else _num(r.to_failover),
            "requests_during_outages": r.requests,
            "ads_minutes": _minutes(r.ads),
        }
        for r in reports
    ]


def outage_rows(r: Availability, view: View) -> list[dict[str, Any]]:
    return [
        {
            "portal": r.portal,
            "number": n,
            "start": view.iso(o.start),
            "end": view.iso(o.end),
            "duration_s": _num(o.duration),
            "unobserved_s": _num(o.unobserved),
            "down_s": _num(o.down),
            "cause": o.cause,
            "to_failover_s": None if o.to_failover is None else _num(o.to_failover),
            "requests": o.requests,
            "clipped_start": o.clipped_start,
            "clipped_end": o.clipped_end,
            "ongoing": o.ongoing,
        }
        for n, o in enumerate(r.outages, 1)
    ]


def csv_report(reports: list[Availability], view: View, outages: bool = False) -> str:
    """One row per portal, or (``outages``) one row per outage of every portal."""
    columns = OUTAGE_COLUMNS if outages else PORTAL_COLUMNS
    rows = [row for r in reports for row in outage_rows(r, view)] if outages else portal_rows(reports, view)
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return out.getvalue()


def json_report(reports: list[Availability], period: Period, view: View) -> dict[str, Any]:
    portals = portal_rows(reports, view)
    for row, r in zip(portals, reports, strict=True):
        row["outage_list"] = outage_rows(r, view)
    return {
        "period": {"label": period.label, "start": view.iso(period.start), "end": view.iso(period.end)},
        "timezone": view.zone.key,
        "portals": portals,
    }


def _maybe(seconds: float | None, t: dict[str, str]) -> str:
    return t["none"] if seconds is None else format_duration(seconds)


def _minutes(seconds: float) -> float | int:
    return _num(round(seconds / 60, 1))


def _num(value: float) -> float | int:
    """Whole numbers as integers (``2592000``, not ``2592000.0``); others to the millisecond."""
    return int(value) if float(value).is_integer() else round(value, 3)


def _cell(text: str) -> str:
    """A Markdown table cell: one line, no column break."""
    return " ".join(text.split()).replace("|", "\\|")


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    """Text a portal wrote (a cause quoting its error page) must not become a spreadsheet formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    if value is None:
        return ""
    return value
