"""``portalguard run``: one process, one asyncio loop — watchdog, orchestrator, web app, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import socket
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import uvicorn
from prometheus_client import CollectorRegistry

from failover import retention
from failover.actions.base import Action, ActionContext, Measure, PortalLinks
from failover.actions.notify import NotifyConfig
from failover.actions.table import ACTIONS, build_action
from failover.doctor import run_checks
from failover.drill import rehearse
from failover.leadership import LEASE_ERRORS, Leadership
from failover.links import fallback_url, own_base_url
from failover.metrics import FailoverMetrics, MirrorMetrics, SiteMetrics
from failover.mirror.config import MirrorSettings
from failover.mirror.mail.watch import CheckReport, MailJob, MailWatch
from failover.mirror.model import FAILURE_KINDS, MailFailure
from failover.mirror.sync import MirrorJob, MirrorSync, SyncReport, window
from failover.orchestrator import Orchestrator
from failover.resilient import ResilientStore
from failover.settings import Settings
from failover.settings.model import GROUP_ALERTS, FailoverPortal
from failover.sites import SiteVotes
from failover.staff import StaffAlerts, StaffDirectory, Target
from failover.staff.bookings import WINDOW as BOOKING_WINDOW
from failover.staff.bookings import BookingAnnouncer
from failover.store import AsyncStore, EndpointRow, FencedOut, StoreError
from failover.store_url import is_database_url
from failover.web.server import ServiceError as ServiceError  # raised by run(); run_cmd catches it
from failover.web.server import build_servers
from watchdog.clock import steady_time
from watchdog.http_client import make_probe_client, source_address_problem
from watchdog.metrics import WatchdogMetrics
from watchdog.monitor import EndpointView, Monitor, PortalHealth
from watchdog.probes import run_probe
from watchdog.scheduler import ProbeJob, Scheduler
from watchdog.verdict import Health

log = logging.getLogger("portalguard")
RETENTION_EVERY = 3600.0
ANNOUNCE_SWEEP_EVERY = 60.0  # booking requests stored, but not queued for staff before a crash
ANNOUNCE_FLUSH_EVERY = 1.0  # booking requests whose minute is over are queued for staff
OUTBOX_STOP_WAIT = 25.0  # at shutdown, for the staff messages in flight (Apprise's own deadline, and then some)
STATIC_PAGES_EVERY = 2.0  # how often the config file is looked at for the static pages (a hash: cheap)
# Several instances: a booking request stored by a follower is queued for staff by the leader's sweep.
ANNOUNCE_SWEEP_EVERY_HA = 10.0
FOLLOW_EVERY = 1.0  # how often a follower reads the leader's portal state (what /book and /staff show)
OTHERS_FRESH = 3.0  # seconds: another site heard of this recently goes on when this one stops


def build_actions(
    settings: Settings, store: AsyncStore, http: httpx.AsyncClient, staff: StaffAlerts, clock: Callable[[], float]
) -> dict[str, dict[str, Action]]:
    """Every portal's actions, each bound to its portal (shared by `run`, `doctor` and `drill`)."""
    out: dict[str, dict[str, Action]] = {}
    for pid in settings.portals:
        ctx = action_context(settings, pid, store, http, staff, clock)
        out[pid] = {name: build_action(name, cfg, ctx) for name, cfg in settings.portal_actions(pid).items()}
    return out


def staff_directory(settings: Settings) -> StaffDirectory:
    """Who staff are, as the staff package needs it: every notify action's targets, each portal's
    notify actions, and what messages link to."""
    actions = {
        name: tuple(
            Target(name, i, url.get_secret_value(), cfg.language, cfg.timeout) for i, url in enumerate(cfg.urls)
        )
        for name, cfg in settings.all_actions().items()
        if isinstance(cfg, NotifyConfig)
    }
    portals = {pid: tuple(n for n in settings.portal_actions(pid) if n in actions) for pid in settings.portals}
    server = settings.server
    base = (server.public_url or own_base_url(server.listen)).rstrip("/")
    return StaffDirectory(
        actions=actions,
        portals=portals,
        clinic=settings.group_label(),
        timezone=settings.timezone,
        clinics={pid: settings.clinic_of(pid).name for pid in settings.portals},
        group=GROUP_ALERTS if settings.staff_alerts is not None else None,
        staff_url=server.staff_url or f"{base}/staff",
        public_url=server.public_url,
        names={pid: settings.portal_name(pid) for pid in settings.portals},
    )


def mirror_jobs(settings: Settings, client: httpx.AsyncClient) -> dict[str, MirrorJob]:
    """Every mirrored portal's sync job: its source read through a fresh staff session per sync, with
    the probes' client rules (the probe client: allowed hosts, timeouts, body cap, CA bundle)."""
    from zoneinfo import ZoneInfo

    from failover.mirror.sources import read_days

    tz = ZoneInfo(settings.timezone)
    jobs: dict[str, MirrorJob] = {}
    for pid, portal in settings.portals.items():
        mirror = portal.mirror
        if mirror is None or mirror.source is None:
            continue

        def read(days: Sequence[date], portal: FailoverPortal = portal, mirror: MirrorSettings = mirror) -> Any:
            return read_days(mirror.source, portal.endpoints, client, settings.probe, portal.timeout, days, tz)

        jobs[pid] = MirrorJob(pid, mirror.every, mirror.days_ahead, mirror.source.type, read)
    return jobs


def mail_jobs(settings: Settings) -> dict[str, MailJob]:
    """Every portal whose mirror reads the booking mails (``mirror.mail``)."""
    return {
        pid: MailJob(pid, portal.mirror.mail)
        for pid, portal in settings.portals.items()
        if portal.mirror is not None and portal.mirror.mail is not None
    }


async def mail_once(settings: Settings, portals: Sequence[str]) -> list[tuple[str, CheckReport | MailFailure]]:
    """One read of the new booking mails of ``portals`` now, from the CLI (`appointments sync`)."""
    store = AsyncStore(settings.store, data_key=settings.sealing_key())
    try:
        jobs = mail_jobs(settings)
        watch = MailWatch({p: jobs[p] for p in portals if p in jobs}, store, ZoneInfo(settings.timezone), steady_time)
        out: list[tuple[str, CheckReport | MailFailure]] = []
        for pid in watch.jobs:
            try:
                out.append((pid, await watch.check(pid)))
            except MailFailure as failure:
                out.append((pid, failure))
        return out
    finally:
        await store.close()


async def mirror_once(settings: Settings, portals: Sequence[str]) -> list[SyncReport]:
    """One sync of ``portals`` now, from the CLI (`appointments sync`), beside a running service or not."""
    from zoneinfo import ZoneInfo

    store = AsyncStore(settings.store, data_key=settings.sealing_key())
    client = make_probe_client(settings.probe)
    try:
        jobs = mirror_jobs(settings, client)
        sync = MirrorSync({p: jobs[p] for p in portals if p in jobs}, store, ZoneInfo(settings.timezone), steady_time)
        return [await sync.sync(pid) for pid in portals if pid in jobs]
    finally:
        await client.aclose()
        await store.close()


def action_context(
    settings: Settings,
    pid: str,
    store: AsyncStore,
    http: httpx.AsyncClient,
    staff: StaffAlerts,
    clock: Callable[[], float],
) -> ActionContext:
    """What the actions of portal ``pid`` may use, taken from the config once: data, not Settings."""
    from failover.web.security import preview_token

    links = PortalLinks(
        book_url=settings.portals[pid].book_url,
        own_url=f"{own_base_url(settings.server.listen)}/book/{pid}",
        fallback_url=fallback_url(settings.server.public_url, pid),
    )
    measures = tuple(
        Measure(name, ACTIONS[cfg.type].labels, ACTIONS[cfg.type].tells_staff)
        for name, cfg in settings.portal_actions(pid).items()
    )
    return ActionContext(
        portal_id=pid,
        links=links,
        clinic=settings.clinic_of(pid),
        measures=measures,
        store=store,
        http=http,
        staff=staff,
        preview_query=lambda: f"?preview={preview_token(settings, pid)}",
        clock=clock,
        mirrored=settings.portals[pid].mirror is not None,
    )


class Service:
    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], float] = steady_time,
        booking_window: float = BOOKING_WINDOW,
        config_file: Path | None = None,
    ) -> None:
        """``booking_window``: booking requests arriving within it make one staff message (the demo
        shortens it as it shortens every other timing). ``config_file``: where ``settings`` came
        from; the static fallback pages follow its changes."""
        self.settings = settings
        self.config_file = config_file
        self.clock = clock
        self.registry = CollectorRegistry()
        self.wmetrics = WatchdogMetrics(self.registry)
        self.fmetrics = FailoverMetrics(self.registry)
        self.store = ResilientStore(settings.store, clock, self.fmetrics, data_key=settings.sealing_key())
        # A portal that was in failover when we stopped must show a sustained recovery before "UP".
        # (Read before the loop serves anything: the sync store is fine here.)
        settled = {pid: Health.DOWN for pid in settings.portals if self.store.sync.portal(pid).failover}
        self.monitor = Monitor(settings, self.wmetrics, clock, settled)
        self.monitor.endpoint_listeners.append(self._persist_endpoint)
        self.staff = StaffAlerts(staff_directory(settings), self.store, clock)
        self.bookings = BookingAnnouncer(self.staff, self.store, clock, booking_window)
        self.http = httpx.AsyncClient(timeout=10.0)
        self.actions = build_actions(settings, self.store, self.http, self.staff, clock)
        # Several instances share a PostgreSQL store: each probes and votes, the lease's holder acts.
        # One instance on its own store (SQLite) leads alone, without a lease.
        self.smetrics = SiteMetrics(self.registry)
        self.votes = SiteVotes(
            settings.site,
            self.store,
            self.monitor.health,
            self.monitor.network_state,
            settings.portals,
            settings.ha.quorum,
            settings.site_stale_after(),
            clock,
            self.smetrics,
        )
        self.monitor.listeners.append(self.votes.on_own_verdict)
        self.votes.listeners.append(self._on_verdict)
        self.leadership: Leadership | None = None
        if is_database_url(settings.store):
            self.leadership = Leadership(self.store, settings.site, settings.ha.lease, self.smetrics)
        else:
            self.smetrics.leader.set(1)
            self.smetrics.site_up.labels(settings.site).set(1)
        self.staff.may_send = self.may_act
        self.orchestrator = self._new_orchestrator()
        self.probe_client = make_probe_client(settings.probe)
        self.mmetrics = MirrorMetrics(self.registry)
        self.mirror = MirrorSync(
            mirror_jobs(settings, self.probe_client),
            self.store,
            ZoneInfo(settings.timezone),
            clock,
            self.mmetrics,
            is_down=lambda pid: self.votes.health(pid).health is Health.DOWN,
        )
        self.mail = MailWatch(mail_jobs(settings), self.store, ZoneInfo(settings.timezone), clock, self.mmetrics)
        self.scheduler = Scheduler(
            self.monitor.jobs(),
            self._probe,
            self.monitor.on_result,
            settings.probe.concurrency,
            settings.probe.jitter,
            random.Random(),
        )
        self._http: list[tuple[uvicorn.Server, socket.socket]] = []
        self._http_tasks: list[asyncio.Task[None]] = []
        self._ended_token: int | None = None  # a term whose orchestrator stopped: not begun again

    def may_act(self) -> bool:
        """Whether this process may make effects now: it holds the leader lease (or is alone)."""
        return self.leadership is None or self.leadership.is_leader

    def _new_orchestrator(self) -> Orchestrator:
        return Orchestrator(
            self.settings,
            self.store,
            self.fmetrics,
            self.staff,
            self.actions,
            self.votes.health,  # the combined verdict (our own when alone)
            self.monitor.network_state,  # None until every canary answered: no false 'restored' at start
            self.clock,
            may_act=self.may_act,
        )

    def _on_verdict(self, health: PortalHealth, previous: Health) -> None:
        """A combined verdict changed: the leader records it and decides at once; a follower's
        verdicts reach the leader with its heartbeat."""
        if self.may_act():
            self.orchestrator.on_verdict(health, previous)

    async def _probe(self, job: ProbeJob):  # type: ignore[no-untyped-def]
        return await run_probe(self.probe_client, job.kind, job.target, job.timeout, self.settings.probe)

    def _persist_endpoint(self, pid: str, view: EndpointView) -> None:
        # Fire-and-forget: for `status` only, and the next probe's row supersedes a lost one. The
        # leader's probes only: two sites writing one row would make it flicker between their views.
        if not self.may_act():
            return
        r = view.result
        kind = r.error_kind.value if r.error_kind else None
        row = EndpointRow(pid, view.endpoint, r.ok, r.status, kind, r.detail, view.since, view.checked)
        self.store.submit_write("put_endpoint", row)

    # -- running -----------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Serve until ``stop``; raises ``ServiceError`` (nothing started) if a port cannot be had,
        or probes cannot leave from ``probe.source_address``."""
        problem = source_address_problem(self.settings.probe)
        if problem is not None:
            raise ServiceError(problem)
        await self.store.load(self.settings.portals)  # /book and deciding answer from memory from now on
        if self.leadership is None:
            # A permanent error stops retries until something changes; a restart (often after fixing
            # the config or credentials) is such a change. (On a full disk: retried from memory.)
            await self._clear_permanent_errors()
        # Bound and listening before anything starts: a taken port fails here, with its name, and
        # connections made from now on wait in the backlog until uvicorn accepts them.
        self._http = self._servers()
        self._http_tasks = [asyncio.create_task(srv.serve(sockets=[sock]), name="http") for srv, sock in self._http]
        background = [
            asyncio.create_task(self.scheduler.run(), name="scheduler"),
            asyncio.create_task(self._keep_static_pages(), name="static pages"),
            *[asyncio.create_task(w(), name="warm") for w in self._warmers()],
        ]
        if self.leadership is not None:
            background.append(asyncio.create_task(self.votes.run(), name="site votes"))
        log.info(
            "portalguard running: %d portal(s), web on %s%s",
            len(self.settings.portals),
            self.settings.server.listen,
            f", site {self.settings.site} (several instances: the leader acts)" if self.leadership else "",
        )
        if ready is not None:
            ready.set()
        try:
            if self.leadership is None:
                await self._term(stop)  # alone: the leader for as long as it runs
            else:
                await self._lead_when_leader(stop)
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self._close_servers()
            await self.http.aclose()
            await self.probe_client.aclose()
            self._close_pools()
            await self.store.close()

    async def _close_servers(self) -> None:
        """No new request from here on (idempotent): at a stop, before the last messages go."""
        for server, _ in self._http:
            server.should_exit = True
        await asyncio.gather(*self._http_tasks, return_exceptions=True)

    # -- what only the leader does --------------------------------------------------------------------

    async def _term(self, stop: asyncio.Event) -> None:
        """Everything only the leader does, until ``stop`` (a clean stop: the last messages go out) or
        until it is cancelled (another site leads now: nothing more is done, nothing is said)."""
        outbox_stop = asyncio.Event()  # its own: the messages in flight finish after the servers close
        outbox = asyncio.create_task(self.staff.run(outbox_stop), name="staff outbox")
        sweep_every = ANNOUNCE_SWEEP_EVERY if self.leadership is None else ANNOUNCE_SWEEP_EVERY_HA
        jobs = [
            asyncio.create_task(self._every(self.settings.failover.doctor_every, self.doctor), name="doctor"),
            asyncio.create_task(self._every(RETENTION_EVERY, self._purge), name="retention"),
            asyncio.create_task(self._every(sweep_every, self.bookings.sweep), name="announce sweep"),
            asyncio.create_task(self._every(ANNOUNCE_FLUSH_EVERY, self.bookings.flush_due), name="announce"),
            asyncio.create_task(self._run_mirror(), name="mirror"),
            asyncio.create_task(self._run_mail(), name="mirror mail"),
        ]
        graceful = False
        try:
            await self.orchestrator.run(stop)
            graceful = stop.is_set() and self.may_act()
        finally:
            for task in jobs:
                task.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            if graceful:
                await self._close_servers()
                await self._tell_stopped_in_failover()
                await self._announce_waiting()
                await self._stop_outbox(outbox, outbox_stop)
                self.store.submit_write("add_event", "service", None, state="stopped")
            else:
                outbox.cancel()
                await asyncio.gather(outbox, return_exceptions=True)

    async def _lead_when_leader(self, stop: asyncio.Event) -> None:
        """Several instances: follow the lease. Gaining it begins a term (a fresh orchestrator on the
        store's state); losing it ends the term at once. A follower reads the leader's state."""
        assert self.leadership is not None
        lead_stop = asyncio.Event()  # after the term's last messages: the lease is given up last
        leading = asyncio.create_task(self.leadership.run(lead_stop), name="leader lease")
        term: _TermTask | None = None
        try:
            while not stop.is_set():
                term = await self._follow(term, stop)
                await self._wait_for_change(stop)
        finally:
            if term is not None and not term.task.done():
                term.stop.set()  # a clean stop while leading: its last messages, then the lease
                await asyncio.gather(term.task, return_exceptions=True)
            elif not self.may_act():
                await self._last_word()
            with contextlib.suppress(StoreError, sqlite3.Error, OSError):
                await self.store.write_kept()  # under the lease still: written, not refused
            await self.votes.leave()
            lead_stop.set()
            await asyncio.gather(leading, return_exceptions=True)

    async def _last_word(self) -> None:
        """A follower stopping while no other site is heard of (they stopped too, a deploy; the
        leader went first and gave its lease up): it takes the free lease for one last duty, telling
        staff of the portals left in failover. Nobody else would."""
        assert self.leadership is not None
        with contextlib.suppress(*LEASE_ERRORS):
            await asyncio.wait_for(self.votes.beat_once(), 2.0)
        if self._others_alive():
            return
        with contextlib.suppress(*LEASE_ERRORS):
            await self.leadership.step()
        if self.may_act():
            await self._tell_stopped_in_failover()

    async def _follow(self, term: _TermTask | None, stop: asyncio.Event) -> _TermTask | None:
        assert self.leadership is not None
        token = self.leadership.term.token if self.leadership.is_leader and self.leadership.term else None
        if term is not None and term.token != token:
            await self._end_term(term)
            term = None
        if term is None and token is not None and token != self._ended_token:
            term = await self._begin_term(token, stop)
        if term is None:
            # /book answers from the last state read; the heartbeat's log says the store fails.
            with contextlib.suppress(StoreError, sqlite3.Error, OSError):
                await self.store.refresh(self.settings.portals)
        elif term.task.done():  # the orchestrator stopped: another site leads (the lease says so soon)
            self._ended_token = term.token
            await self._end_term(term)
            term = None
        await self._tell_store_outage()
        return term

    async def _tell_store_outage(self) -> None:
        """The database was unreachable long enough to matter, and is back: the leader tells staff what
        happened meanwhile (nothing was switched), once (the claim is by the minute it began). While
        it lasted no one could claim, so no one could tell; the StoreDown alert is the live signal."""
        outage = self.votes.outage
        if outage is None:
            return
        if not self.may_act():
            if self.votes.view.leader not in (None, self.settings.site):
                self.votes.outage = None  # another site leads: it tells, from its own view
            return
        self.votes.outage = None
        since, ended = outage
        claim = f"store_was_down:{int(since // 60)}"
        try:
            await self.staff.enqueue(claim, "store_was_down", None, since=since, ended=ended, site=self.settings.site)
        except (StoreError, sqlite3.Error, OSError, FencedOut) as err:
            log.error("staff not told of the database outage: %s", type(err).__name__)

    async def _begin_term(self, token: int, stop: asyncio.Event) -> _TermTask | None:
        try:  # the store's state, not what this process last saw as a follower
            await self.store.refresh(self.settings.portals)
        except (StoreError, sqlite3.Error, OSError) as err:
            log.error("leading postponed: the store's state cannot be read (%s)", type(err).__name__)
            return None
        await self._clear_permanent_errors()
        self.orchestrator = self._new_orchestrator()
        for pid in self.settings.portals:  # the combined verdicts as this leader sees them
            health = self.votes.health(pid)
            self.store.submit_write("set_verdict", pid, health.health.value, health.since)
        task = asyncio.create_task(self._term(stop), name=f"leader term {token}")
        return _TermTask(token, task, stop)

    async def _end_term(self, term: _TermTask) -> None:
        """The lease is lost: stop every effect now; what was kept in memory is the next leader's."""
        self.orchestrator.abandon()
        term.task.cancel()
        await asyncio.gather(term.task, return_exceptions=True)
        self.store.forget_unwritten()

    async def _wait_for_change(self, stop: asyncio.Event) -> None:
        assert self.leadership is not None
        changed = self.leadership.changed
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(changed.wait())]
        try:
            await asyncio.wait(waits, timeout=FOLLOW_EVERY, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        changed.clear()

    def _others_alive(self) -> list[str]:
        """The other sites heard of within the last few heartbeats (several instances): a site that
        merely still counts (``stale_after``) may have stopped; it would not take over."""
        fresh = [s for s in self.votes.view.sites if s.alive and s.age < OTHERS_FRESH and s.site != self.settings.site]
        return [s.site for s in fresh]

    async def _tell_stopped_in_failover(self) -> None:
        """A stop during a failover leaves the ads running while ``/book`` is gone: staff are told at
        once, per portal in failover, what stays on without us and what goes (and sent now, not at
        the outbox's next pass)."""
        if self._others_alive():  # another site takes over: /book stays, nothing to tell
            log.info("stopped while leading; site(s) %s take over", ", ".join(self._others_alive()))
            return
        now = self.clock()
        static = self.settings.server.static_fallback_dir is not None
        queued = False
        for pid in self.settings.portals:
            if not (await self.store.portal(pid)).failover:
                continue
            staying = [m for m in await self._measures_on(pid) if not ACTIONS[m[2]].served_by_us]
            measures = [(name, labels) for name, labels, _ in staying]
            try:
                claim = f"stopped:{pid}:{now:.3f}"
                fields = {"since": now, "staying": measures, "static_page": static}
                queued |= await self.staff.enqueue(claim, "stopped_in_failover", pid, **fields)
            except FencedOut:
                log.warning("staff not told that %s stays failed over: another site leads and goes on", pid)
            except Exception:
                log.exception("staff not told that %s stays failed over while portalguard is stopped", pid)
        if queued:
            try:
                await asyncio.wait_for(self.staff.deliver_due(), OUTBOX_STOP_WAIT)
            except TimeoutError:
                log.warning("the stop message is still on its way: sent again, marked, at the next start")

    async def _measures_on(self, pid: str) -> list[tuple[str, Any, str]]:
        """(name, labels, type) of the portal's measures that are, or may be, on now."""
        out = []
        for name, cfg in self.settings.portal_actions(pid).items():
            kind = ACTIONS[cfg.type]
            if kind.tells_staff:
                continue
            row = await self.store.action(pid, name)
            if row.desired == "on" or row.observed == "on":
                out.append((name, kind.labels, cfg.type))
        return out

    async def _keep_static_pages(self) -> None:
        """Write the static fallback pages at start, and again whenever the config file changes (a
        new phone number must reach the copy the proxy serves, even before the next restart)."""
        from failover.web.static_export import export

        seen: bytes | None = None
        settings: Settings | None = self.settings
        while True:
            digest = _digest(self.config_file)
            if digest != seen:
                if seen is not None:
                    settings = await asyncio.to_thread(self._reload_for_pages)
                seen = digest
                if settings is not None and settings.server.static_fallback_dir is not None:
                    directory = settings.server.static_fallback_dir
                    try:
                        changed = await asyncio.to_thread(export, settings, directory)
                    except OSError as err:
                        log.error("static fallback pages not written to %s: %s (check the directory)", directory, err)
                    else:
                        if changed:
                            log.info("static fallback pages written to %s: %s", directory, ", ".join(changed))
            if self.config_file is None:
                return
            await asyncio.sleep(STATIC_PAGES_EVERY)

    def _reload_for_pages(self) -> Settings | None:
        """The changed config, for the static pages only (the running service keeps its own)."""
        from failover.settings.loader import ConfigError, load

        assert self.config_file is not None
        try:
            return load(self.config_file, secrets_required=False)
        except ConfigError as err:
            log.warning(
                "the config file changed but is not valid (%d problem(s), see portalguard config check): "
                "static fallback pages kept as they were",
                len(err.messages),
            )
        except OSError as err:
            log.warning("the config file changed but cannot be read (%s): static fallback pages kept", err)
        return None

    async def _run_mirror(self) -> None:
        today = window(self.clock(), self.mirror.tz, 1)[0]
        for pid, job in self.mirror.jobs.items():
            state = await self.store.mirror_state(pid, today)
            self.mmetrics.declare_portal(pid, job.every, FAILURE_KINDS, state.last_success)
        await self.mirror.run()

    async def _run_mail(self) -> None:
        for pid in self.mail.jobs:
            state = await self.store.mail_state(pid)
            self.mmetrics.declare_mail(pid, state.last_success if state else None)
        await self.mail.run()

    @staticmethod
    async def _stop_outbox(outbox: asyncio.Task[None], stop: asyncio.Event) -> None:
        """Let the sends in flight finish (a row cut here is re-sent, marked, at the next start)."""
        stop.set()
        try:
            await asyncio.wait_for(outbox, OUTBOX_STOP_WAIT)
        except TimeoutError:
            log.warning("staff messages still in flight at shutdown: sent again, marked, at the next start")
        except Exception:
            log.exception("the staff outbox's delivery loop failed")

    async def _clear_permanent_errors(self) -> None:
        try:
            await self.store.clear_permanent_errors()
        except (StoreError, sqlite3.Error, OSError, FencedOut) as err:
            log.error("permanent action errors not cleared at start (store: %s); `portalguard failover` can", err)

    def _servers(self) -> list[tuple[uvicorn.Server, socket.socket]]:
        from failover.web.app import create_app

        app = create_app(
            self.settings,
            self.store,
            self.fmetrics,
            self.registry,
            self._booking_arrived,
            self.clock,
            drill=lambda pid: rehearse(self.actions[pid], pid, self.clock()),  # the console's drill
            leading=self.may_act,
        )
        return build_servers(self.settings.server, app, self.registry)

    async def _booking_arrived(self, portal: str, request_id: int) -> None:
        # A follower stored it: the leader's sweep queues it for staff (a follower tells nobody).
        if self.may_act():
            await self.bookings.arrived(portal, request_id)

    def _warmers(self) -> list[Callable[[], object]]:
        return [a.warm for acts in self.actions.values() for a in acts.values() if hasattr(a, "warm")]  # type: ignore[attr-defined]

    def _close_pools(self) -> None:
        """The thread pools Apprise and google-ads run in (each action object once)."""
        self.staff.close()
        closers = {id(a): a for acts in self.actions.values() for a in acts.values() if hasattr(a, "close")}
        for action in closers.values():
            action.close()  # type: ignore[attr-defined]

    async def _every(self, period: float, job: Callable[[], object]) -> None:
        while True:
            try:
                await job()  # type: ignore[misc]
            except Exception:
                log.exception("periodic job %s failed", getattr(job, "__name__", job))
            await asyncio.sleep(period)

    async def doctor(self) -> None:
        # The gauge is per action name, and one action may serve several portals: it shows 1 only
        # if every portal's check passed, so one failing portal is never hidden by another.
        ready: dict[str, bool] = {}
        for result in await run_checks(self.actions):
            ready[result.action] = ready.get(result.action, True) and result.ready
            if not result.ready:
                log.warning("preflight %s/%s not ready: %s", result.portal, result.action, result.detail)
        for action, ok in ready.items():
            self.fmetrics.action_ready.labels(action).set(int(ok))

    async def _purge(self) -> None:
        # On the sync store, in a thread: off the loop.
        await asyncio.to_thread(retention.purge, self.store.sync, self.settings, self.clock())

    async def _announce_waiting(self) -> None:
        """At shutdown: the booking requests still waiting for their minute are queued now, so the
        outbox can deliver them before it stops (if it cannot, the next start's sweep finds them)."""
        try:
            await self.bookings.flush_due(everything=True)
        except FencedOut:
            log.warning("booking requests left to the leader's sweep: another site leads")
        except Exception:
            log.exception("booking requests not queued for staff at shutdown: queued at the next start")


@dataclass(slots=True)
class _TermTask:
    token: int  # the lease's fencing token of this term
    task: asyncio.Task[None]
    stop: asyncio.Event


def _digest(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return hashlib.sha256(path.read_bytes()).digest()
    except OSError:
        return None  # moved away mid-edit: looked at again at the next pass


async def serve_until_signalled(settings: Settings, config_file: Path | None = None) -> None:
    """Run until SIGTERM/SIGINT, then stop cleanly (actions in flight finish, servers close)."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(asyncio.CancelledError):
        await Service(settings, config_file=config_file).run(stop)
