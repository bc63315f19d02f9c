"""The incident report: a Markdown timeline of a portal's last outage, built from the event log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from failover.store import Event, Store
from watchdog.duration import format_duration


def incidents(store: Store, portal: str) -> list[tuple[int, float, float | None]]:
    """The portal's failover episodes on record, newest first: (incident number, on, off or None)."""
    events = [e for e in store.events(portal, kinds=("failover",)) if e.portal == portal]
    out: list[tuple[int, float, float | None]] = []
    for i, e in enumerate(events):
        if e.detail.get("to") != "on":
            continue
        off = next((later.ts for later in events[i + 1 :] if later.detail.get("to") == "off"), None)
        out.append((int(e.detail.get("incident") or len(out) + 1), e.ts, off))
    return out[::-1]


def last_incident_events(store: Store, portal: str, number: int | None = None) -> list[Event]:
    """Events of the portal's last failover episode (or of incident ``number``): from the failures
    that led to it to its end."""
    events = store.events(portal)
    starts = [
        i
        for i, e in enumerate(events)
        if e.kind == "failover" and e.detail.get("to") == "on" and number in (None, e.detail.get("incident"))
    ]
    if not starts:
        return []
    start = starts[-1]
    # Reach back to the DEGRADED transition that began the outage (the first failed probe).
    first = start
    for i in range(start - 1, -1, -1):
        e = events[i]
        if e.kind == "failover":
            break
        if e.kind == "verdict" and e.detail.get("to") == "degraded":
            first = i
            break
    end = len(events)
    for i in range(start + 1, len(events)):
        e = events[i]
        if e.kind == "failover" and e.detail.get("to") == "on":
            end = i
            break
    staff = store.events(None, since=events[first].ts, kinds=("notify",))
    merged = {e.id: e for e in [*events[first:end], *(e for e in staff if e.portal in (portal, None))]}
    return [merged[k] for k in sorted(merged)]


def report(store: Store, portal: str, when: Callable[[float | None], str], number: int | None = None) -> str:
    events = last_incident_events(store, portal, number)
    if not events:
        return f"# {portal}: no outage on record\n"
    on = next(e for e in events if e.kind == "failover" and e.detail.get("to") == "on")
    off = next((e for e in events if e.kind == "failover" and e.detail.get("to") == "off" and e.ts > on.ts), None)
    first = (
        next(
            (e.detail.get("first_failure") for e in events if e.kind == "verdict" and e.detail.get("to") == "degraded"),
            None,
        )
        or on.ts
    )
    lines = [f"# Incident report: {portal} (incident #{on.detail.get('incident', '?')})", ""]
    lines += [
        f"- First failed probe: {when(first)}",
        f"- Failover on: {when(on.ts)} — {on.detail.get('reason') or on.detail.get('cause')}",
        f"- Failover off: {when(off.ts) if off else 'still in failover'}",
        f"- Outage duration: {format_duration((off.ts if off else store.clock()) - first)}"
        + ("" if off else " (ongoing)"),
        f"- Detection to failover: {format_duration(on.ts - first)}",
        f"- Notifications sent: {_messages_sent(events)}",
        "",
        "| time | event |",
        "|---|---|",
    ]
    lines += [f"| {when(e.ts)} | {describe(e, when)} |" for e in events]
    return "\n".join(lines) + "\n"


# Every kind of event the code writes (a test finds each ``add_event`` in the source and checks it is here).
EVENT_KINDS = (
    "verdict",
    "failover",
    "action",
    "notify",
    "override",
    "maintenance",
    "network",
    "service",
    "drill",
    "suppressed_down",
    "login_failing",
    "request",
    "staff_account",
    "staff_decision",
    "staff_session",
)


def describe(e: Event, when: Callable[[float], str] | None = None) -> str:
    """One line of human text for an event (also used by `portalguard events`): never a raw dict.
    ``when`` shows a time (an override's end) as the reader's clock does."""
    d = e.detail
    if e.kind == "verdict":
        extra = f" ({d['reason']})" if d.get("reason") else ""
        return f"verdict {d.get('from')} → {str(d.get('to')).upper()}{extra}"
    if e.kind == "failover":
        return f"failover {str(d.get('to')).upper()} — {d.get('cause')}"
    if e.kind == "action":
        result = "ok" if d.get("ok") else f"FAILED ({d.get('error_kind')}): {d.get('error')}"
        return f"action {e.action} {d.get('op')}: {result} (attempt {d.get('attempt')}, {d.get('ms')} ms)"
    if e.kind == "notify":
        return _notify(e)
    if e.kind == "override":
        if d.get("mode") == "auto":
            return "override removed: automatic again"
        expires = d.get("expires")
        if expires is None:
            until = " until `failover auto`"
        else:
            until = f" until {when(float(expires))}" if when else " (with an end)"
        return f"override {d.get('mode')}{until}" + (f" — {d['reason']}" if d.get("reason") else "")
    if e.kind == "maintenance":
        if d.get("op") == "remove":
            return f"maintenance window #{d.get('id')} removed"
        return f"maintenance window #{d.get('id')} added ({d.get('mode')})" + (
            f" — {d['reason']}" if d.get("reason") else ""
        )
    if e.kind == "network":
        return "monitor network DOWN (canaries failing)" if d.get("down") else "monitor network back"
    if e.kind == "service":
        if d.get("unclean"):
            last = when(float(d["at"])) if when and d.get("at") is not None else "its last heartbeat"
            return f"service stopped without a clean stop (killed or crashed), last seen {last}"
        return f"service {d.get('state')}"
    if e.kind == "request":
        return f"booking request #{d.get('number')} received on the fallback page"
    if e.kind == "drill":
        return _drill(d)
    if e.kind == "suppressed_down":
        by = "a `failover off` override" if d.get("by") == "override" else "a suppress maintenance window"
        return f"portal DOWN while {by} keeps failover off — staff told" + (
            f" ({d['reason']})" if d.get("reason") else ""
        )
    if e.kind == "login_failing":
        return f"staff login of {d.get('endpoint')} refused for down_after — staff told ({d.get('detail')})"
    if e.kind in ("staff_account", "staff_decision"):
        return _staff(d) if e.kind == "staff_account" else _decision(d)
    if e.kind == "staff_session":
        return _session(d)
    parts = ", ".join(f"{k}={_short(v)}" for k, v in d.items())
    return f"{e.kind}{' ' + e.action if e.action else ''}: {parts}"


def _staff(d: dict[str, Any]) -> str:
    done = {"add": "added", "passwd": "password changed", "remove": "removed"}.get(str(d.get("op")), str(d.get("op")))
    role = f" ({d['role']})" if d.get("role") else ""
    return f"staff account {done}: {d.get('account')}{role} — by {d.get('by')}"


def _session(d: dict[str, Any]) -> str:
    who = d.get("account") or "a name that is no account"
    if d.get("op") == "login_refused":
        why = "waiting after wrong passwords" if d.get("throttled") else "wrong password"
        return f"staff login refused: {who} ({why})"
    return f"staff {'logout' if d.get('op') == 'logout' else 'login'}: {who} ({d.get('via', 'web')})"


def _decision(d: dict[str, Any]) -> str:
    # Only the request's number and its new status: never what the patient wrote.
    return f"booking request #{d.get('id')} marked {d.get('status')} — by {d.get('by')}"


def _notify(e: Event) -> str:
    d = e.detail
    if d.get("drill"):
        targets, failed = d.get("targets", 0), d.get("failed", 0)
        result = "sent" if not failed else f"{failed} of {targets} FAILED"
        return f"drill message ({d.get('topic')}, marked [訓練/DRILL]): {result} to {targets} target(s)"
    to = f" ({d['target']})" if d.get("target") else ""
    outcome = "" if d.get("sent", True) else f" (not sent: {d.get('state')})"
    again = " (possibly a duplicate)" if d.get("duplicate") else ""
    return f"staff notified: {d.get('topic')}{to}{outcome}{again}"


def _drill(d: dict[str, object]) -> str:
    results = d.get("results")
    steps = [
        f"{r.get('action')} {'ok' if r.get('ok') else 'FAILED'}"
        for r in (results if isinstance(results, list) else [])
        if isinstance(r, dict)
    ]
    return f"drill {'PASSED' if d.get('ok') else 'FAILED'}" + (f": {', '.join(steps)}" if steps else "")


def _short(value: object) -> str:
    """An unknown event's value on one line: scalars as they are, containers by their size."""
    if isinstance(value, dict | list | tuple):
        return f"({len(value)} items)"
    return str(value).replace("\n", " ")


def _messages_sent(events: list[Event]) -> int:
    """Staff messages that reached at least one target: the outbox logs one event per target (its
    claim names the message), a drill one per message."""
    return len({e.detail.get("claim") or e.id for e in events if e.kind == "notify" and e.detail.get("sent")})
