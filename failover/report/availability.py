"""A portal's availability over a period, from its history: a pure function, no store, no clock.

Each moment of the period is one of three things:

- **up**: the verdict was UP, or failing too briefly to turn DOWN (a DEGRADED blip), or answering
  again after an outage (RECOVERING that went on to UP);
- **down**: inside an outage, which lasts from its first failed probe (the DEGRADED that went on to
  DOWN) to the first good probe of the recovery that held (the RECOVERING that went on to UP);
- **unobserved**: the service was not running (stopped, or killed: from its last heartbeat to its
  next start), or not yet sure (UNKNOWN right after a start), or our own network was down (every
  canary failing: the verdict is UNKNOWN). Never counted as up or as down.

Availability is up ÷ (up + down). An outage interrupted by unobserved time (a stop in its middle)
stays one outage when the portal is still failing after it; its unobserved part is shown apart and
is not downtime. Outages crossing the period's edges are cut at them and marked so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

UP, DOWN, UNOBSERVED = "up", "down", "unobserved"
_NOT_SEEN = ("unknown", "gap")  # a verdict of UNKNOWN, and the time between two runs of the service

Span = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Change:
    """The portal's verdict changed to ``health`` (up, degraded, down, recovering, unknown) at ``ts``."""

    ts: float
    health: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Switch:
    """Something switched on or off at ``ts``: failover, or an ads measure."""

    ts: float
    on: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class History:
    """What the audit log says of one portal, oldest first. ``runs``: when the service ran (and so
    observed); verdict changes outside them are ignored. ``ads``: one list of switches per ads
    measure. ``requests``: when booking requests arrived on the fallback page."""

    runs: Sequence[Span]
    verdicts: Sequence[Change]
    failover: Sequence[Switch] = ()
    ads: Sequence[Sequence[Switch]] = ()
    requests: Sequence[float] = ()


@dataclass(frozen=True, slots=True)
class Outage:
    start: float  # the first failed probe, or the period's start (clipped_start)
    end: float  # the first good probe of the recovery, the period's end (clipped_end), or now (ongoing)
    cause: str
    unobserved: float  # seconds of it the service did not observe (not downtime)
    to_failover: float | None  # first failed probe to failover on; None: failover did not go on
    requests: int  # booking requests received (in the period) while the failover it started was on
    clipped_start: bool = False
    clipped_end: bool = False
    ongoing: bool = False

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def down(self) -> float:
        return self.duration - self.unobserved


@dataclass(frozen=True, slots=True)
class Availability:
    portal: str
    start: float
    end: float  # the period's end, or now if that is sooner
    up: float
    down: float
    outages: list[Outage] = field(default_factory=list)
    requests: int = 0  # booking requests received while the portal was in failover
    ads: float = 0.0  # seconds an ads measure was on

    @property
    def observed(self) -> float:
        return self.up + self.down

    @property
    def unobserved(self) -> float:
        return self.end - self.start - self.observed

    @property
    def ratio(self) -> float | None:
        """Up ÷ observed; None when nothing was observed (no figure is better than a made-up one)."""
        return self.up / self.observed if self.observed > 0 else None

    @property
    def longest(self) -> float:
        return max((o.down for o in self.outages), default=0.0)

    @property
    def mttr(self) -> float | None:
        """Mean time to recovery: the mean duration of the outages listed (as cut to the period)."""
        return sum(o.duration for o in self.outages) / len(self.outages) if self.outages else None

    @property
    def to_failover(self) -> float | None:
        """The mean time from the first failed probe to failover on, over the outages that had one."""
        times = [o.to_failover for o in self.outages if o.to_failover is not None]
        return sum(times) / len(times) if times else None


@dataclass(frozen=True, slots=True)
class _Segment:
    start: float
    end: float
    state: str  # UP, DOWN or UNOBSERVED
    reason: str


def availability(portal: str, history: History, start: float, end: float, now: float) -> Availability:
    """The report of one portal over [start, end), knowing the history up to ``now``."""
    end = min(end, now)
    start = min(start, end)
    segments = timeline(history, now)
    failover = on_spans(history.failover, now)
    up = sum(_overlap(s.start, s.end, start, end) for s in segments if s.state == UP)
    down = sum(_overlap(s.start, s.end, start, end) for s in segments if s.state == DOWN)
    outages = [
        o for episode in _episodes(segments) if (o := _outage(episode, history, failover, start, end, now)) is not None
    ]
    requests = sum(1 for r in history.requests if start <= r < end and _inside(r, failover))
    ads = sum(_overlap(a, b, start, end) for a, b in union(on_spans(s, now) for s in history.ads))
    return Availability(portal, start, end, up, down, outages, requests, ads)


def timeline(history: History, now: float) -> list[_Segment]:
    """Up, down and unobserved segments from the first run's start to ``now``, adjacent ones merged."""
    marks = _marks(history)
    states = _classify([h for _, h, _ in marks])
    segments: list[_Segment] = []
    for i, (ts, _, reason) in enumerate(marks):
        until = min(marks[i + 1][0] if i + 1 < len(marks) else now, now)
        if until <= ts:
            continue
        if segments and segments[-1].state == states[i] and segments[-1].end == ts:
            segments[-1] = _Segment(segments[-1].start, until, states[i], segments[-1].reason)
        else:
            segments.append(_Segment(ts, until, states[i], reason))
    return segments


def _marks(history: History) -> list[tuple[float, str, str]]:
    """(time, health, reason): each run starts UNKNOWN and ends in a gap; verdict changes in between."""
    marks: list[tuple[float, int, str, str]] = []
    for run_start, run_end in history.runs:
        marks += [(run_start, 1, "unknown", ""), (run_end, 0, "gap", "")]
        marks += [(c.ts, 2, c.health, c.reason) for c in history.verdicts if run_start <= c.ts < run_end]
    marks.sort(key=lambda m: (m[0], m[1]))  # at one instant: a run's end, the next start, its verdicts
    return [(ts, health, reason) for ts, _, health, reason in marks]


def _classify(healths: list[str]) -> list[str]:
    """Each verdict's meaning, which depends on what came next: a DEGRADED is down only if DOWN (or
    RECOVERING, after a restart in failover) followed before any UP; a RECOVERING is up only if UP
    followed before any failure. Unobserved time in between decides nothing."""
    states = [UNOBSERVED] * len(healths)
    after_degraded: str | None = None  # the next verdict that is neither DEGRADED nor unobserved
    after_recovering: str | None = None  # the next verdict that is neither RECOVERING nor unobserved
    for i in range(len(healths) - 1, -1, -1):
        h = healths[i]
        if h == "up":
            states[i] = UP
        elif h == "down":
            states[i] = DOWN
        elif h == "degraded":
            states[i] = DOWN if after_degraded in ("down", "recovering") else UP
        elif h == "recovering":
            states[i] = UP if after_recovering == "up" else DOWN  # not yet back: still down
        if h not in _NOT_SEEN:
            after_degraded = h if h != "degraded" else after_degraded
            after_recovering = h if h != "recovering" else after_recovering
    return states


def _episodes(segments: list[_Segment]) -> list[list[_Segment]]:
    """Outages: the segments from a down one to the last down one before the portal was up again
    (unobserved segments between two down ones belong to the outage)."""
    episodes: list[list[_Segment]] = []
    current: list[_Segment] = []
    for s in segments:
        if s.state == UP:
            current = []
        elif s.state == DOWN:
            if not current:
                episodes.append(current)
            current.append(s)
        elif current:
            current.append(s)
    return [e[: max(i for i, s in enumerate(e) if s.state == DOWN) + 1] for e in episodes]


def _outage(
    episode: list[_Segment], history: History, failover: list[Span], start: float, end: float, now: float
) -> Outage | None:
    first, last = episode[0].start, episode[-1].end
    cut_start, cut_end = max(first, start), min(last, end)
    if cut_end <= cut_start:
        return None
    unobserved = sum(_overlap(s.start, s.end, cut_start, cut_end) for s in episode if s.state == UNOBSERVED)
    ons = [s for s in history.failover if s.on and first <= s.ts <= last]
    started = [span for span in failover if first <= span[0] <= last]  # failover may outlast it (min_failover)
    requests = sum(1 for r in history.requests if start <= r < end and _inside(r, started))
    cause = episode[0].reason or (ons[0].reason if ons else "")
    return Outage(
        cut_start,
        cut_end,
        cause,
        unobserved,
        ons[0].ts - first if ons else None,
        requests,
        clipped_start=first < start,
        clipped_end=last > end,
        ongoing=last >= now,
    )


def on_spans(switches: Iterable[Switch], now: float) -> list[Span]:
    """The [on, off) spans of a sequence of switches; one still on lasts until ``now``."""
    spans: list[Span] = []
    since: float | None = None
    for s in sorted(switches, key=lambda s: s.ts):
        if s.on and since is None:
            since = s.ts
        elif not s.on and since is not None:
            spans.append((since, s.ts))
            since = None
    if since is not None and since < now:
        spans.append((since, now))
    return spans


def union(groups: Iterable[Iterable[Span]]) -> list[Span]:
    """The spans of several lists, overlapping ones merged: two ads campaigns on at once count once."""
    merged: list[Span] = []
    for a, b in sorted(span for spans in groups for span in spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _inside(ts: float, spans: list[Span]) -> bool:
    return any(a <= ts < b for a, b in spans)


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))
