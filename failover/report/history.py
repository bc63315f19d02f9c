"""A portal's history as the availability report needs it, read from the audit log (the events).

Which events: the service's starts and stops (a stop without its event — kill -9 — is written at the
next start with the last heartbeat: ``Orchestrator._close_lost_run``), the portal's verdict changes,
its failover switches, its ads measures' actions and the booking requests of its fallback page.
These kinds are kept for ``report.history_retention`` (``failover/retention.py``).
"""

from __future__ import annotations

from collections.abc import Collection

from failover.report.availability import Change, History, Span, Switch
from failover.store import Event, Store

# The kinds of event the report reads; retention keeps them at least ``report.history_retention``.
HISTORY_KINDS = ("verdict", "failover", "action", "service", "request")
ALL = 10_000_000  # events per query: every one (a year of a flapping portal is far fewer)
STALE_AFTER = 10.0  # seconds without a heartbeat: the service is not running (as ``portalguard status`` says)


def read_history(store: Store, portal: str, ads: Collection[str], since: float, now: float) -> History:
    """What the report of ``portal`` from ``since`` needs; ``ads``: the names of its ads measures."""
    served = runs(store.events(None, kinds=("service",), limit=ALL), store.value("heartbeat"), now)
    # A run starts UNKNOWN: verdicts before the run in progress at ``since`` cannot matter.
    first = max([a for a, b in served if a <= since < b] or [since])
    verdicts = [_change(e) for e in store.events(portal, since=first, kinds=("verdict",), limit=ALL)]
    switches = [_failover(e) for e in store.events(portal, kinds=("failover",), limit=ALL)]
    actions = store.events(portal, kinds=("action",), limit=ALL)
    measures = [[s for e in actions if e.action == name and (s := _ads(e)) is not None] for name in sorted(ads)]
    requests = [e.ts for e in store.events(portal, since=first, kinds=("request",), limit=ALL)]
    return History(served, verdicts, switches, measures, requests)


def runs(service: list[Event], heartbeat: float | None, now: float) -> list[Span]:
    """When the service ran: from each start to its stop. A start without a stop ends at the next
    start (a stop lost before this version wrote it at the next start), or — the last one — at now
    while the heartbeat is fresh, at the last heartbeat once it is stale (killed, not restarted)."""
    spans: list[Span] = []
    started: float | None = None
    for e in service:
        if e.detail.get("state") == "started":
            if started is not None:
                spans.append((started, e.ts))
            started = e.ts
        elif e.detail.get("state") == "stopped" and started is not None:
            spans.append((started, max(started, float(e.detail.get("at", e.ts)))))
            started = None
    if started is not None:
        alive = heartbeat is not None and now - float(heartbeat) < STALE_AFTER
        last = now if alive or heartbeat is None else max(started, float(heartbeat))
        spans.append((started, last))
    return spans


def _change(e: Event) -> Change:
    return Change(float(e.detail.get("since", e.ts)), str(e.detail.get("to")), str(e.detail.get("reason") or ""))


def _failover(e: Event) -> Switch:
    return Switch(e.ts, e.detail.get("to") == "on", str(e.detail.get("reason") or e.detail.get("cause") or ""))


def _ads(e: Event) -> Switch | None:
    """An ads measure's switch: a successful on or off, or a failure that left it off (max_active)."""
    if e.detail.get("ok"):
        return Switch(e.ts, e.detail.get("op") == "on")
    if e.detail.get("observed") == "off":
        return Switch(e.ts, False)
    return None
