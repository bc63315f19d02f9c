"""Generate the portalguard Grafana dashboard from typed Python (grafana-foundation-sdk 11.6).

    python dashboards/build.py           # write dashboards/grafana/portalguard-overview.json
    python dashboards/build.py --check   # exit 1 if the committed JSON differs from what this code generates

Every panel queries the `${datasource}` variable (no hard-coded datasource uid) and filters by `$portal`.
Metric names come from watchdog/metrics.py and failover/metrics.py (the Sites row: the metrics of HA mode,
issue 12); the uptime panels read the recording rules of dashboards/prometheus/rules.yml. The tests execute
every expression below against a real Prometheus, so a renamed metric cannot leave a panel silently empty.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, stat, statetimeline, timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

OUTPUT = Path(__file__).resolve().parent / "grafana" / "portalguard-overview.json"
UID = "portalguard-overview"

DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
P = 'portal=~"$portal"'  # the portal filter every per-portal query carries

# The verdict one-hot gauge (portalguard_portal_state{state}) folded into one number per portal.
VERDICT_CODES: dict[str, tuple[int, str, str]] = {
    "up": (1, "UP", "green"),
    "recovering": (2, "RECOVERING", "blue"),
    "degraded": (3, "DEGRADED", "orange"),
    "down": (4, "DOWN", "red"),
    "unknown": (5, "UNKNOWN (monitor network)", "purple"),
}
# Override > maintenance (the orchestrator's precedence), so overrides get the larger codes and `max` wins.
CONTROL_CODES: dict[tuple[str, str], tuple[int, str, str]] = {
    ("portalguard_maintenance_active", "suppress"): (1, "maintenance: suppress", "blue"),
    ("portalguard_maintenance_active", "failover"): (2, "maintenance: failover", "orange"),
    ("portalguard_override_active", "on"): (3, "override: forced ON", "red"),
    ("portalguard_override_active", "off"): (4, "override: forced OFF", "yellow"),
}
UPTIME_WINDOWS = ("24h", "7d", "30d")


# ---------------------------------------------------------------------------------------------- queries


def verdict_code_expr(metric: str = "portalguard_portal_state", by: str = "portal") -> str:
    arms = [f'{metric}{{{P},state="{s}"}} * {c}' for s, (c, _, _) in VERDICT_CODES.items()]
    return f"max by ({by}) (\n    " + "\n  or ".join(arms) + "\n)"


def control_code_expr() -> str:
    arms = [f'{m}{{{P},mode="{mode}"}} * {c}' for (m, mode), (c, _, _) in CONTROL_CODES.items()]
    return "max by (portal) (\n    " + "\n  or ".join(arms) + "\n)"


def uptime_rule(window: str) -> str:
    """The recording rule (dashboards/prometheus/rules.yml) holding a portal's uptime ratio."""
    return f"portal:portalguard_portal_up:ratio_{window}"


def q(expr: str, legend: str = "", *, instant: bool = False) -> prom.Dataquery:
    query = prom.Dataquery().expr(expr).datasource(DS)
    if legend:
        query = query.legend_format(legend)
    return query.instant() if instant else query.range()


# ------------------------------------------------------------------------------------- field helpers


def value_map(codes: Iterable[tuple[int | str, str, str]]) -> list[dm.ValueMapping]:
    options = {str(v): dm.ValueMappingResult(text=t, color=c, index=i) for i, (v, t, c) in enumerate(codes)}
    return [dm.ValueMap(options=options)]


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    return (
        db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps([dm.Threshold(value=v, color=c) for v, c in steps])
    )


def color(mode: dm.FieldColorModeId) -> db.FieldColor:
    return db.FieldColor().mode(mode)


def last_value() -> cb.ReduceDataOptions:
    return cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def legend_table(*calcs: str) -> cb.VizLegendOptions:
    return (
        cb.VizLegendOptions()
        .display_mode(cm.LegendDisplayMode.TABLE if calcs else cm.LegendDisplayMode.LIST)
        .placement(cm.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(list(calcs))
    )


def tooltip() -> cb.VizTooltipOptions:
    return cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.NONE)


# ---------------------------------------------------------------------------------------------- panels


def stat_panel(title: str, description: str, targets: Sequence[prom.Dataquery]) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .reduce_options(last_value())
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .text_mode(cm.BigValueTextMode.VALUE_AND_NAME)
        .justify_mode(cm.BigValueJustifyMode.AUTO)
        .orientation(cm.VizOrientation.AUTO)
    )
    for i, target in enumerate(targets):
        panel = panel.with_target(target.ref_id(chr(ord("A") + i)))
    return panel


def verdict_now() -> stat.Panel:
    codes = list(VERDICT_CODES.values())
    return (
        stat_panel(
            "Verdict now",
            "The watchdog's verdict per portal. DOWN switches the failover on; UNKNOWN means every "
            "canary fails (our own network), so nothing fails over.",
            [q(verdict_code_expr(), "{{portal}}", instant=True)],
        )
        .mappings(value_map(codes))
        .color_scheme(color(dm.FieldColorModeId.THRESHOLDS))
        .thresholds(thresholds((None, "text")))
        .no_value("no data: is portalguard scraped?")
        .height(5)
        .span(6)
    )


def failover_now() -> stat.Panel:
    return (
        stat_panel(
            "Failover",
            "ON while the fallback measures (fallback page, Google Ads, staff notifications, webhooks) "
            "are switched on for the portal.",
            [q(f"portalguard_failover_active{{{P}}}", "{{portal}}", instant=True)],
        )
        .mappings(value_map([(0, "off", "green"), (1, "FAILOVER ON", "red")]))
        .height(5)
        .span(4)
    )


def uptime_now() -> stat.Panel:
    targets = [q(f"{uptime_rule(w)}{{{P}}}", f"{{{{portal}}}} {w}", instant=True) for w in UPTIME_WINDOWS]
    return (
        stat_panel(
            "Uptime (24h / 7d / 30d)",
            "Share of time the verdict was not DOWN, from the recording rules "
            "portal:portalguard_portal_up:ratio_*. Time when portalguard was not running is not counted.",
            targets,
        )
        .unit("percentunit")
        .decimals(2)
        .min(0)
        .max(1)
        .thresholds(thresholds((None, "red"), (0.95, "orange"), (0.99, "green")))
        .color_mode(cm.BigValueColorMode.VALUE)
        .height(5)
        .span(8)
    )


def availability_30d() -> stat.Panel:
    return (
        stat_panel(
            "Availability 30 days",
            "Time up ÷ time observed over 30 days, from the recording rule "
            "portal:portalguard_portal_availability:ratio_30d: time unobserved (portalguard stopped, or "
            "UNKNOWN: our own network down) counts neither as up nor as down, as in `portalguard report availability`.",
            [q(f"portal:portalguard_portal_availability:ratio_30d{{{P}}}", "{{portal}}", instant=True)],
        )
        .unit("percentunit")
        .decimals(3)
        .min(0)
        .max(1)
        .thresholds(thresholds((None, "red"), (0.95, "orange"), (0.99, "green")))
        .color_mode(cm.BigValueColorMode.VALUE)
        .height(5)
        .span(4)
    )


def tls_days_left() -> stat.Panel:
    expr = f"min by (portal, endpoint) (portalguard_tls_cert_expiry_timestamp_seconds{{{P}}} - time()) / 86400"
    return (
        stat_panel(
            "TLS days left",
            "Days until the portal's server certificate expires (alert TLSCertExpiringSoon below 14 days). "
            "An expired certificate fails every probe and triggers a failover.",
            [q(expr, "{{portal}} {{endpoint}}", instant=True)],
        )
        .unit("d")
        .decimals(1)
        .thresholds(thresholds((None, "red"), (7, "orange"), (14, "green")))
        .color_mode(cm.BigValueColorMode.VALUE)
        .height(5)
        .span(6)
    )


def canary_status() -> stat.Panel:
    return (
        stat_panel(
            "Canary status",
            "URLs that should always answer. When all of them fail our own network is down: verdicts "
            "become UNKNOWN and the alert MonitorNetworkDegraded fires.",
            [q("portalguard_canary_up", "{{canary}}", instant=True)],
        )
        .mappings(value_map([(1, "up", "green"), (0, "DOWN", "red")]))
        .no_value("no canaries configured")
        .height(4)
        .span(6)
    )


def booking_total() -> stat.Panel:
    expr = f"round(sum by (portal) (increase(portalguard_booking_requests_total{{{P}}}[$__range])))"
    return (
        stat_panel(
            "Booking requests (range)",
            "Requests patients submitted on the fallback page in the selected time range. "
            "Staff find them with `portalguard requests` or on /staff.",
            [q(expr, "{{portal}}", instant=True)],
        )
        .decimals(0)
        .thresholds(thresholds((None, "blue")))
        .color_mode(cm.BigValueColorMode.VALUE)
        .height(4)
        .span(6)
    )


def control_now() -> stat.Panel:
    codes = [(0, "auto", "green"), *CONTROL_CODES.values()]
    return (
        stat_panel(
            "Override / maintenance",
            "auto: the verdict decides. A manual override (`portalguard failover on|off PORTAL`) wins over "
            "a maintenance window, which wins over the verdict. `portalguard failover auto PORTAL` clears it.",
            [q(control_code_expr(), "{{portal}}", instant=True)],
        )
        .mappings(value_map(codes))
        .height(4)
        .span(6)
    )


def last_cycle_age() -> stat.Panel:
    return (
        stat_panel(
            "Watchdog last cycle",
            "Seconds since the watchdog last handled a probe. Above 180 s the alert PortalguardStale fires: "
            "the monitor itself is stuck or dead and no failover can happen.",
            [q("time() - max(portalguard_last_cycle_timestamp_seconds)", "last cycle", instant=True)],
        )
        .unit("s")
        .decimals(0)
        .thresholds(thresholds((None, "green"), (60, "orange"), (180, "red")))
        .color_mode(cm.BigValueColorMode.VALUE)
        .no_value("no data: is portalguard scraped?")
        .height(4)
        .span(3)
    )


def store_writable() -> stat.Panel:
    return (
        stat_panel(
            "Store",
            "Whether portalguard can write its store (the SQLite file). NOT WRITABLE, typically a full disk: "
            "failover, /book and staff alerts go on from memory, but free disk space now (a restart would "
            "lose what could not be written). DAMAGED: SQLite's quick_check found the file damaged; restore "
            "it from the latest backup. /healthz says the same.",
            # writable 1/0, minus 2 when damaged: 1 writable, 0 not writable, -1 or -2 damaged
            [q("min(portalguard_store_writable) - 2 * max(portalguard_store_damaged)", "store", instant=True)],
        )
        .mappings(
            value_map(
                [(1, "writable", "green"), (0, "NOT WRITABLE", "red"), (-1, "DAMAGED", "red"), (-2, "DAMAGED", "red")]
            )
        )
        .no_value("no data: is portalguard scraped?")
        .height(4)
        .span(3)
    )


def action_ready() -> stat.Panel:
    return (
        stat_panel(
            "Action preflight (doctor)",
            "Result of each action's last preflight check (`portalguard doctor`). NOT READY means the "
            "action would fail when a failover needs it: fix its credentials or configuration now.",
            [q("portalguard_action_ready", "{{action}}", instant=True)],
        )
        .mappings(value_map([(1, "ready", "green"), (0, "NOT READY", "red")]))
        .height(8)
        .span(4)
    )


def switches() -> stat.Panel:
    def count(metric: str, extra: str) -> str:
        return f"round(sum by (portal) (increase({metric}{{{P}{extra}}}[$__range])))"

    return (
        stat_panel(
            "Switches (range)",
            "Failovers switched on, and verdict changes, in the selected range. Many verdict changes with "
            "few failovers: a flapping portal (the hysteresis is holding). Many failovers: staff decide.",
            [
                q(count("portalguard_failover_transitions_total", ',to="on"'), "{{portal}} failovers", instant=True),
                q(count("portalguard_portal_state_changes_total", ""), "{{portal}} verdict changes", instant=True),
            ],
        )
        .decimals(0)
        .thresholds(thresholds((None, "blue")))
        .color_mode(cm.BigValueColorMode.VALUE)
        .text_mode(cm.BigValueTextMode.VALUE_AND_NAME)
        .height(8)
        .span(4)
    )


def ts_panel(title: str, description: str, targets: Sequence[prom.Dataquery]) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .legend(legend_table())
        .tooltip(tooltip())
        .line_width(1)
        .fill_opacity(10)
        .show_points(cm.VisibilityMode.NEVER)
        .span_nulls(False)
    )
    for i, target in enumerate(targets):
        panel = panel.with_target(target.ref_id(chr(ord("A") + i)))
    return panel


def bars(panel: timeseries.Panel) -> timeseries.Panel:
    return (
        panel.draw_style(cm.GraphDrawStyle.BARS)
        .fill_opacity(80)
        .stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL).group("A"))
        .interval("1m")  # $__interval >= 1m: every bar counts one non-overlapping window
    )


def probe_success() -> timeseries.Panel:
    expr = f"avg_over_time(portalguard_probe_success{{{P}}}[$__rate_interval])"
    return (
        ts_panel(
            "Probe success per endpoint",
            "Share of successful probes per endpoint (public: what patients see, admin: the staff login).",
            [q(expr, "{{portal}} {{endpoint}}")],
        )
        .unit("percentunit")
        .min(0)
        .max(1)
        .line_interpolation(cm.LineInterpolation.STEP_AFTER)
        .height(8)
        .span(12)
    )


def probe_latency() -> timeseries.Panel:
    def quantile(phi: str) -> str:
        return (
            f"histogram_quantile({phi}, sum by (portal, endpoint, le) "
            f"(rate(portalguard_probe_duration_seconds_bucket{{{P}}}[$__rate_interval])))"
        )

    mean = (
        f"sum by (portal, endpoint) (rate(portalguard_probe_duration_seconds_sum{{{P}}}[$__rate_interval]))"
        f"\n/ sum by (portal, endpoint) (rate(portalguard_probe_duration_seconds_count{{{P}}}[$__rate_interval]))"
    )
    return (
        ts_panel(
            "Probe latency per endpoint",
            "Probe duration (p95 and mean) per endpoint; timeouts show as the configured timeout.",
            [
                q(quantile("0.95"), "p95 {{portal}} {{endpoint}}"),
                q(mean, "mean {{portal}} {{endpoint}}"),
            ],
        )
        .unit("s")
        .min(0)
        .legend(legend_table("mean", "max"))
        .height(8)
        .span(12)
    )


def failure_reasons() -> timeseries.Panel:
    expr = f"sum by (portal, endpoint, reason) (increase(portalguard_probe_failures_total{{{P}}}[$__interval])) > 0"
    return (
        bars(
            ts_panel(
                "Failure reasons",
                "Failed probes per interval by reason: dns, connect, tls, timeout, http_status, content, "
                "maintenance (a 200 maintenance page), login (admin login rejected), redirect.",
                [q(expr, "{{endpoint}}: {{reason}}")],
            )
        )
        .decimals(0)
        .no_value("no failed probes")
        .height(8)
        .span(8)
    )


def failure_reasons_total() -> bargauge.Panel:
    expr = f"round(sum by (endpoint, reason) (increase(portalguard_probe_failures_total{{{P}}}[$__range]))) > 0"
    return (
        bargauge.Panel()
        .title("Failed probes by reason (range)")
        .description("Failed probes in the selected time range, by endpoint and reason.")
        .datasource(DS)
        .with_target(q(expr, "{{endpoint}}: {{reason}}", instant=True).ref_id("A"))
        .reduce_options(last_value())
        .orientation(cm.VizOrientation.HORIZONTAL)
        .display_mode(cm.BarGaugeDisplayMode.BASIC)
        .decimals(0)
        .min(0)
        .thresholds(thresholds((None, "orange")))
        .no_value("no failed probes")
        .height(8)
        .span(8)
    )


def http_status() -> timeseries.Panel:
    return (
        ts_panel(
            "HTTP status of the last probe",
            "Status code the last probe saw per endpoint; 0 means no HTTP response (DNS, connect, TLS, timeout).",
            [q(f"portalguard_probe_http_status_code{{{P}}}", "{{portal}} {{endpoint}}")],
        )
        .decimals(0)
        .min(0)
        .line_interpolation(cm.LineInterpolation.STEP_AFTER)
        .height(8)
        .span(8)
    )


def failover_timeline() -> statetimeline.Panel:
    verdict = [(c, t, col) for c, t, col in VERDICT_CODES.values()]
    control = [(0, "auto", "transparent"), *CONTROL_CODES.values()]
    return (
        timeline_panel(
            "Failover state timeline",
            "Per portal: the verdict, whether the failover is on, and any manual override or maintenance "
            "window. Annotations mark each failover switch.",
            [
                q(verdict_code_expr(), "verdict {{portal}}"),
                q(f"portalguard_failover_active{{{P}}}", "failover {{portal}}"),
                q(control_code_expr(), "control {{portal}}"),
            ],
        )
        .override_by_query("A", [mappings_property(verdict)])
        .override_by_query("B", [mappings_property([(0, "off", "green"), (1, "FAILOVER ON", "red")])])
        .override_by_query("C", [mappings_property(control)])
        .height(7)
        .span(24)
    )


def actions_timeline() -> statetimeline.Panel:
    return (
        timeline_panel(
            "Actions: desired vs observed",
            "What the orchestrator wants per action (desired) and what it last read back (observed). "
            "A lasting difference fires FailoverActionFailing.",
            [
                q(f"portalguard_action_desired{{{P}}}", "{{action}} desired"),
                q(f"portalguard_action_observed{{{P}}}", "{{action}} observed"),
            ],
        )
        .mappings(value_map([(1, "on", "orange"), (0, "off", "green"), (-1, "unknown", "text")]))
        .height(8)
        .span(9)
    )


def action_errors() -> timeseries.Panel:
    expr = f"sum by (portal, action, kind) (increase(portalguard_action_errors_total{{{P}}}[$__interval])) > 0"
    return (
        bars(
            ts_panel(
                "Action errors",
                "Failed action attempts per interval. transient: retried with backoff; permanent: retrying "
                "stopped and staff were alerted (see `portalguard events`).",
                [q(expr, "{{action}} {{kind}}")],
            )
        )
        .decimals(0)
        .no_value("no action errors")
        .height(8)
        .span(7)
    )


def booking_requests() -> timeseries.Panel:
    expr = f"sum by (portal) (increase(portalguard_booking_requests_total{{{P}}}[$__interval]))"
    return (
        bars(
            ts_panel(
                "Booking requests received",
                "Booking requests patients submitted on the fallback page, per interval.",
                [q(expr, "{{portal}}")],
            )
        )
        .decimals(0)
        .height(7)
        .span(12)
    )


def http_requests() -> timeseries.Panel:
    expr = "sum by (route, code) (rate(portalguard_http_requests_total[$__rate_interval]))"
    return (
        ts_panel(
            "HTTP requests served",
            "Requests portalguard's web server answered (/book redirects or the fallback page, /staff, "
            "/healthz) by route and status code.",
            [q(expr, "{{route}} {{code}}")],
        )
        .unit("reqps")
        .min(0)
        .height(7)
        .span(12)
    )


def schedule_lateness() -> timeseries.Panel:
    p95 = (
        "histogram_quantile(0.95, sum by (le) "
        "(rate(portalguard_probe_schedule_lateness_seconds_bucket[$__rate_interval])))"
    )
    return (
        ts_panel(
            "Watchdog health",
            "How late probes start against their schedule (p95) and the age of the last watchdog cycle. "
            "Growing lateness means the host is overloaded.",
            [
                q(p95, "probe start lateness p95"),
                q("time() - max(portalguard_last_cycle_timestamp_seconds)", "last cycle age"),
            ],
        )
        .unit("s")
        .min(0)
        .height(7)
        .span(12)
    )


def canary_history() -> timeseries.Panel:
    return (
        ts_panel(
            "Canaries",
            "1 while the canary answers. All canaries at 0 at once: the monitor's own network is down.",
            [q("portalguard_canary_up", "{{canary}}")],
        )
        .min(0)
        .max(1)
        .decimals(0)
        .line_interpolation(cm.LineInterpolation.STEP_AFTER)
        .height(7)
        .span(12)
    )


def timeline_panel(title: str, description: str, targets: Sequence[prom.Dataquery]) -> statetimeline.Panel:
    panel = (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .show_value(cm.VisibilityMode.AUTO)
        .merge_values(True)
        .row_height(0.8)
        .fill_opacity(80)
        .line_width(0)
        .align_value(cm.TimelineValueAlignment.LEFT)
        .legend(legend_table())
        .tooltip(tooltip())
        .color_scheme(color(dm.FieldColorModeId.THRESHOLDS))
        .thresholds(thresholds((None, "text")))
    )
    for i, target in enumerate(targets):
        panel = panel.with_target(target.ref_id(chr(ord("A") + i)))
    return panel


def mappings_property(codes: Iterable[tuple[int, str, str]]) -> dm.DynamicConfigValue:
    return dm.DynamicConfigValue(id_val="mappings", value=value_map(codes))


# ------------------------------------------------------------------------------------------ annotations


class PrometheusAnnotation(dm.AnnotationQuery):
    """A Prometheus annotation query. The SDK's model lacks the Prometheus datasource's own fields
    (step, titleFormat, textFormat, tagKeys), which Grafana reads from the annotation object."""

    def __init__(self, name: str, expr: str, icon_color: str, title_format: str, text_format: str) -> None:
        super().__init__(name=name, datasource=DS, enable=True, icon_color=icon_color, expr=expr)
        self.step = "1m"
        self.title_format = title_format
        self.text_format = text_format
        self.tag_keys = "portal"

    def to_json(self) -> dict[str, object]:
        out = super().to_json()
        out.update(
            step=self.step,
            titleFormat=self.title_format,
            textFormat=self.text_format,
            tagKeys=self.tag_keys,
            useValueForTime=False,
        )
        return out


class Built(cogbuilder.Builder[Any]):
    """Hands an already-built model to an SDK builder method."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def build(self) -> Any:
        return self._model


def failover_annotation(to: int) -> PrometheusAnnotation:
    # changes() over exactly one step: each switch is reported once, at the step that follows it.
    expr = f"changes(portalguard_failover_active{{{P}}}[1m]) > 0\nand portalguard_failover_active{{{P}}} == {to}"
    word = "ON" if to else "OFF"
    return PrometheusAnnotation(
        name=f"Failover switched {word.lower()}",
        expr=expr,
        icon_color="red" if to else "green",
        title_format=f"Failover {word}: {{{{portal}}}}",
        text_format=f"portalguard switched the failover {word.lower()} for {{{{portal}}}}",
    )


def builtin_annotation() -> db.AnnotationQuery:
    return (
        db.AnnotationQuery()
        .name("Annotations & Alerts")
        .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .type("dashboard")
        .built_in(1)
    )


# ------------------------------------------------------------------------------------------- variables


def datasource_variable() -> db.DatasourceVariable:
    return db.DatasourceVariable("datasource").label("Data source").type("prometheus")


def portal_variable() -> db.QueryVariable:
    return (
        db.QueryVariable("portal")
        .label("Portal")
        .datasource(DS)
        .query("label_values(portalguard_portal_up, portal)")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def mirror_age() -> stat.Panel:
    expr = f"time() - max by (portal) (portalguard_mirror_last_success_timestamp_seconds{{{P}}})"
    return (
        stat_panel(
            "Appointment copy: last synced",
            "How long ago the appointment mirror last copied every upcoming day from the portal's admin "
            "screen. Red after three sync intervals of the default 10 min (the MirrorStale alert uses each "
            "portal's own interval): run `portalguard appointments sync --portal P` to see why.",
            [q(expr, "{{portal}}", instant=True)],
        )
        .unit("s")
        .decimals(0)
        .thresholds(thresholds((None, "green"), (1800, "red")))
        .no_value("no mirror configured (or never synced)")
        .height(5)
        .span(6)
    )


def mirror_appointments() -> timeseries.Panel:
    expr = f"max by (portal) (portalguard_mirror_appointments{{{P}}})"
    return (
        ts_panel(
            "Appointments in the copy",
            "Booked (not cancelled) appointments the mirror holds from today on: what staff see on "
            "/staff/appointments when the portal is down. A sudden drop to 0 with syncs succeeding means "
            "the portal lists nothing: check the admin screen.",
            [q(expr, "{{portal}}")],
        )
        .decimals(0)
        .min(0)
        .height(5)
        .span(9)
    )


def mirror_sync() -> timeseries.Panel:
    by_kind = f"sum by (portal, kind) (increase(portalguard_mirror_sync_errors_total{{{P}}}[$__interval]))"
    # The kinds that failed, else one zero line per portal: "no errors" is shown, not left blank.
    errors = f"{by_kind} > 0 or on(portal) sum by (portal) ({by_kind}) * 0"
    duration = (
        f"sum by (portal) (rate(portalguard_mirror_sync_duration_seconds_sum{{{P}}}[$__rate_interval])) / "
        f"sum by (portal) (rate(portalguard_mirror_sync_duration_seconds_count{{{P}}}[$__rate_interval]))"
    )
    p95 = (
        "histogram_quantile(0.95, sum by (portal, le) "
        f"(rate(portalguard_mirror_sync_duration_seconds_bucket{{{P}}}[$__rate_interval])))"
    )
    return (
        ts_panel(
            "Mirror syncs: errors and duration",
            "Failed syncs by kind (login, http_status, timeout, maintenance, parse, empty, store) and the "
            "mean and p95 wall time of one sync of the whole window.",
            [q(errors, "{{portal}} {{kind}}"), q(duration, "{{portal}} mean s"), q(p95, "{{portal}} p95 s")],
        )
        .decimals(1)
        .min(0)
        .height(5)
        .span(9)
    )


def mirror_mail_age() -> stat.Panel:
    expr = f"time() - max by (portal) (portalguard_mirror_mail_last_success_timestamp_seconds{{{P}}})"
    return (
        stat_panel(
            "Booking mails: last read",
            "How long ago the mirror last read the clinic's mailbox through (every new booking mail). With "
            "IDLE it reads at least every 5 min; red after 30 min: `portalguard status` shows the mailbox's "
            "last error (a TLS or login error is not retried until a restart).",
            [q(expr, "{{portal}}", instant=True)],
        )
        .unit("s")
        .decimals(0)
        .thresholds(thresholds((None, "green"), (1800, "red")))
        .no_value("no mirror.mail configured (or never read)")
        .height(5)
        .span(6)
    )


def mirror_mail_unread() -> timeseries.Panel:
    unparsed = f"sum by (portal) (increase(portalguard_mirror_mail_unparsed_total{{{P}}}[$__interval])) > 0"
    ignored = f"sum by (portal) (increase(portalguard_mirror_mail_ignored_total{{{P}}}[$__interval])) > 0"
    return (
        ts_panel(
            "Booking mails not read",
            "Mails from an allowed sender that no template could read (listed by date and subject on "
            "/staff/appointments: fix the templates with `portalguard appointments mail-test`), and mails "
            "from senders not in mirror.mail.from (skipped).",
            [q(unparsed, "{{portal}} unread"), q(ignored, "{{portal}} other senders")],
        )
        .decimals(0)
        .min(0)
        .height(5)
        .span(18)
    )


# ----------------------------------------------------------------------------------------------- sites
# HA mode (several `portalguard run` sites on one PostgreSQL store): portalguard_leader per instance,
# portalguard_site_up{site} and portalguard_portal_site_state{portal,site,state} from every instance.
# A single instance on SQLite shows itself as the leader and its one site alive.


def leader_now() -> stat.Panel:
    return (
        stat_panel(
            "Leader",
            "Which portalguard instance holds the leader lease: it alone switches the failover and its "
            "actions for every site; the followers probe and vote. Exactly one should read LEADER: none "
            "fires NoLeader, two fire TwoLeaders. A single instance on SQLite is always its own leader.",
            [q("portalguard_leader", "{{instance}}", instant=True)],
        )
        .mappings(value_map([(1, "LEADER", "green"), (0, "follower", "blue")]))
        .no_value("no data: is portalguard scraped?")
        .height(5)
        .span(6)
    )


def sites_alive() -> stat.Panel:
    return (
        stat_panel(
            "Sites alive",
            "Whether each site's heartbeat in the shared store is fresh, as any instance sees it. A SILENT "
            "site does not vote: the others decide without it, and one site left alive decides alone. "
            "SiteDown fires after 2 minutes.",
            [q("max by (site) (portalguard_site_up)", "{{site}}", instant=True)],
        )
        .mappings(value_map([(1, "alive", "green"), (0, "SILENT", "red")]))
        .no_value("no data: is portalguard scraped?")
        .height(5)
        .span(6)
    )


def site_verdicts() -> statetimeline.Panel:
    return (
        timeline_panel(
            "Verdict per site",
            "Each site's own verdict of each portal, from its own vantage point, before the live sites' "
            "verdicts are combined into the one that decides (Verdict now). One site alone seeing DOWN is "
            "most likely that site's network, not the portal.",
            [q(verdict_code_expr("portalguard_portal_site_state", "portal, site"), "{{portal}} @ {{site}}")],
        )
        .mappings(value_map(VERDICT_CODES.values()))
        .height(5)
        .span(12)
    )


# ------------------------------------------------------------------------------------------- dashboard


def panels() -> list[tuple[str, list[cogbuilder.Builder[Any]]]]:
    """Rows and their panels, top to bottom."""
    return [
        ("Now", [verdict_now(), failover_now(), uptime_now(), tls_days_left()]),
        ("", [control_now(), canary_status(), booking_total(), last_cycle_age(), store_writable(), availability_30d()]),
        ("Probes", [probe_success(), probe_latency(), failure_reasons(), failure_reasons_total(), http_status()]),
        ("Failover", [failover_timeline(), actions_timeline(), action_errors(), action_ready(), switches()]),
        ("Patients and the monitor", [booking_requests(), http_requests(), canary_history(), schedule_lateness()]),
        ("Appointment mirror", [mirror_age(), mirror_appointments(), mirror_sync()]),
        ("", [mirror_mail_age(), mirror_mail_unread()]),
        ("Sites", [leader_now(), sites_alive(), site_verdicts()]),
    ]


def build() -> dict[str, Any]:
    dash = (
        db.Dashboard("portalguard — overview")
        .uid(UID)
        .description("Booking portal health, failover state and fallback activity, per portal.")
        .tags(["portalguard"])
        .editable()
        .timezone("browser")
        .time("now-24h", "now")
        .refresh("30s")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .with_variable(datasource_variable())
        .with_variable(portal_variable())
        .annotation(builtin_annotation())
        .annotation(Built(failover_annotation(1)))
        .annotation(Built(failover_annotation(0)))
    )
    next_id = 1
    for title, row_panels in panels():
        if title:
            dash = dash.with_row(db.Row(title).id(next_id))
            next_id += 1
        for panel in row_panels:
            dash = dash.with_panel(panel.id(next_id))  # type: ignore[attr-defined]
            next_id += 1
    return json.loads(json.dumps(dash.build(), cls=JSONEncoder))


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed JSON is out of date")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    generated = render()
    if args.check:
        committed = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if committed == generated:
            return 0
        diff = difflib.unified_diff(
            committed.splitlines(), generated.splitlines(), "committed", "generated", lineterm="", n=1
        )
        print("\n".join(list(diff)[:60]), file=sys.stderr)
        print(f"\n{args.output} is out of date: run `python dashboards/build.py`", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(generated, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
