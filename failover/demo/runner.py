"""``portalguard demo``: a whole outage and recovery, on 127.0.0.1 only, in about 90 seconds.

The real Service (watchdog, orchestrator, web app, metrics) runs in this process against local
fakes (``failover.demo.stage``); the scenario (``failover.demo.script``) switches the simulated
portal off and on again, and the player waits for each step on the timeline. It ends with the
incident report portalguard itself writes, and what the fakes received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from failover.demo import patient
from failover.demo.player import Interrupted, Player, ScenarioFailed
from failover.demo.script import Bounds, Phase, booking_steps, outage_steps, recovery_steps, startup_steps
from failover.demo.stage import CAMPAIGN, CAMPAIGN_BUDGET, PORTAL, STAFF_USER, Stage, Timings, stage
from failover.demo.timeline import Timeline
from failover.demo.watch import Watcher
from failover.incident import report
from failover.service import Service
from failover.store import AsyncStore

SERVICE_START_BOUND = 30.0
BOOKING_WINDOW = 3.0  # booking requests within it make one staff message (the service: a minute)
MIRROR_WAIT_STEPS = 100  # x 0.2 s: the first sync of the mirror at start, a booking e-mail's arrival
MAIL_BOOKING = "M-LAST"  # booked on the portal a moment before the outage: known only from its e-mail
INTERRUPTED = "interrupted (Ctrl-C) before the scenario completed"
OUTAGE_MODES = {
    "error500": "answers HTTP 500 on every page",
    "maintenance": 'shows a 200 "メンテナンス中" page (caught by not_contains)',
    "hang": "accepts connections but never answers (probe timeout)",
    "refuse": "refuses connections",
}


@dataclass(frozen=True)
class DemoOptions:
    outage_seconds: float = 60.0  # how long the outage lasts once every measure is on
    outage_mode: str = "error500"
    language: str = "ja"  # of the staff messages
    keep_running: bool = False
    timings: Timings = field(default_factory=Timings)


@dataclass
class DemoResult:
    ok: bool
    error: str | None  # which step failed, and why
    report: str
    summary: dict[str, Any]
    timeline: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "error": self.error, "report": self.report, "summary": self.summary, **self.timeline}


async def run_demo(options: DemoOptions, timeline: Timeline, stop: asyncio.Event | None = None) -> DemoResult:
    """Play the demo; ``stop`` (set by Ctrl-C) ends it early, or ends ``keep_running``."""
    if options.outage_mode not in OUTAGE_MODES:
        raise ValueError(f"unknown outage mode {options.outage_mode!r} (use {', '.join(OUTAGE_MODES)})")
    stop = stop or asyncio.Event()
    started = time.time()
    timeline.title("portalguard demo — a booking portal outage and recovery, on 127.0.0.1 only")
    async with stage(options.timings, options.language) as st, _service(st) as service:
        # In the service's loop: reads off it.
        store = AsyncStore(st.settings.store, data_key=st.settings.sealing_key())
        try:
            player = Player(timeline, Watcher(st, store, started), service, stop)
            error = await _play(player, _phases(player, st, options))
            result = await _finish(timeline, st, store, player, error)
            if options.keep_running and error is None:
                _show_keep_running(timeline, st)
                await player.idle()
            return result
        finally:
            await store.close()


async def _play(player: Player, phases: list[Phase]) -> str | None:
    try:
        await player.play(phases)
    except ScenarioFailed as err:
        return str(err)
    except Interrupted:
        return INTERRUPTED
    return None


@contextlib.asynccontextmanager
async def _service(st: Stage) -> AsyncIterator[asyncio.Task[None]]:
    """The real portalguard service, in this process and loop, stopped cleanly on the way out."""
    service = Service(st.settings, booking_window=BOOKING_WINDOW)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(service.run(stop, ready), name="portalguard")
    try:
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({task, waiter}, timeout=SERVICE_START_BOUND, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            await task  # raises the reason it could not start
        if not ready.is_set():
            raise RuntimeError(f"the portalguard service did not start within {SERVICE_START_BOUND:.0f} s")
        yield task
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(task), 30.0)


# -- the scenario's moves ---------------------------------------------------------------------------


def _phases(player: Player, st: Stage, options: DemoOptions) -> list[Phase]:
    bounds = Bounds.of(options.timings)
    mode = options.outage_mode
    tz = st.settings.timezone

    async def introduce() -> None:
        _show_stage(player.timeline, st)

    async def check_redirect() -> None:
        visit = await patient.open_book(st.book_url)
        where = f" → {visit.location} (the portal)" if visit.location else ""
        await player.say(f"a patient opens /book/{PORTAL}: HTTP {visit.status}{where}", "info")

    async def check_mirror() -> None:
        # The first sync runs as the service starts; the outage must not begin before it is done.
        today = datetime.now(ZoneInfo(tz)).date()
        store = player.watcher.store
        for _ in range(MIRROR_WAIT_STEPS):
            state = await store.mirror_state(PORTAL, today)
            if state.last_success is not None:
                break
            await asyncio.sleep(0.2)
        counts = [await store.count_appointments(PORTAL, today + timedelta(days=n)) for n in (0, 1)]
        await player.say(
            f"the appointment mirror copied the portal's book: {counts[0]} today, {counts[1]} tomorrow "
            "(sealed with the demo's data key)",
            "info",
        )

    async def redirect_and_mirror() -> None:
        await check_redirect()
        await check_mirror()

    async def break_portal() -> None:
        if st.mailbox is not None:  # the last booking before the outage: the admin sync never sees it
            start = datetime.now(ZoneInfo(tz)).replace(hour=18, minute=30, second=0, microsecond=0)
            st.simulator.book.add(start, "中村 さくら", phone="090-0000-5555", menu="急患", id=MAIL_BOOKING)
            await player.say("a patient books on the portal a moment before it fails; the portal mails the clinic")
        st.simulator.set_mode(mode)
        await player.say(f"the booking portal now {OUTAGE_MODES[mode]} (simulator mode {mode})", mode=mode)

    async def book_on_fallback() -> None:
        player.timeline.line()
        player.timeline.note(f"The fallback booking page is ON: open {st.book_url}")
        player.timeline.note("and send a booking request while the outage lasts.")
        player.timeline.note(f"Staff see who is coming, though the portal is down: {st.appointments_url}")
        player.timeline.note(f"  ({STAFF_USER} / {st.staff_password})")
        for line in _mirror_lines(st):
            player.timeline.note(f"  the outage message says: {line}")
        player.timeline.note(await _mail_booking(st, player.watcher.store, tz))
        player.timeline.line()
        status = await patient.request_booking(st.book_url, tz)
        await player.say(f"a simulated patient sends a booking request on the fallback page: HTTP {status}", "info")

    async def outage_lasts() -> None:
        player.timeline.note(f"The outage lasts {options.outage_seconds:.0f} s more: try {st.book_url} now.")
        await player.hold(options.outage_seconds)

    async def repair_portal() -> None:
        st.simulator.set_mode("healthy")
        await player.say("the booking portal answers normally again (simulator mode healthy)", mode="healthy")

    return [
        Phase(
            "Start: a healthy portal, fake Google Ads, a staff inbox, portalguard",
            startup_steps(bounds),
            introduce,
            redirect_and_mirror,
        ),
        Phase(f"Outage: the booking portal {OUTAGE_MODES[mode]}", outage_steps(bounds), break_portal),
        Phase("Patients book on the fallback page", booking_steps(bounds), book_on_fallback, outage_lasts),
        Phase("The portal is back", recovery_steps(bounds), repair_portal),
    ]


async def _mail_booking(st: Stage, store: AsyncStore, tz: str) -> str:
    """Whether the booking e-mail sent just before the outage reached the copy (the mailbox is read
    while the portal is down: that is when it matters)."""
    if st.mailbox is None:
        return "Booking e-mails: not shown (Debian's dovecot-imapd is not installed, or cannot run as this user)."
    today = datetime.now(ZoneInfo(tz)).date()
    for _ in range(MIRROR_WAIT_STEPS):
        found = [a for a in await store.appointments(PORTAL, today, today) if a.id == MAIL_BOOKING]
        if found:
            when = datetime.fromtimestamp(found[0].start, ZoneInfo(tz)).strftime("%H:%M")
            return f"  the booking e-mail's appointment is in the copy too: {when} (booked after the last admin sync)"
        await asyncio.sleep(0.2)
    return "  the booking e-mail's appointment did NOT reach the copy"


def _mirror_lines(st: Stage) -> list[str]:
    """The outage message's line about the mirror (counts and when it synced; never a name)."""
    for message in st.staff_messages():
        for line in str(message.get("message", "")).splitlines():
            if line.startswith(("予約の控え", "Appointment copy")):
                return [line]
    return []


def _show_stage(timeline: Timeline, st: Stage) -> None:
    _rows(
        timeline,
        [
            ("booking portal (simulated)", st.simulator.url("public")),
            ("fake Google Ads API", f"{st.ads.endpoint}  campaign {CAMPAIGN} PAUSED, ¥{CAMPAIGN_BUDGET:,.0f}/day"),
            ("staff inbox", f"json://{st.inbox.host}:{st.inbox.port}  +  mailto://…@{st.mail.host}:{st.mail.port}"),
            ("portalguard /book", st.book_url),
            ("portalguard /staff", f"{st.staff_url}  ({STAFF_USER} / {st.staff_password})"),
            ("appointments (mirror)", st.appointments_url),
            ("portalguard /metrics", st.metrics_url),
        ],
    )


def _rows(timeline: Timeline, rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        timeline.note(f"{label:<{width}}  {value}")


def _show_keep_running(timeline: Timeline, st: Stage) -> None:
    config = st.directory / "portalguard.yaml"
    config.write_text(yaml.safe_dump(st.config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    control = f"{st.simulator.control_url}/_sim/mode"
    timeline.line()
    timeline.title("Everything keeps running until Ctrl-C:")
    _rows(
        timeline,
        [
            ("fallback page / redirect", st.book_url),
            ("staff page", f"{st.staff_url}  ({STAFF_USER} / {st.staff_password})"),
            ("appointments (mirror)", st.appointments_url),
            ("break the portal again", f'curl -X POST {control} -d \'{{"mode": "error500"}}\''),
            ("repair it", f'curl -X POST {control} -d \'{{"mode": "healthy"}}\''),
            ("the CLI on this demo", f"portalguard -c {config} status"),
        ],
    )
    timeline.line()


# -- the end ----------------------------------------------------------------------------------------


async def _finish(timeline: Timeline, st: Stage, store: AsyncStore, player: Player, error: str | None) -> DemoResult:
    await player.pump()
    await _outbox_delivered(store)
    tz = ZoneInfo(st.settings.timezone)

    def when(ts: float | None) -> str:
        return "-" if ts is None else datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S %Z")

    text = await asyncio.to_thread(report, store.sync, PORTAL, when)  # the CLI's report, on the sync store
    summary = _summary(st, await store.count_requests(PORTAL), player)
    timeline.line()
    if error is None:
        elapsed = time.time() - player.watcher.started
        timeline.line(f"✓ The whole outage and recovery played out in {elapsed:.0f} s.", "good")
    else:
        timeline.line(f"✗ The demo did not complete: {error}", "bad")
    timeline.line()
    timeline.title("Incident report (portalguard incident report)")
    for line in text.rstrip().splitlines():
        timeline.line(line)
    _show_summary(timeline, summary)
    return DemoResult(error is None, error, text, summary, timeline.as_json())


async def _outbox_delivered(store: AsyncStore, within: float = 10.0) -> None:
    """Wait (bounded) until every queued staff message left the outbox: the summary counts what
    each inbox received, and the last message ("recovered") may still be on its way to one of them."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(r.state not in ("pending", "sending") for r in await store.outbox()):
            return
        await asyncio.sleep(0.05)


def _summary(st: Stage, booking_requests: int, player: Player) -> dict[str, Any]:
    started = player.watcher.started
    history = [{"t": round(t, 1), "status": s} for t, s in player.watcher.campaign_history]
    return {
        "staff_inbox": [m.get("title") for m in st.staff_messages()],
        "staff_mail": [m.subject for m in st.mail.messages],
        "webhook": [p.get("state") for p in st.webhook_posts()],
        "campaign": {"id": CAMPAIGN, "initial": "PAUSED", "history": history, "now": st.ads.status(CAMPAIGN)},
        "booking_requests": booking_requests,
        "elapsed": round(time.time() - started, 1),
    }


def _show_summary(timeline: Timeline, s: dict[str, Any]) -> None:
    timeline.line()
    timeline.title("What the outside world saw")
    timeline.note(f"staff inbox (json://) received {len(s['staff_inbox'])} message(s):")
    for title in s["staff_inbox"]:
        timeline.note(f"  - {title}")
    timeline.note(f"staff e-mail (mailto://) received {len(s['staff_mail'])} message(s)")
    timeline.note(f"IVR webhook received: {', '.join(s['webhook']) or 'nothing'}")
    changes = [f"{h['status']} (+{h['t']:.0f}s)" for h in s["campaign"]["history"]]
    timeline.note(f"campaign {s['campaign']['id']} (fake Google Ads): {' → '.join(['PAUSED', *changes])}")
    timeline.note(f"booking requests received on the fallback page: {s['booking_requests']}")


def write_json(path: Path, result: DemoResult) -> None:
    path.write_text(json.dumps(result.as_json(), ensure_ascii=False, indent=2), encoding="utf-8")
