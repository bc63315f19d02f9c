"""The staff console's overview and decisions: what the office manager sees and decides on
``/staff/overview`` and ``/staff/decide/PORTAL``, in words, without a terminal.

A decision is what the CLI's ``failover on|off|auto`` and ``maintenance add|remove`` do — the same
store writes, the same audit events (with who decided) — so the running service applies it within
2 seconds whichever way it came. The web layer only asks twice: the first POST shows what will
happen, the second (``confirm``) does it.

Bounds that differ from the CLI, on purpose: here "off" (a false alarm) needs a reason and a
duration of at most 24 hours — switching protection off for longer, or for ever, stays a deliberate
operator's command (``failover off --for 7d``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from failover.actions.google_ads import GoogleAdsConfig
from failover.actions.table import ACTIONS
from failover.settings import Settings
from failover.staff.messages import cause_in_words, format_span
from failover.store import MAINTENANCE_MODES, AsyncStore
from watchdog.duration import parse_duration

ON_DEFAULT = 4 * 3600.0  # "start the fallback": for 4 hours unless staff say otherwise
OFF_MAX = 24 * 3600.0  # "a false alarm": at most a day from here
MAINTENANCE_MAX = 7 * 86400.0
MAX_REASON = 200
KINDS = ("on", "off", "auto", "maint_add", "maint_remove", "drill")

# The verdict (watchdog) as staff read it: (words key, CSS class).
VERDICTS = {
    "up": ("verdict_up", "ok"),
    "degraded": ("verdict_degraded", "warn"),
    "down": ("verdict_down", "bad"),
    "recovering": ("verdict_recovering", "warn"),
    "unknown": ("verdict_unknown", "muted"),
}


@dataclass(frozen=True, slots=True)
class MeasureView:
    name: str
    label: str
    state: str  # i18n key: measure_on / measure_off / measure_unknown
    error: str | None
    permanent: bool


@dataclass(frozen=True, slots=True)
class PortalView:
    """One portal on the overview, every value ready to show."""

    portal: str
    name: str
    clinic: str | None  # a dental group's clinic; None for one clinic
    verdict: str  # i18n key
    verdict_class: str
    verdict_since: float | None
    failover: bool
    failover_since: float | None
    reason: str  # in words
    measures: list[MeasureView]
    override: Mapping[str, Any] | None  # mode, reason, expires
    maintenance: Mapping[str, Any] | None  # id, mode, start, end, reason
    hold: Mapping[str, Any] | None  # the flapping hold: count, until
    drill: Mapping[str, Any] | None  # at, ok
    mirror_synced: float | None
    mirrored: bool


async def overview(settings: Settings, store: AsyncStore, now: float, lang: str) -> list[PortalView]:
    """Every portal's state, a group's by clinic."""
    return [await _portal_view(settings, store, pid, now, lang) for pid in _by_clinic(settings)]


def _by_clinic(settings: Settings) -> list[str]:
    if settings.clinic is not None:
        return list(settings.portals)
    return [pid for cid in settings.clinics for pid in settings.portals_of(cid)]


async def _portal_view(settings: Settings, store: AsyncStore, pid: str, now: float, lang: str) -> PortalView:
    row = await store.portal(pid)
    verdict, css = VERDICTS.get(row.verdict, VERDICTS["unknown"])
    override = await store.override(pid, now)
    window = await store.active_maintenance(pid, now)
    mirror = settings.portals[pid].mirror
    synced = None
    if mirror is not None:
        today = dt.datetime.fromtimestamp(now, ZoneInfo(settings.timezone)).date()
        synced = (await store.mirror_state(pid, today)).last_success
    return PortalView(
        portal=pid,
        name=settings.portal_name(pid),
        clinic=settings.clinic_of(pid).text("name", lang) if settings.clinic is None else None,
        verdict=verdict,
        verdict_class=css,
        verdict_since=row.verdict_since,
        failover=row.failover,
        failover_since=row.since if row.failover else None,
        reason=cause_in_words(row.reason, lang) if row.reason else "",
        measures=await _measures(settings, store, pid, lang),
        override=None
        if override is None
        else {"mode": override.mode, "reason": override.reason, "expires": override.expires},
        maintenance=None
        if window is None
        else {"id": window.id, "mode": window.mode, "start": window.start, "end": window.end, "reason": window.reason},
        hold=await store.value(f"flapping_hold:{pid}") if row.failover else None,
        drill=await store.value(f"drill:{pid}"),
        mirror_synced=synced,
        mirrored=mirror is not None,
    )


async def _measures(settings: Settings, store: AsyncStore, pid: str, lang: str) -> list[MeasureView]:
    out = []
    for name, cfg in settings.portal_actions(pid).items():
        kind = ACTIONS[cfg.type]
        row = await store.action(pid, name)
        state = {"on": "measure_on", "off": "measure_off"}.get(row.observed, "measure_unknown")
        out.append(MeasureView(name, kind.labels.get(lang, name), state, row.last_error, row.permanent))
    return out


# -- decisions ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    kind: str  # one of KINDS
    portal: str
    reason: str = ""
    seconds: float | None = None  # on / off: how long the override lasts
    start: float | None = None  # maint_add
    end: float | None = None
    mode: str = "suppress"
    window: int | None = None  # maint_remove


@dataclass(frozen=True, slots=True)
class Invalid:
    """Field -> i18n key of what is wrong with it."""

    errors: dict[str, str]


def read_decision(portal: str, fields: Mapping[str, str], now: float, tz: str) -> Decision | Invalid:
    """The decision a form sent, or what to fix (each error an i18n key, next to its field)."""
    kind = fields.get("kind", "")
    if kind not in KINDS:
        return Invalid({"kind": "decide_err_kind"})
    reason = " ".join(fields.get("reason", "").split())[:MAX_REASON]
    errors: dict[str, str] = {}
    if kind in ("on", "off", "maint_add") and not reason:
        errors["reason"] = "decide_err_reason"
    if kind == "maint_remove":
        number = fields.get("window", "")
        if not number.isdigit():
            return Invalid({"window": "decide_err_kind"})
        return Decision(kind, portal, window=int(number))
    if kind in ("auto", "drill"):
        return Decision(kind, portal)
    if kind in ("on", "off"):
        seconds = _duration(fields.get("for", ""), ON_DEFAULT if kind == "on" else None, errors)
        if kind == "off" and seconds is not None and seconds > OFF_MAX:
            errors["for"] = "decide_err_off_max"
        return Invalid(errors) if errors else Decision(kind, portal, reason, seconds)
    return _maintenance(portal, reason, fields, now, tz, errors)


def _duration(text: str, default: float | None, errors: dict[str, str]) -> float | None:
    if not text.strip():
        if default is None:
            errors["for"] = "decide_err_for_required"
        return default
    try:
        seconds = parse_duration(text)
    except ValueError:
        errors["for"] = "decide_err_duration"
        return None
    if seconds <= 0:
        errors["for"] = "decide_err_duration"
    return seconds


def _maintenance(
    portal: str, reason: str, fields: Mapping[str, str], now: float, tz: str, errors: dict[str, str]
) -> Decision | Invalid:
    mode = fields.get("mode", "")
    if mode not in MAINTENANCE_MODES:
        errors["mode"] = "decide_err_kind"
    start = _local_time(fields.get("start", ""), tz) if fields.get("start", "").strip() else now
    if start is None:
        errors["start"] = "decide_err_time"
    length = _duration(fields.get("for", ""), None, errors)
    if start is not None and length is not None and not errors:
        if length > MAINTENANCE_MAX:
            errors["for"] = "decide_err_maint_max"
        elif start + length <= now:
            errors["start"] = "decide_err_past"
    if errors or start is None or length is None:
        return Invalid(errors)
    return Decision("maint_add", portal, reason, start=start, end=start + length, mode=mode)


def _local_time(text: str, tz: str) -> float | None:
    """``2026-12-03T14:00`` (a datetime-local field) in the clinic's zone."""
    try:
        local = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if local.tzinfo is None:
        local = local.replace(tzinfo=ZoneInfo(tz))
    return local.timestamp()


def consequences(settings: Settings, decision: Decision, lang: str) -> list[tuple[str, dict[str, Any]]]:
    """What the decision will do, as (i18n key, values) lines for the confirmation page."""
    if decision.kind == "on" or (decision.kind == "maint_add" and decision.mode == "failover"):
        lines = [_switches_on(name, cfg) for name, cfg in settings.portal_actions(decision.portal).items()]
        return lines or [("decide_then_nothing", {})]
    if decision.kind == "off" or (decision.kind == "maint_add" and decision.mode == "suppress"):
        return [("decide_then_off", {}), ("decide_then_off_warn", {})]
    if decision.kind == "auto":
        return [("decide_then_auto", {})]
    if decision.kind == "drill":
        return [_rehearses(cfg) for cfg in settings.portal_actions(decision.portal).values()]
    return [("decide_then_remove", {"n": decision.window})]


def _rehearses(cfg: Any) -> tuple[str, dict[str, Any]]:
    key = {"fallback_page": "drill_then_page", "google_ads": "drill_then_ads", "notify": "drill_then_notify"}
    return key.get(cfg.type, "drill_then_webhook"), {}


def _switches_on(name: str, cfg: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(cfg, GoogleAdsConfig):
        return "decide_then_ads", {"n": len(cfg.campaign_ids), "budget": f"{cfg.max_daily_budget:,.0f}"}
    key = {"fallback_page": "decide_then_page", "notify": "decide_then_notify", "webhook": "decide_then_webhook"}
    return key.get(cfg.type, "decide_then_other"), {"name": name}


async def apply(store: AsyncStore, decision: Decision, now: float, by: str) -> bool:
    """Write the decision as the CLI would, with who made it in the audit log. False: nothing to do
    (already automatic, no such window)."""
    pid = decision.portal
    if decision.kind in ("on", "off"):
        expires = now + decision.seconds if decision.seconds else None
        await store.set_override(pid, decision.kind, decision.reason, expires)
        await store.clear_permanent_errors(pid)  # a human decided: actions stopped by an error try again
        await store.add_event("override", pid, mode=decision.kind, reason=decision.reason, expires=expires, by=by)
        return True
    if decision.kind == "auto":
        removed = await store.clear_override(pid)
        await store.add_event("override", pid, mode="auto", by=by)
        return removed
    if decision.kind == "maint_add":
        assert decision.start is not None and decision.end is not None
        wid = await store.add_maintenance(pid, decision.start, decision.end, decision.mode, decision.reason)
        fields = {"op": "add", "id": wid, "mode": decision.mode, "start": decision.start, "end": decision.end}
        await store.add_event("maintenance", pid, **fields, reason=decision.reason, by=by)
        return True
    windows = {w.id for w in await store.maintenance(pid, include_past=True)}
    if decision.window not in windows or not await store.remove_maintenance(decision.window or 0):
        return False
    await store.add_event("maintenance", None, op="remove", id=decision.window, by=by)
    return True


def span(seconds: float | None, lang: str) -> str:
    """A duration in the staff's words (``4時間``, ``4 h``)."""
    return format_span(seconds, lang) if seconds else ""
