"""The incident report: a Markdown timeline of a portal's last outage, built from the event log."""

from __future__ import annotations

from collections.abc import Callable

from failover.store import Event, Store
from watchdog.duration import format_duration


def last_incident_events(store: Store, portal: str) -> list[Event]:
    """Events of the portal's last failover episode: from the failures that led to it to its end."""
    events = store.events(portal)
    starts = [i for i, e in enumerate(events) if e.kind == "failover" and e.detail.get("to") == "on"]
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


def report(store: Store, portal: str, when: Callable[[float | None], str]) -> str:
    events = last_incident_events(store, portal)
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
    lines += [f"| {when(e.ts)} | {describe(e)} |" for e in events]
    return "\n".join(lines) + "\n"


def describe(e: Event) -> str:
    """One line of human text for an event (also used by `portalguard events`)."""
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
        to = f" ({d['target']})" if d.get("target") else ""
        return f"staff notified: {d.get('topic')}{to}" + (
            "" if d.get("sent", True) else f" (not sent: {d.get('state')})"
        )
    if e.kind == "override":
        return f"override {d.get('mode')}" + (f" — {d['reason']}" if d.get("reason") else "")
    if e.kind == "maintenance":
        return f"maintenance {d.get('op')} #{d.get('id')}" + (f" ({d['mode']})" if d.get("mode") else "")
    if e.kind == "network":
        return "monitor network DOWN (canaries failing)" if d.get("down") else "monitor network back"
    parts = ", ".join(f"{k}={v}" for k, v in d.items())
    return f"{e.kind}{' ' + e.action if e.action else ''}: {parts}"


def _messages_sent(events: list[Event]) -> int:
    """Staff messages that reached at least one target: the outbox logs one event per target (its
    claim names the message), a drill one per message."""
    return len({e.detail.get("claim") or e.id for e in events if e.kind == "notify" and e.detail.get("sent")})
