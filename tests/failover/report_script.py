"""A month of scripted history, written through the real store on a fake clock as the service writes it
(the availability report's tests: tests/failover/test_report_availability.py, its CLI and web tests).

March 2026, local times of the clinic's zone (Asia/Tokyo, or America/New_York, where DST began on
8 March at 02:00: that month is 743 hours long):

- A: an outage across the month's start: Feb 28 23:00:00 → Mar 1 01:00:00, failover 75 s after the
  first failed probe, ads on until 01:10:00, a request before the month and one in it;
- a blip (DEGRADED for 30 s, then UP): no outage;
- B: an outage across midnight with a clean service stop in its middle: Mar 10 23:50:00 → Mar 11
  01:00:00, the service stopped 00:10:00–00:40:00 (DOWN again 20 s after the start), two requests;
- D: an outage across the DST switch with failover kept off: Mar 8 01:30:00 → 03:30:00 (one hour
  in New York, two in Tokyo);
- a kill -9 on Mar 20 12:00:00 (the last heartbeat), restarted at 12:30:00 (UP 10 s later);
- our own network down Mar 25 03:00:00–03:20:00 (the verdict UNKNOWN);
- C: an outage across the month's end: Mar 31 23:40:00 → Apr 1 00:20:00, failover after 90 s;
- a request on Mar 15 with the portal up (not during an outage).

The service then runs on; "now" is Apr 5 12:00:00.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from failover.store import Store

PORTAL = "epark"
REASON = "public: http_status (HTTP 503)"
NOW = "2026-04-05 12:00:00"


class Script:
    def __init__(self, path: Path | str, zone: str) -> None:
        self.zone = ZoneInfo(zone)
        self.t = 0.0
        self.store = Store(path, lambda: self.t)
        self.health = "unknown"
        self.requests = 0

    def at(self, local: str) -> Script:
        self.t = self.ts(local)
        return self

    def ts(self, local: str) -> float:
        return datetime.fromisoformat(local).replace(tzinfo=self.zone).timestamp()

    def when(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.zone).strftime("%Y-%m-%d %H:%M:%S")

    def verdict(self, to: str, reason: str = "") -> None:
        detail: dict[str, object] = {"from": self.health, "to": to, "since": self.t}
        if to == "degraded":
            detail.update(first_failure=self.t, reason=reason or REASON)
        self.store.add_event("verdict", PORTAL, **detail)
        self.health = to
        self.heartbeat()

    def failover(self, on: bool) -> None:
        to = "on" if on else "off"
        self.store.add_event("failover", PORTAL, to=to, cause="portal down" if on else "portal up", reason=REASON)
        self.heartbeat()

    def ads(self, on: bool) -> None:
        op = "on" if on else "off"
        self.store.add_event("action", PORTAL, "ads", op=op, ok=True, attempt=1, ms=40)
        self.heartbeat()

    def request(self) -> None:
        self.requests += 1
        self.store.add_event("request", PORTAL, number=self.requests)

    def start(self) -> None:
        self.store.add_event("service", None, state="started")
        self.health = "unknown"
        self.heartbeat()

    def stop(self) -> None:
        self.store.add_event("service", None, state="stopped")

    def lost_run_closed(self, heartbeat: str) -> None:
        """What the next start writes after a kill -9 (``Orchestrator._close_lost_run``)."""
        self.store.add_event("service", None, state="stopped", at=self.ts(heartbeat), unclean=True)

    def heartbeat(self) -> None:
        self.store.set_value("heartbeat", self.t)


def march(path: Path | str, zone: str) -> Script:
    s = Script(path, zone)
    s.at("2026-02-27 00:00:00").start()
    s.at("2026-02-27 00:00:30").verdict("up")
    # A: across the month's start
    s.at("2026-02-28 23:00:00").verdict("degraded")
    s.at("2026-02-28 23:01:00").verdict("down")
    s.at("2026-02-28 23:01:15").failover(True)
    s.at("2026-02-28 23:01:20").ads(True)
    s.at("2026-02-28 23:30:00").request()  # before the month
    s.at("2026-03-01 00:30:00").request()
    s.at("2026-03-01 01:00:00").verdict("recovering")
    s.at("2026-03-01 01:02:00").verdict("up")
    s.at("2026-03-01 01:08:00").failover(False)
    s.at("2026-03-01 01:10:00").ads(False)
    # a blip
    s.at("2026-03-05 10:00:00").verdict("degraded")
    s.at("2026-03-05 10:00:30").verdict("up")
    # D: across the DST switch (02:00 → 03:00 in New York), failover kept off by an override
    s.at("2026-03-08 01:30:00").verdict("degraded", "public: timeout")
    s.at("2026-03-08 01:31:00").verdict("down")
    s.at("2026-03-08 03:30:00").verdict("recovering")
    s.at("2026-03-08 03:32:00").verdict("up")
    # B: across midnight, the service stopped in its middle
    s.at("2026-03-10 23:50:00").verdict("degraded")
    s.at("2026-03-10 23:51:00").verdict("down")
    s.at("2026-03-10 23:51:00").failover(True)
    s.at("2026-03-10 23:51:10").ads(True)
    s.at("2026-03-11 00:10:00").stop()
    s.at("2026-03-11 00:40:00").start()
    s.at("2026-03-11 00:40:20").verdict("down")  # settled DOWN: straight back to DOWN
    s.at("2026-03-11 00:50:00").request()
    s.at("2026-03-11 01:00:00").verdict("recovering")
    s.at("2026-03-11 01:03:00").verdict("up")
    s.at("2026-03-11 01:05:00").request()  # recovered, failover still on (min_failover)
    s.at("2026-03-11 01:08:00").failover(False)
    s.at("2026-03-11 01:08:10").ads(False)
    s.at("2026-03-15 11:00:00").request()  # the portal up: not during an outage
    # kill -9 at 12:00:00 (the last heartbeat), restarted at 12:30:00
    s.at("2026-03-20 12:00:00").heartbeat()
    s.at("2026-03-20 12:30:00").lost_run_closed("2026-03-20 12:00:00")
    s.start()
    s.at("2026-03-20 12:30:10").verdict("up")
    # our own network down: UNKNOWN
    s.at("2026-03-25 03:00:00").verdict("unknown")
    s.at("2026-03-25 03:20:00").verdict("up")
    # C: across the month's end
    s.at("2026-03-31 23:40:00").verdict("degraded")
    s.at("2026-03-31 23:41:30").verdict("down")
    s.at("2026-03-31 23:41:30").failover(True)
    s.at("2026-03-31 23:42:00").ads(True)
    s.at("2026-04-01 00:20:00").verdict("recovering")
    s.at("2026-04-01 00:22:00").verdict("up")
    s.at("2026-04-01 00:30:00").failover(False)
    s.at("2026-04-01 00:30:00").ads(False)
    s.at(NOW).heartbeat()
    return s
