"""What the demo sees: new store events (portalguard's own audit log) and what the fakes received
(campaign switches, staff messages, webhook posts, e-mails, booking requests), as timeline entries.

Polled, not pushed: the demo watches portalguard from the outside, exactly as ``portalguard events``
and the fakes' call logs would show it to a person.
"""

from __future__ import annotations

import time
from typing import Any

from failover.demo.stage import PORTAL, STAFF_PATH, WEBHOOK_PATH, Stage, json_body
from failover.demo.timeline import Entry
from failover.incident import describe
from failover.store import AsyncStore, Event


class Watcher:
    def __init__(self, stage: Stage, store: AsyncStore, started: float) -> None:
        self.stage = stage
        self.store = store
        self.started = started  # unix time the demo began: entries show seconds since
        self._event_id = 0
        self._calls = 0
        self._inbox = 0
        self._mail = 0
        self._requests = 0
        self.campaign_history: list[tuple[float, str]] = []  # (t, status) as the fake saw it

    async def poll(self) -> list[Entry]:
        """Everything new since the last poll, oldest first."""
        now = time.time() - self.started
        entries = [*await self._events(), *self._ads(now), *self._inbox_entries(now), *self._mails(now)]
        entries += await self._booking_requests(now)
        return sorted(entries, key=lambda e: e.t)

    # -- sources ----------------------------------------------------------------------------------

    async def _events(self) -> list[Entry]:
        new = [e for e in await self.store.events(since=self.started) if e.id > self._event_id]
        if new:
            self._event_id = new[-1].id
        return [self._event_entry(e) for e in new if not (e.kind == "service" and e.detail.get("state") == "stopped")]

    def _event_entry(self, e: Event) -> Entry:
        data: dict[str, Any] = {"kind": e.kind, "action": e.action, **_matchable(e.detail)}
        return Entry(e.ts - self.started, "store", _text(e), _style(e), data)

    def _ads(self, now: float) -> list[Entry]:
        calls = self.stage.ads.calls
        new, self._calls = calls[self._calls :], len(calls)
        out = []
        for call in new:
            if call.method != "MutateCampaigns" or call.validate_only or call.error:
                continue  # reads, preflight checks and failures change nothing in the account
            for cid, status in call.statuses.items():
                self.campaign_history.append((now, status))
                out.append(
                    Entry(now, "ads", f"fake Google Ads: campaign {cid} is now {status}", "world", {"status": status})
                )
        return out

    def _inbox_entries(self, now: float) -> list[Entry]:
        requests = self.stage.inbox.requests
        new, self._inbox = requests[self._inbox :], len(requests)
        out = []
        for r in new:
            body = json_body(r)
            if r.path == STAFF_PATH:
                out.append(Entry(now, "inbox", f"staff inbox (json://): {body.get('title')}", "world", {"inbox": True}))
            elif r.path == WEBHOOK_PATH:
                state = body.get("state")
                out.append(Entry(now, "webhook", f"IVR webhook received: state={state}", "world", {"state": state}))
        return out

    def _mails(self, now: float) -> list[Entry]:
        messages = self.stage.mail.messages
        new, self._mail = messages[self._mail :], len(messages)
        return [Entry(now, "mail", f"staff e-mail (mailto://): {m.subject}", "world", {"mail": True}) for m in new]

    async def _booking_requests(self, now: float) -> list[Entry]:
        count = await self.store.count_requests(PORTAL)
        new = range(self._requests + 1, count + 1)
        self._requests = count
        return [Entry(now, "web", f"booking request No.{n} stored from the fallback page", "staff") for n in new]


def _matchable(detail: dict[str, Any]) -> dict[str, Any]:
    """The event fields steps match on (not all: a reason may be long)."""
    return {k: detail[k] for k in ("to", "op", "ok", "topic", "sent", "state") if k in detail}


def _text(e: Event) -> str:
    if e.kind == "service":
        return f"portalguard service {e.detail.get('state')}"
    return describe(e)


def _style(e: Event) -> str:
    d = e.detail
    if e.kind == "verdict":
        return {"down": "bad", "up": "good"}.get(str(d.get("to")), "warn")
    if e.kind == "failover":
        return "bad" if d.get("to") == "on" else "good"
    if e.kind == "action":
        return "action" if d.get("ok") else "warn"
    if e.kind == "notify":
        return "staff"
    return "info"
