"""`portalguard events`: every kind of event the code writes reads as one line of text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from failover.incident import EVENT_KINDS, describe
from failover.store import Event

ROOT = Path(__file__).resolve().parents[2]
# add_event("kind", …) / submit_write("add_event", "kind", …), possibly across lines
WRITTEN = re.compile(r'add_event(?:\(|",)\s*"([a-z_]+)"')

EXAMPLES = {
    "verdict": {"from": "up", "to": "down", "reason": "public: http_status (HTTP 503)"},
    "failover": {"to": "on", "cause": "portal down", "reason": "public: http_status (HTTP 503)", "incident": 3},
    "action": {"op": "on", "ok": False, "error": "API unavailable", "error_kind": "transient", "attempt": 2, "ms": 40},
    "notify": {"topic": "outage", "sent": True, "target": "staff#0", "attempt": 1, "state": "sent"},
    "override": {"mode": "off", "reason": "known false alarm", "expires": 1_800_007_200.0},
    "maintenance": {"op": "add", "id": 4, "mode": "suppress", "start": 1.0, "end": 2.0, "reason": "vendor upgrade"},
    "network": {"down": True},
    "service": {"state": "started"},
    "drill": {
        "ok": False,
        "results": [
            {"action": "page", "ok": True, "seconds": 0.1, "detail": "preview=…"},
            {"action": "ads", "ok": False, "seconds": 0.2, "detail": "campaign 111 not found"},
        ],
    },
    "suppressed_down": {"by": "override", "reason": "known false alarm"},
    "request": {"number": 12},
    "login_failing": {"endpoint": "admin", "detail": 'login not accepted: missing text "ログアウト"'},
    "staff_account": {"op": "add", "account": "aiko", "role": "operator", "by": "root"},
    "staff_decision": {"op": "request_status", "id": 7, "status": "booked", "by": "aiko"},
    "staff_session": {"op": "login", "account": "aiko", "via": "web"},
}


def event(kind: str, detail: dict[str, object], action: str | None = None) -> Event:
    return Event(1, 1_800_000_000.0, "epark", kind, action, detail)


def test_every_kind_written_has_a_text() -> None:
    written = {k for f in (ROOT / "failover").rglob("*.py") for k in WRITTEN.findall(f.read_text(encoding="utf-8"))}
    written.discard("tick")  # failover/store/aio.py's docstring example, not an event written
    assert "drill" in written and "verdict" in written, written
    assert written <= set(EVENT_KINDS), f"event kinds without a text: {sorted(written - set(EVENT_KINDS))}"
    assert set(EXAMPLES) == set(EVENT_KINDS)


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_each_kind_is_one_line_without_a_raw_dict(kind: str) -> None:
    text = describe(event(kind, EXAMPLES[kind], "ads" if kind == "action" else None), lambda ts: "2027-01-15 19:00")
    assert "\n" not in text and "{" not in text and "[" not in text.replace("[訓練/DRILL]", ""), text
    assert "=" not in text, text


def test_drills_read_as_drills() -> None:
    drill = describe(event("drill", EXAMPLES["drill"]))
    assert drill == "drill FAILED: page ok, ads FAILED"
    message = describe(event("notify", {"topic": "outage", "sent": True, "targets": 2, "failed": 0, "drill": True}))
    assert "staff notified" not in message and message.startswith("drill message (outage, marked [訓練/DRILL])")


def test_overrides_say_until_when() -> None:
    text = describe(event("override", EXAMPLES["override"]), lambda ts: "2027-01-15 19:00")
    assert text == "override off until 2027-01-15 19:00 — known false alarm"
    assert describe(event("override", {"mode": "auto"})) == "override removed: automatic again"
