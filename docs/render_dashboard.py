"""Render the Grafana dashboard's panels from real Prometheus data with matplotlib.

No Grafana server can run here, so this draws the panels of dashboards/grafana/portalguard-overview.json
(their titles, layout, queries, units, value mappings and thresholds) from Prometheus query results:

    python docs/render_dashboard.py                  # writes docs/screenshots/dashboard.png

It starts Debian's Prometheus on 127.0.0.1 (temporary storage) scraping a synthetic portalguard that
exports the real metrics, plays a compressed outage (healthy, portal DOWN, failover ON, a Google Ads
action that needs two retries, recovery) for about 90 seconds, then queries every panel and draws it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.dashboards import livestack  # the live-Prometheus rig the dashboard tests use
from watchdog.result import FailureKind

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots" / "dashboard.png"
INTERVAL_S = 5  # $__interval in the compressed scenario (Grafana: the panel's 1m minimum)

# Grafana's dark theme.
BG, PANEL_BG, BORDER, TEXT, MUTED, GRID = "#111217", "#181b1f", "#2c3235", "#ccccdc", "#8e8e9e", "#2c3235"
COLORS = {
    "green": "#73bf69",
    "red": "#f2495c",
    "orange": "#ff9830",
    "yellow": "#fade2a",
    "blue": "#5794f2",
    "purple": "#b877d9",
    "text": "#ccccdc",
    "transparent": "#22252b",
}
PALETTE = ["#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0", "#508642"]
PX_PER_COL, PX_PER_ROW, DPI = 76, 30, 100
HEADER_PX = 70  # the dashboard title above the grid


# -------------------------------------------------------------------------------------------- scenario


def play_outage(target: livestack.SyntheticPortalguard, prom: livestack.Prometheus, say: Callable[[str], None]) -> None:
    """About 90 s: healthy, a canary blip, the portal fails (503, then timeouts), failover, recovery."""
    prom.wait_target_up()
    t0 = time.monotonic()

    def at(second: float, what: str) -> None:
        time.sleep(max(0.0, t0 + second - time.monotonic()))
        say(f"{second:5.0f} s  {what}")

    at(0, "healthy")
    at(12, "one canary fails for a few seconds (not all: no verdict change)")
    target.set_world(canaries_ok=(True, False))
    at(16, "canary back")
    target.set_world(canaries_ok=(True, True))
    at(25, "portal answers 503: DEGRADED, then DOWN -> failover ON")
    target.fail("public", FailureKind.HTTP_STATUS)
    at(38, "portal times out; staff login rejected")
    target.fail("public", FailureKind.TIMEOUT)
    target.fail("admin", FailureKind.LOGIN)
    at(48, "staff login works again")
    target.fail("admin", None)
    at(62, "portal answers again: RECOVERING, then UP -> failover OFF")
    target.fail("public", None)
    at(88, "done")


# ---------------------------------------------------------------------------------------------- values


@dataclass
class Series:
    name: str
    times: list[float]
    values: list[float]
    ref_id: str = "A"


@dataclass
class FieldConfig:
    unit: str = ""
    decimals: int | None = None
    min: float | None = None
    max: float | None = None
    mappings: dict[str, tuple[str, str]] = field(default_factory=dict)  # value -> (text, color)
    thresholds: list[tuple[float, str]] = field(default_factory=list)

    @classmethod
    def of(cls, defaults: dict[str, Any]) -> FieldConfig:
        steps = defaults.get("thresholds", {}).get("steps", [])
        return cls(
            unit=defaults.get("unit", ""),
            decimals=defaults.get("decimals"),
            min=defaults.get("min"),
            max=defaults.get("max"),
            mappings=mappings_of(defaults.get("mappings", [])),
            thresholds=[(-math.inf if s["value"] is None else s["value"], s["color"]) for s in steps],
        )

    def text(self, value: float) -> str:
        mapped = self.mapped(value)
        if mapped:
            return mapped[0]
        if math.isnan(value):
            return "NaN"
        decimals = 2 if self.decimals is None else self.decimals
        if self.unit == "percentunit":
            return f"{value * 100:.{decimals}f}%"
        if self.unit == "s":
            return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.{max(decimals, 1)}f} s"
        if self.unit == "d":
            return f"{value:.{decimals}f} days"
        if self.unit == "reqps":
            return f"{value:.{decimals}f} req/s"
        return f"{value:.{decimals}f}"

    def color(self, value: float) -> str:
        mapped = self.mapped(value)
        if mapped:
            return COLORS.get(mapped[1], mapped[1])
        chosen = "text"
        for threshold, color in self.thresholds:
            if value >= threshold:
                chosen = color
        return COLORS.get(chosen, chosen)

    def mapped(self, value: float) -> tuple[str, str] | None:
        if math.isnan(value) or value != int(value):
            return None
        return self.mappings.get(str(int(value)))


def mappings_of(mappings: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for mapping in mappings:
        for key, result in mapping.get("options", {}).items():
            out[key] = (result.get("text", key), result.get("color", "text"))
    return out


def legend(fmt: str, labels: dict[str, str]) -> str:
    if not fmt:
        return ", ".join(f"{k}={v}" for k, v in labels.items() if k != "__name__") or "value"
    for key, value in labels.items():
        fmt = fmt.replace("{{" + key + "}}", value)
    return fmt


def fetch(prom: livestack.Prometheus, panel: dict[str, Any], start: float, end: float) -> list[Series]:
    out: list[Series] = []
    step = INTERVAL_S if panel.get("interval") else 1  # Grafana queries with step = $__interval
    for target in panel.get("targets", []):
        expr = livestack.substitute(target["expr"], portal=".*", range_s=end - start, interval_s=INTERVAL_S)
        if target.get("instant") and not target.get("range"):
            rows = [(s["metric"], [s["value"]]) for s in prom.query(expr, at=end)]
        else:
            rows = [(s["metric"], s["values"]) for s in prom.query_range(expr, start, end, step=step)]
        for labels, points in rows:
            name = legend(target.get("legendFormat", ""), labels)
            out.append(Series(name, [float(t) for t, _ in points], [float(v) for _, v in points], target["refId"]))
    return out


# ---------------------------------------------------------------------------------------------- drawing


def panel_axes(fig: Figure, pos: dict[str, int], title: str, margin: float = 0.06) -> Axes:
    """An axes placed like the panel's gridPos, with the panel title above it; ``margin``: for y labels."""
    w_in, h_in = fig.get_size_inches()
    x = (pos["x"] * PX_PER_COL + 6) / (w_in * DPI)
    width = (pos["w"] * PX_PER_COL - 12) / (w_in * DPI)
    top = 1 - (pos["y"] * PX_PER_ROW + 6 + HEADER_PX) / (h_in * DPI)
    height = (pos["h"] * PX_PER_ROW - 12) / (h_in * DPI)
    frame = fig.add_axes((x, top - height, width, height))
    frame.set_facecolor(PANEL_BG)
    for spine in frame.spines.values():
        spine.set_color(BORDER)
    frame.set_xticks([])
    frame.set_yticks([])
    frame.text(
        0.01, 0.985, title, transform=frame.transAxes, va="top", ha="left", color=TEXT, fontsize=10, weight="bold"
    )
    inner = frame.inset_axes((margin, 0.16, 0.98 - margin, 0.70))
    inner.set_facecolor(PANEL_BG)
    return inner


def style_time_axes(ax: Axes, cfg: FieldConfig, start: float, end: float) -> None:
    ax.set_xlim(datetime.fromtimestamp(start), datetime.fromtimestamp(end))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    ax.xaxis.set_major_locator(mdates.SecondLocator(interval=15))
    ax.tick_params(colors=MUTED, labelsize=7)
    ax.grid(True, color=GRID, linewidth=0.5)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: axis_text(cfg.unit, v)))


def axis_text(unit: str, value: float) -> str:
    if unit == "percentunit":
        return f"{value * 100:.0f}%"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:g} s"
    if unit == "reqps":
        return f"{value:g} req/s"
    return f"{value:g}"


def apply_limits(ax: Axes, cfg: FieldConfig) -> None:
    """After plotting, so autoscaling has seen the data (as Grafana's soft limits do)."""
    if cfg.min is not None:
        ax.set_ylim(bottom=cfg.min)
    if cfg.max is not None:
        ax.set_ylim(top=cfg.max * 1.04)


def draw_legend(ax: Axes, handles: Sequence[Any], labels: Sequence[str]) -> None:
    if labels:
        ax.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.12),
            ncol=min(4, len(labels)),
            fontsize=7,
            frameon=False,
            labelcolor=TEXT,
            handlelength=1.2,
        )


def draw_timeseries(ax: Axes, panel: dict[str, Any], series: list[Series], start: float, end: float) -> None:
    cfg = FieldConfig.of(panel["fieldConfig"]["defaults"])
    custom = panel["fieldConfig"]["defaults"].get("custom", {})
    style_time_axes(ax, cfg, start, end)
    if not series:
        ax.text(
            0.5,
            0.5,
            panel["fieldConfig"]["defaults"].get("noValue", "No data"),
            transform=ax.transAxes,
            ha="center",
            va="center",
            color=MUTED,
            fontsize=11,
        )
        return
    handles, names = [], []
    if custom.get("drawStyle") == "bars":
        bottoms: dict[float, float] = {}
        for i, s in enumerate(series):
            xs = [datetime.fromtimestamp(t) for t in s.times]
            base = [bottoms.get(t, 0.0) for t in s.times]
            bar = ax.bar(xs, s.values, bottom=base, width=INTERVAL_S / 86400 * 0.8, color=PALETTE[i % len(PALETTE)])
            for t, v in zip(s.times, s.values, strict=True):
                bottoms[t] = bottoms.get(t, 0.0) + v
            handles.append(bar)
            names.append(s.name)
    else:
        step = custom.get("lineInterpolation") == "stepAfter"
        for i, s in enumerate(series):
            xs = [datetime.fromtimestamp(t) for t in s.times]
            (line,) = ax.plot(
                xs,
                s.values,
                color=PALETTE[i % len(PALETTE)],
                linewidth=1.3,
                drawstyle="steps-post" if step else "default",
            )
            handles.append(line)
            names.append(s.name)
    apply_limits(ax, cfg)
    draw_legend(ax, handles, names)


def draw_timeline(ax: Axes, panel: dict[str, Any], series: list[Series], start: float, end: float) -> None:
    defaults = FieldConfig.of(panel["fieldConfig"]["defaults"])
    by_ref = {
        o["matcher"]["options"]: mappings_of(p["value"])
        for o in panel["fieldConfig"].get("overrides", [])
        for p in o["properties"]
        if p["id"] == "mappings"
    }
    style_time_axes(ax, defaults, start, end)
    ax.grid(False)
    ax.set_ylim(-0.5, len(series) - 0.5)
    ax.invert_yaxis()
    ax.set_yticks(range(len(series)), [s.name for s in series], fontsize=8, color=TEXT)
    for row, s in enumerate(series):
        cfg = FieldConfig(mappings=by_ref.get(s.ref_id, defaults.mappings))
        for t0, t1, value in segments(s, end):
            x0, x1 = datetime.fromtimestamp(t0), datetime.fromtimestamp(t1)
            ax.barh(row, x1 - x0, left=x0, height=0.8, color=cfg.color(value), edgecolor=PANEL_BG, linewidth=0.5)
            if t1 - t0 > (end - start) * 0.07:
                dark = cfg.mapped(value) is not None and cfg.mapped(value)[1] != "transparent"  # type: ignore[index]
                ax.text(
                    x0 + (x1 - x0) / 2,
                    row,
                    cfg.text(value),
                    ha="center",
                    va="center",
                    fontsize=7.5,
                    color="#111217" if dark else MUTED,
                )


def segments(s: Series, end: float) -> list[tuple[float, float, float]]:
    out: list[tuple[float, float, float]] = []
    for i, (t, v) in enumerate(zip(s.times, s.values, strict=True)):
        nxt = s.times[i + 1] if i + 1 < len(s.times) else end
        if out and out[-1][2] == v and math.isclose(out[-1][1], t, abs_tol=1.5):
            out[-1] = (out[-1][0], nxt, v)
        else:
            out.append((t, nxt, v))
    return out


def draw_stat(ax: Axes, panel: dict[str, Any], series: list[Series]) -> None:
    cfg = FieldConfig.of(panel["fieldConfig"]["defaults"])
    ax.set_axis_off()
    background = panel["options"].get("colorMode") == "background"
    if not series:
        ax.text(
            0.5,
            0.5,
            panel["fieldConfig"]["defaults"].get("noValue", "No data"),
            ha="center",
            va="center",
            color=MUTED,
            fontsize=10,
        )
        return
    narrow = panel["gridPos"]["w"] <= 4
    cols = 1 if narrow else len(series) if len(series) <= 4 else math.ceil(len(series) / 2)
    rows = math.ceil(len(series) / cols)
    for i, s in enumerate(series):
        value = s.values[-1]
        r, c = divmod(i, cols)
        x, y, w, h = c / cols, 1 - (r + 1) / rows, 1 / cols, 1 / rows
        color = cfg.color(value)
        if background:
            ax.add_patch(plt.Rectangle((x + 0.01, y + 0.02), w - 0.02, h - 0.04, color=color, transform=ax.transAxes))
        fg = "#111217" if background else color
        ax.text(
            x + w / 2,
            y + h * 0.72,
            s.name,
            ha="center",
            va="center",
            fontsize=8,
            color="#111217" if background else MUTED,
            transform=ax.transAxes,
        )
        size = 15 if len(series) <= 2 else 12
        ax.text(
            x + w / 2,
            y + h * 0.34,
            cfg.text(value),
            ha="center",
            va="center",
            fontsize=size,
            weight="bold",
            color=fg,
            transform=ax.transAxes,
        )


def draw_bargauge(ax: Axes, panel: dict[str, Any], series: list[Series]) -> None:
    cfg = FieldConfig.of(panel["fieldConfig"]["defaults"])
    ax.set_facecolor(PANEL_BG)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if not series:
        ax.set_axis_off()
        ax.text(
            0.5, 0.5, panel["fieldConfig"]["defaults"].get("noValue", "No data"), ha="center", va="center", color=MUTED
        )
        return
    names = [s.name for s in series]
    values = [s.values[-1] for s in series]
    ax.barh(range(len(values)), values, color=[cfg.color(v) for v in values], height=0.6)
    ax.set_yticks(range(len(values)), names, fontsize=8, color=TEXT)
    ax.invert_yaxis()
    ax.tick_params(colors=MUTED, labelsize=7)
    for i, v in enumerate(values):
        ax.text(v, i, f" {cfg.text(v)}", va="center", color=TEXT, fontsize=8)
    ax.set_xlim(0, max(values) * 1.2)


def collect(prom: livestack.Prometheus, dashboard: dict[str, Any], start: float, end: float) -> dict[str, Any]:
    """Every panel's query results, keyed by panel id (JSON-serialisable, see --data)."""
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    return {
        "start": start,
        "end": end,
        "panels": {str(p["id"]): [asdict(s) for s in fetch(prom, p, start, end)] for p in panels},
    }


def render(data: dict[str, Any], dashboard: dict[str, Any], output: Path) -> None:
    start, end = data["start"], data["end"]
    panels = dashboard["panels"]
    total_rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    fig = plt.figure(figsize=(24 * PX_PER_COL / DPI, (total_rows * PX_PER_ROW + HEADER_PX) / DPI), dpi=DPI)
    fig.patch.set_facecolor(BG)
    height_px = fig.get_size_inches()[1] * DPI
    fig.text(0.005, 1 - 22 / height_px, dashboard["title"], color=TEXT, fontsize=15, weight="bold", va="center")
    fig.text(0.005, 1 - 50 / height_px, SUBTITLE, color=MUTED, fontsize=9, va="center")
    draw: dict[str, Callable[[Axes, dict[str, Any], list[Series]], None]] = {
        "timeseries": lambda a, p, s: draw_timeseries(a, p, s, start, end),
        "state-timeline": lambda a, p, s: draw_timeline(a, p, s, start, end),
        "stat": draw_stat,
        "bargauge": draw_bargauge,
    }
    for panel in panels:
        pos = panel["gridPos"]
        if panel["type"] == "row":
            y = 1 - (pos["y"] * PX_PER_ROW + HEADER_PX + 15) / height_px
            fig.text(0.005, y, panel["title"], color=TEXT, fontsize=12, weight="bold", va="center")
            continue
        left = {"state-timeline": 0.13 if pos["w"] >= 20 else 0.2, "bargauge": 0.2}.get(panel["type"], 0.07)
        ax = panel_axes(fig, pos, panel["title"], left)
        series = [Series(**s) for s in data["panels"][str(panel["id"])]]
        draw[panel["type"]](ax, panel, series)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=DPI, facecolor=BG)
    plt.close(fig)


SUBTITLE = (
    "Rendered with matplotlib from Prometheus query results (no Grafana server can run here): a 90-second "
    "compressed outage of a synthetic portalguard exporting the real metrics, scraped every second by Prometheus 2.42."
)


def record(dashboard: dict[str, Any]) -> dict[str, Any]:
    """Run the scenario against a real Prometheus and collect every panel's data."""
    target = livestack.SyntheticPortalguard(portal="epark-shibuya")
    try:
        with livestack.Prometheus(target.address) as prom:
            prom.wait_target_up()
            start = time.time()
            play_outage(target, prom, print)
            time.sleep(2)  # let the last scrape and rule evaluation land
            return collect(prom, dashboard, start, time.time())
    finally:
        target.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument(
        "--data", type=Path, help="JSON file of recorded query results: reused if it exists, else written"
    )
    args = parser.parse_args(argv)
    dashboard = livestack.load_dashboard()
    if args.data and args.data.exists():
        data = json.loads(args.data.read_text(encoding="utf-8"))
    else:
        data = record(dashboard)
        if args.data:
            args.data.write_text(json.dumps(data), encoding="utf-8")
    render(data, dashboard, args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
