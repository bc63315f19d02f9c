"""The web app: ``/book`` (a redirect to the portal, or the fallback page while the switch is on), the
booking form, ``/staff``, ``/healthz`` and ``/metrics``.

Patient data is never logged: log lines name the portal, the request number and error *types* only.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import sqlite3
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from failover.clinic import Clinic
from failover.drill import Rehearse, for_the_log, next_record
from failover.incident import EVENT_KINDS, incidents
from failover.incident import report as incident_report
from failover.links import location_header
from failover.metrics import FailoverMetrics
from failover.mirror.dates import named_day
from failover.report.build import reports
from failover.report.period import PeriodError, month, shift, this_month
from failover.report.render import TEXT as REPORT_TEXT
from failover.report.render import View, percent
from failover.settings import Settings, StaffAuth
from failover.store import MAINTENANCE_MODES, REQUEST_STATUSES, AsyncStore, DataKeyError, StoreError, describe_error
from failover.store_url import is_database_url
from failover.web import appointments, console, forms, history, sessions
from failover.web.accounts import Staff, StaffLogins
from failover.web.i18n import STRINGS, choose_lang, format_day, format_time, translator
from failover.web.pages import ASSETS, load_templates, tel_href
from failover.web.report import download
from failover.web.security import (
    CSRF_FIELD,
    Csrf,
    RateLimiter,
    SecurityHeadersMiddleware,
    app_secret,
    client_bucket,
    csrf_cookie_header,
    preview_ok,
    staff_authorized,
    staff_challenge,
)
from watchdog.clock import steady_time
from watchdog.duration import format_duration

log = logging.getLogger("portalguard.web")

UNMATCHED = "unmatched"  # the route label of paths no route knows (never the raw path)
STAFF_LIST_LIMIT = 500
STAFF_FAILED_LOGINS_PER_MINUTE = 10
LOCKED_OUT_DELAY = 60 / STAFF_FAILED_LOGINS_PER_MINUTE  # a locked-out client keeps guessing no faster
LOCKED_OUT_QUEUE = 3  # its checks waiting at most; more are refused unchecked
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 50
BLANK_FORMS_KEPT = 64
MAX_REQUEST_ID = 2**63 - 1  # SQLite's INTEGER: a longer number in the URL is no request of ours
CSRF_SLOT = "__csrf_token_slot__"
CLIENT_CLOSED = 499
HISTORY_LIMIT = 500  # lines on the history page (newest first)
OVERVIEW_REFRESH = 15  # seconds: the overview reloads itself (meta refresh), the data time shown

Notify = Callable[[str, int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ClinicLink:
    """One link of a group's clinic filter on the staff pages (``name`` empty: the whole group)."""

    name: str
    url: str
    current: bool


@dataclass(frozen=True, slots=True)
class Choice:
    """A portal on ``/book``'s list when the instance has several."""

    name: str
    url: str
    clinic: str
    phone: str
    tel_href: str
    fallback: bool  # the portal is down: its link leads to the fallback page


class Rejected(Exception):
    """A request we answer with a 4xx/5xx page in the visitor's language: ``message`` is an i18n key."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def create_app(
    settings: Settings,
    store: AsyncStore,
    metrics: FailoverMetrics,
    registry: CollectorRegistry,
    notify: Notify | None = None,
    clock: Callable[[], float] = steady_time,
    drill: Rehearse | None = None,
    leading: Callable[[], bool] = lambda: True,
) -> Starlette:
    """The ASGI app. ``notify(portal, request_id)`` announces a new booking request to staff; it runs
    in the background and never delays or fails the patient's confirmation. ``app.state.announcements``
    holds the announcements still running (a shutdown may wait for them). ``drill(portal)`` rehearses
    a portal's actions (the service's own), for the staff console; without it the console offers none.
    ``leading()``: whether this instance holds the leader lease (several instances): only the leader
    drills, as only it sends staff messages."""
    web = _Web(settings, store, metrics, registry, notify, clock)
    web.drill = drill
    web.leading = leading
    app = Starlette(
        routes=web.routes(),
        middleware=[
            Middleware(_MetricsMiddleware, metrics=metrics),
            Middleware(SecurityHeadersMiddleware),
            Middleware(_ErrorPageMiddleware, render=web.error_response),
        ],
        exception_handlers={Rejected: web.rejected, HTTPException: web.http_error},
    )
    app.state.announcements = web.announcements
    return app


class _Web:
    def __init__(
        self,
        settings: Settings,
        store: AsyncStore,
        metrics: FailoverMetrics,
        registry: CollectorRegistry,
        notify: Notify | None,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.registry = registry
        self.notify = notify
        self.clock = clock
        self.tz = ZoneInfo(settings.timezone)
        self.key = app_secret(settings)
        self.csrf = Csrf(self.key)
        self.limiter = RateLimiter(
            settings.booking.rate_limit_per_minute, clock, ipv6_prefix=settings.booking.ipv6_prefix
        )
        self.staff_failures = RateLimiter(STAFF_FAILED_LOGINS_PER_MINUTE, clock)
        self.logins = StaffLogins(settings.staff, store, clock)
        self._lockout_queues: dict[str, asyncio.Lock] = {}
        self._lockout_waiting: dict[str, int] = {}
        self.sleep = asyncio.sleep  # the delay of a locked-out client's wrong guess (tests step a clock)
        self.announcements: set[asyncio.Task[None]] = set()
        self.drill: Rehearse | None = None  # the service's rehearsal of a portal (create_app's drill)
        self.leading: Callable[[], bool] = lambda: True  # several instances: this one holds the lease
        self.assets = _load_assets(ASSETS)
        self.asset_version = hashlib.sha256(b"".join(a.body for a in self.assets.values())).hexdigest()[:10]
        self.templates = load_templates()
        self._blank_forms: dict[tuple[str | None, ...], str] = {}
        self.translators = {lang: translator(lang) for lang in STRINGS}

    def routes(self) -> list[Route]:
        return [
            Route("/book", self.book_index, methods=["GET"]),
            Route("/book/{portal}", self.book_portal, methods=["GET"]),
            Route("/book/{portal}/request", self.book_request, methods=["POST"]),
            Route("/book/{portal}/done/{number:int}", self.book_done, methods=["GET"]),
            Route("/staff", self.staff, methods=["GET"]),
            Route("/staff/login", self.staff_login_page, methods=["GET"]),
            Route("/staff/login", self.staff_login_post, methods=["POST"]),
            Route("/staff/logout", self.staff_logout, methods=["POST"]),
            Route("/staff/requests/{request_id:int}/status", self.staff_status, methods=["POST"]),
            Route("/staff/appointments", self.staff_appointments, methods=["GET"]),
            Route("/staff/overview", self.staff_overview, methods=["GET"]),
            Route("/staff/history", self.staff_history, methods=["GET"]),
            Route("/staff/incident/{portal}", self.staff_incident, methods=["GET"]),
            Route("/staff/decide/{portal}", self.staff_decide_form, methods=["GET"]),
            Route("/staff/decide/{portal}", self.staff_decide, methods=["POST"]),
            Route("/staff/report", self.staff_report, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/metrics", self.metrics_page, methods=["GET"]),
            Route("/static/{name}", self.static, methods=["GET"]),
        ]

    # -- /book ----------------------------------------------------------------------------------

    async def book_index(self, request: Request) -> Response:
        if len(self.settings.portals) == 1:
            return await self._book(request, next(iter(self.settings.portals)))
        lang = self._lang(request)
        portals = [await self._choice(request, pid, lang) for pid in self.settings.portals]
        if self.settings.clinic is None and len(self.settings.clinics) > 1:  # a dental group: its name on top
            name = self.settings.group_label()
            return self._page(request, "chooser.html", lang, portals=portals, group=True, clinic_name=name)
        return self._page(request, "chooser.html", lang, portals=portals, group=False)

    async def _choice(self, request: Request, pid: str, lang: str) -> Choice:
        """One line of the group's list: the portal, its clinic, and whether online booking works now."""
        clinic = self.settings.clinic_of(pid)
        return Choice(
            name=self.settings.portal_name(pid),
            url=self._url(request, f"/book/{pid}", lang=lang),
            clinic=clinic.text("name", lang),
            phone=clinic.phone,
            tel_href=tel_href(clinic.phone),
            fallback=(await self.store.portal(pid)).page_on,
        )

    async def book_portal(self, request: Request) -> Response:
        return await self._book(request, self._portal_id(request))

    async def _book(self, request: Request, pid: str) -> Response:
        """302 to the portal while the switch is off; the fallback page while it is on (or a preview)."""
        lang = self._lang(request)
        preview = request.query_params.get("preview")
        # The running service answers from memory (ResilientStore): no database read per patient,
        # and a full or locked disk never keeps the fallback page from showing.
        page_on = (await self.store.portal(pid)).page_on
        if preview is not None and not preview_ok(self.key, pid, preview):
            raise Rejected(403, "e403_preview")
        if preview is None and not page_on:
            return Response(status_code=302, headers={"location": location_header(self.settings.portals[pid].book_url)})
        drill = preview is not None and not page_on
        return self._form(request, pid, lang, preview=preview if drill else None)

    async def book_request(self, request: Request) -> Response:
        """Post/Redirect/Get: a stored request answers 303 to its confirmation (a GET that shows only
        the number), so a reload never posts again; and each rendered form's token is good for one
        request: a replay (back and send again, a double tap) gets the first one's confirmation,
        stores nothing and notifies nobody."""
        pid = self._portal_id(request)
        if not self.limiter.allow(_client(request)):
            raise Rejected(429, "e429", {"retry-after": "60"})
        fields = await self._read_form(request)
        lang = choose_lang(fields.get("lang"), request.headers.get("accept-language"))
        preview = fields.get("preview") or None
        drill = preview is not None and preview_ok(self.key, pid, preview)
        preview = preview if drill else None
        form = self.csrf.form_of(self.csrf.cookie_of(request.cookies), fields.get(CSRF_FIELD, ""))
        if form is None:
            if not drill and not (await self.store.portal(pid)).page_on:
                # The portal is back: no new form, whose fresh token anyone could post while it is up.
                return self._portal_is_back(request, pid, lang)
            # A page left open over a restart or a cleared cookie: keep what was typed, ask again.
            result = forms.validate(fields, self._today())
            return self._form(request, pid, lang, result.values, {}, 403, banner="csrf_expired", preview=preview)
        if forms.honeypot_filled(fields):
            return self._done(request, pid, lang, None, drill)  # a bot: it sees success, we store nothing
        result = forms.validate(fields, self._today())
        if result.data is None:
            return self._form(request, pid, lang, result.values, result.errors, 422, preview=preview)
        data = {**result.data, "lang": lang, **({"drill": True} if drill else {})}
        number, new = await self._store_request(pid, data, form)
        if new:
            self._announce(pid, number)
        else:
            log.info("booking form for %s sent again: request %d shown, nothing stored", pid, number)
        done = self._url(
            request,
            f"/book/{pid}/done/{number}",
            lang=lang,
            drill="1" if drill else None,
            t=self.csrf.done_token(pid, number, drill),
        )
        return Response(status_code=303, headers={"location": done})

    async def book_done(self, request: Request) -> Response:
        """The confirmation: the number only (the URL carries no patient data), signed so that only
        numbers this service gave out are confirmed."""
        pid = self._portal_id(request)
        number = int(request.path_params["number"])
        drill = request.query_params.get("drill") == "1"
        if not self.csrf.done_ok(pid, number, drill, request.query_params.get("t", "")):
            raise Rejected(404, "e404")
        return self._done(request, pid, self._lang(request), number, drill)

    async def _store_request(self, pid: str, data: dict[str, Any], form: str) -> tuple[int, bool]:
        # Awaited (the patient's number is its row) but off the loop: the commit fsyncs.
        try:
            number, new = await self.store.add_form_request(pid, data, form)
        except (StoreError, sqlite3.Error, OSError) as err:
            log.error("booking request for %s NOT stored: %s", pid, type(err).__name__)
            raise Rejected(503, "e503") from None
        if new:
            self.metrics.booking_requests.labels(pid).inc()
            log.info("booking request %d stored for %s", number, pid)
            if not data.get("drill"):
                # The request's time outlives the request (booking.retention): the availability report
                # counts requests during outages for as long as it keeps history. Its number only.
                self.store.submit_write("add_event", "request", pid, number=number)
        return number, new

    def _announce(self, pid: str, number: int) -> None:
        if self.notify is None:
            return
        task = asyncio.get_running_loop().create_task(self._notify_staff(self.notify, pid, number))
        self.announcements.add(task)
        task.add_done_callback(self.announcements.discard)

    @staticmethod
    async def _notify_staff(notify: Notify, pid: str, number: int) -> None:
        try:
            await notify(pid, number)
        except Exception as err:  # the patient already has the confirmation; staff see /staff
            log.warning("staff not told of booking request %d for %s: %s", number, pid, type(err).__name__)

    # -- /staff ---------------------------------------------------------------------------------

    async def staff(self, request: Request) -> Response:
        staff = await self._staff_login(request)
        lang = self._lang(request)
        status = request.query_params.get("status")
        status = status if status in REQUEST_STATUSES else None
        clinic, chosen = self._clinic_filter(request)
        try:
            rows = await self.store.requests(status, chosen, STAFF_LIST_LIMIT)
        except DataKeyError as err:  # sealed with a key the config does not give: say so in the log
            log.error("/staff cannot show the booking requests: %s", err)
            raise Rejected(503, "e503") from None
        # The state table shows the whole group whatever the filter: an outage elsewhere stays in sight.
        portals = [await self.store.portal(pid) for pid in self._portals_by_clinic()]
        holds = {p.portal: await self.store.value(f"flapping_hold:{p.portal}") for p in portals if p.failover}

        def filter_url(s: str | None) -> str:
            return self._url(request, "/staff", lang=lang, status=s, clinic=clinic)

        def status_action(number: int) -> str:
            return self._url(request, f"/staff/requests/{number}/status")

        response = self._with_csrf(
            request,
            lambda csrf: self._page(
                request,
                "staff.html",
                lang,
                staff_user=staff,
                can_decide=staff.operator,  # a viewer's page has no status forms (the server refuses them too)
                logout_action=self._url(request, "/staff/logout"),
                other_url=self._url(request, "/staff", status=status, clinic=clinic),
                appointments_url=self._url(
                    request, "/staff/appointments", lang=request.query_params.get("lang"), clinic=clinic
                )
                if any(p.mirror is not None for p in self.settings.portals.values())
                else None,
                report_url=self._url(request, "/staff/report", lang=request.query_params.get("lang")),
                csrf=csrf,
                overview_url=self._url(request, "/staff/overview", lang=request.query_params.get("lang")),
                requests=rows,
                portals=portals,
                holds=holds,
                names={pid: self.settings.portal_name(pid) for pid in self.settings.portals},
                clinic_names=self._clinic_names(lang),
                clinics=self._clinic_links(request, lang, clinic, "/staff", status=status),
                chosen_clinic=clinic,
                status_filter=status,
                statuses=REQUEST_STATUSES,
                limit=STAFF_LIST_LIMIT,
                filter_url=filter_url,
                status_action=status_action,
                when=lambda ts: format_time(ts, self.settings.timezone),
                visits=forms.VISITS,
                times=forms.TIMES,
            ),
        )
        return self._keep_session(request, response)

    # -- a dental group's staff views: per clinic, or the whole group ----------------------------

    def _grouped(self) -> bool:
        return self.settings.clinic is None and len(self.settings.clinics) > 1

    def _clinic_filter(self, request: Request) -> tuple[str | None, list[str] | None]:
        """``?clinic=ID``: that clinic and its portals; none given: the whole group (None, None). An
        unknown clinic (a bookmark from before a config change) is a 404, never silently everything."""
        cid = request.query_params.get("clinic")
        if not cid or not self._grouped():
            return None, None
        if cid not in self.settings.clinics:
            raise Rejected(404, "e404")
        return cid, self.settings.portals_of(cid)

    def _portals_by_clinic(self) -> list[str]:
        """Every portal, a group's sorted by clinic (config order within each)."""
        if not self._grouped():
            return list(self.settings.portals)
        return [pid for cid in self.settings.clinics for pid in self.settings.portals_of(cid)]

    def _clinic_names(self, lang: str) -> dict[str, str]:
        """Portal -> its clinic's name, for a group only (one clinic: nothing to tell apart)."""
        if not self._grouped():
            return {}
        return {pid: self.settings.clinic_of(pid).text("name", lang) for pid in self.settings.portals}

    def _clinic_links(
        self, request: Request, lang: str, current: str | None, path: str, **keep: str | None
    ) -> list[ClinicLink]:
        """The clinic filter's links (empty unless a group): every clinic, then the whole group."""
        if not self._grouped():
            return []
        explicit = request.query_params.get("lang")

        def url(cid: str) -> str:
            return self._url(request, path, lang=explicit, clinic=cid, **keep)

        links = [
            ClinicLink(name=c.text("name", lang), url=url(cid), current=cid == current)
            for cid, c in self.settings.clinics.items()
        ]
        everything = ClinicLink("", self._url(request, path, lang=explicit, **keep), current is None)
        return [everything, *links]

    async def staff_appointments(self, request: Request) -> Response:
        """One day of the appointment mirror (default today), with that day's booking requests."""
        await self._staff_login(request)
        lang = self._lang(request)
        day = named_day(request.query_params.get("date"), self._today())
        if day is None:
            raise Rejected(400, "e400")
        clinic, chosen = self._clinic_filter(request)
        mirrored = [pid for pid, p in self.settings.portals.items() if p.mirror is not None]
        if chosen is not None:
            mirrored = [pid for pid in mirrored if pid in chosen]
        try:
            rows = await self.store.appointments(chosen, day, day)
            requests = await self.store.requests(None, chosen, STAFF_LIST_LIMIT)
            unread = await self.store.unread_mails(None, self.clock() - appointments.UNREAD_SHOWN_FOR)
            unread = [u for u in unread if chosen is None or u[0] in chosen]
        except DataKeyError as err:  # sealed with a key the config does not give: say so in the log
            log.error("/staff/appointments cannot show the appointments: %s", err)
            raise Rejected(503, "e503") from None
        states = [await self.store.mirror_state(pid, self._today()) for pid in mirrored]
        intervals = {pid: self.settings.portals[pid].mirror.every for pid in mirrored}  # type: ignore[union-attr]
        view = appointments.day_view(day, rows, states, intervals, requests, self.tz, self.clock(), unread)
        explicit_lang = request.query_params.get("lang")

        def day_url(d: date) -> str:
            return self._url(request, "/staff/appointments", date=d.isoformat(), lang=explicit_lang, clinic=clinic)

        page = self._page(
            request,
            "appointments.html",
            lang,
            other_url=self._url(request, "/staff/appointments", date=day.isoformat(), clinic=clinic),
            view=view,
            clinics=self._clinic_links(request, lang, clinic, "/staff/appointments", date=day.isoformat()),
            chosen_clinic=clinic,
            day_url=day_url,
            day_label=lambda d: format_day(d, lang),
            form_action=self._url(request, "/staff/appointments"),
            lang_param=explicit_lang if explicit_lang in STRINGS else None,
            staff_url=self._url(request, "/staff", lang=explicit_lang, clinic=clinic),
            many_portals=len(self.settings.portals) > 1,
            printed=format_time(self.clock(), self.settings.timezone),
            times=forms.TIMES,
        )
        return self._keep_session(request, page)

    # -- the console: overview and decisions (failover.web.console) ----------------------------

    async def staff_overview(self, request: Request) -> Response:
        """Every portal's state in words; refreshes itself (meta refresh: no script needed)."""
        await self._staff_login(request)
        lang = self._lang(request)
        now = self.clock()
        views = await console.overview(self.settings, self.store, now, lang)
        explicit = request.query_params.get("lang")
        done = request.query_params.get("done")
        return self._page(
            request,
            "overview.html",
            lang,
            portals=views,
            printed=format_time(now, self.settings.timezone),
            when=lambda ts: format_time(ts, self.settings.timezone),
            span=lambda seconds: console.span(seconds, lang),
            refresh=OVERVIEW_REFRESH,
            done=done if done in console.KINDS else None,
            decide_url=lambda pid: self._url(request, f"/staff/decide/{pid}", lang=explicit),
            staff_url=self._url(request, "/staff", lang=explicit),
            history_url=self._url(request, "/staff/history", lang=explicit),
            grouped=self._grouped(),
        )

    async def staff_history(self, request: Request) -> Response:
        """The audit log in words, by portal, kind and period (``?portal=&kind=&since=24h|7d|30d``)."""
        await self._staff_login(request)
        lang = self._lang(request)
        q = request.query_params
        portal = q.get("portal") if q.get("portal") in self.settings.portals else None
        kind = q.get("kind") if q.get("kind") in EVENT_KINDS else None
        since = q.get("since") if q.get("since") in history.PERIODS else "24h"
        rows = await self.store.events(None, since=self.clock() - history.PERIODS[since], kinds=(kind,) if kind else ())
        rows = [e for e in rows if portal is None or e.portal in (portal, None)][-HISTORY_LIMIT:][::-1]
        when = self._when
        explicit = q.get("lang")

        def url(**change: str | None) -> str:
            params = {"portal": portal, "kind": kind, "since": since, "lang": explicit} | change
            return self._url(request, "/staff/history", **params)

        return self._page(
            request,
            "history.html",
            lang,
            lines=[
                (when(e.ts), self.settings.portal_name(e.portal) if e.portal else "—", history.line(e, lang, when))
                for e in rows
            ],
            portals={pid: self.settings.portal_name(pid) for pid in self.settings.portals},
            kinds=EVENT_KINDS,
            kind_names={k: STRINGS[lang].get(f"kind_{k}", k) for k in EVENT_KINDS},
            periods=list(history.PERIODS),
            chosen={"portal": portal, "kind": kind, "since": since},
            url=url,
            limit=HISTORY_LIMIT,
            incident_url=lambda pid: self._url(request, f"/staff/incident/{pid}", lang=explicit),
            overview_url=self._url(request, "/staff/overview", lang=explicit),
        )

    async def staff_incident(self, request: Request) -> Response:
        """An outage's report (the last one, or ``?n=INCIDENT``), as a page or ``?format=md``."""
        await self._staff_login(request)
        pid = self._known_portal(request)
        number = request.query_params.get("n", "")
        chosen = int(number) if number.isdigit() else None
        text = await asyncio.to_thread(incident_report, self.store.sync, pid, self._when, chosen)
        if request.query_params.get("format") == "md":
            name = f"incident-{pid}-{chosen or 'last'}.md"
            headers = {"content-disposition": f'attachment; filename="{name}"'}
            return Response(text, media_type="text/markdown; charset=utf-8", headers=headers)
        episodes = await asyncio.to_thread(incidents, self.store.sync, pid)
        explicit = request.query_params.get("lang")
        return self._page(
            request,
            "incident.html",
            self._lang(request),
            name=self.settings.portal_name(pid),
            report=text,
            episodes=[(n, self._when(on), self._when(off) if off else None) for n, on, off in episodes],
            chosen=chosen,
            episode_url=lambda n: self._url(request, f"/staff/incident/{pid}", n=str(n), lang=explicit),
            download_url=self._url(request, f"/staff/incident/{pid}", n=str(chosen) if chosen else None, format="md"),
            history_url=self._url(request, "/staff/history", portal=pid, lang=explicit),
        )

    def _when(self, ts: float | None) -> str:
        return format_time(ts, self.settings.timezone)

    async def staff_decide_form(self, request: Request) -> Response:
        staff = await self._staff_login(request)
        pid = self._known_portal(request)
        return await self._decide_page(request, pid, {}, {}, can_decide=staff.operator)

    async def staff_decide(self, request: Request) -> Response:
        """First POST: what will happen, asked again; the second (``confirm=yes``) decides (operators only)."""
        staff = await self._staff_login(request)
        self._require_operator(staff)
        pid = self._known_portal(request)
        fields = await self._read_form(request)
        if not self.csrf.valid(self.csrf.cookie_of(request.cookies), fields.get(CSRF_FIELD, "")):
            raise Rejected(403, "csrf_expired")
        decision = console.read_decision(pid, fields, self.clock(), self.settings.timezone)
        if isinstance(decision, console.Invalid):
            return await self._decide_page(request, pid, fields, decision.errors, status=422)
        lang = self._lang_of(fields)
        if decision.kind == "drill" and (problem := await self._no_drill(pid)) is not None:
            return await self._decide_page(request, pid, fields, {"kind": problem}, status=409)
        if fields.get("confirm") != "yes":
            lines = console.consequences(self.settings, decision, lang)
            return self._with_csrf(
                request,
                lambda csrf: self._page(
                    request,
                    "confirm.html",
                    lang,
                    other_url=None,
                    csrf=csrf,
                    decision=decision,
                    fields={k: v for k, v in fields.items() if k not in (CSRF_FIELD, "confirm")},
                    lines=lines,
                    name=self.settings.portal_name(pid),
                    when=lambda ts: format_time(ts, self.settings.timezone),
                    span=lambda seconds: console.span(seconds, lang),
                    action=self._url(request, f"/staff/decide/{pid}"),
                    back=self._url(request, f"/staff/decide/{pid}", lang=fields.get("lang")),
                ),
            )
        if decision.kind == "drill":
            return await self._run_drill(request, pid, lang, _actor(staff))
        await console.apply(self.store, decision, self.clock(), _actor(staff))
        where = self._url(request, "/staff/overview", lang=fields.get("lang") or None, done=decision.kind)
        return Response(status_code=303, headers={"location": where})

    async def _decide_page(
        self,
        request: Request,
        pid: str,
        fields: Mapping[str, str],
        errors: Mapping[str, str],
        status: int = 200,
        can_decide: bool = True,  # a viewer sees the state and the windows, never a form it may not send
    ) -> Response:
        lang = self._lang_of(fields) if fields else self._lang(request)
        now = self.clock()
        windows = [w for w in await self.store.maintenance(pid) if w.end > now]
        (view,) = [v for v in await console.overview(self.settings, self.store, now, lang) if v.portal == pid]
        return self._with_csrf(
            request,
            lambda csrf: self._page(
                request,
                "decide.html",
                lang,
                status=status,
                other_url=self._url(request, f"/staff/decide/{pid}"),
                csrf=csrf,
                portal=view,
                windows=windows,
                values=fields,
                errors=errors,
                modes=MAINTENANCE_MODES,
                when=lambda ts: format_time(ts, self.settings.timezone),
                span=lambda seconds: console.span(seconds, lang),
                action=self._url(request, f"/staff/decide/{pid}"),
                overview_url=self._url(request, "/staff/overview", lang=request.query_params.get("lang")),
                on_default=format_duration(console.ON_DEFAULT),
                can_drill=self.drill is not None,
                can_decide=can_decide,
                now_local=datetime.fromtimestamp(now, self.tz).strftime("%Y-%m-%dT%H:%M"),
            ),
        )

    async def _no_drill(self, pid: str) -> str | None:
        """Why a drill cannot run from here now (an i18n key), or None."""
        if self.drill is None:
            return "drill_unavailable"
        if (await self.store.portal(pid)).failover:
            return "drill_in_failover"  # [訓練] messages in a real outage only confuse staff
        if not self.leading():
            return "drill_not_leader"  # a follower sends no staff message, [訓練] ones neither
        return None

    async def _run_drill(self, request: Request, pid: str, lang: str, by: str) -> Response:
        assert self.drill is not None
        results = await self.drill(pid)
        ok = all(r["ok"] for r in results)
        now = self.clock()
        await self.store.add_event("drill", pid, ok=ok, results=for_the_log(results), by=by)
        await self.store.set_value(f"drill:{pid}", next_record(await self.store.value(f"drill:{pid}"), ok, now))
        return self._page(
            request,
            "drill.html",
            lang,
            other_url=None,
            name=self.settings.portal_name(pid),
            ok=ok,
            results=results,
            overview_url=self._url(request, "/staff/overview", lang=lang),
        )

    def _known_portal(self, request: Request) -> str:
        pid = request.path_params["portal"]
        if pid not in self.settings.portals:
            raise Rejected(404, "e404")
        return str(pid)

    def _lang_of(self, fields: Mapping[str, str]) -> str:
        lang = fields.get("lang")
        return lang if lang in STRINGS else "ja"

    async def staff_report(self, request: Request) -> Response:
        """The availability report of one month (default this one): the page, or ``format=md|csv`` to download."""
        await self._staff_login(request)
        lang = self._lang(request)
        now = self.clock()
        asked = request.query_params.get("month") or this_month(now, self.tz)
        fmt = request.query_params.get("format") or "html"
        if fmt not in ("html", "md", "csv"):
            raise Rejected(400, "e400")
        try:
            period, bad = month(asked, self.tz), False
        except PeriodError:
            if fmt != "html":
                raise Rejected(400, "e400") from None
            asked, bad = this_month(now, self.tz), True
            period = month(asked, self.tz)
        portals = list(self.settings.portals)
        found = await self.store.on_reader(lambda store: reports(self.settings, store, portals, period, now))
        view = View(self.tz, names={pid: self.settings.portal_name(pid) for pid in portals})
        if fmt != "html":
            return download(found, period, view, lang, fmt)
        explicit_lang = request.query_params.get("lang")

        def month_url(m: str, download: str | None = None) -> str:
            return self._url(request, "/staff/report", month=m, format=download, lang=explicit_lang)

        return self._page(
            request,
            "report.html",
            lang,
            400 if bad else 200,
            other_url=self._url(request, "/staff/report", month=asked),
            period=period,
            reports=found,
            view=view,
            labels=REPORT_TEXT[lang],
            percent=percent,
            duration=format_duration,
            bad_month=bad,
            month=asked,
            previous=shift(asked, -1),
            next=shift(asked, 1),
            month_url=month_url,
            form_action=self._url(request, "/staff/report"),
            lang_param=explicit_lang if explicit_lang in STRINGS else None,
            staff_url=self._url(request, "/staff", lang=explicit_lang),
            minutes=lambda seconds: round(seconds / 60, 1),
        )

    async def staff_status(self, request: Request) -> Response:
        """A decision: operators only, recorded in the audit log with who made it."""
        staff = await self._staff_login(request)
        fields = await self._read_form(request)
        if not self.csrf.valid(self.csrf.cookie_of(request.cookies), fields.get(CSRF_FIELD, "")):
            raise Rejected(403, "csrf_expired")
        self._require_operator(staff)
        status = fields.get("status", "")
        if status not in REQUEST_STATUSES:
            raise Rejected(422, "e400")
        number = request.path_params["request_id"]
        if number > MAX_REQUEST_ID or not await self.store.set_request_status(number, status):
            raise Rejected(404, "e404")
        # The request's number and new status only: nothing the patient wrote.
        await self.store.add_event("staff_decision", None, op="request_status", id=number, status=status, by=staff.name)
        lang = fields.get("lang") if fields.get("lang") in STRINGS else None
        back = fields.get("back") if fields.get("back") in REQUEST_STATUSES else None
        clinic = fields.get("back_clinic") if fields.get("back_clinic") in self.settings.clinics else None
        where = self._url(request, "/staff", lang=lang, status=back, clinic=clinic)
        return self._keep_session(request, Response(status_code=303, headers={"location": where}))

    @staticmethod
    def _require_operator(staff: Staff) -> None:
        if not staff.operator:
            raise Rejected(403, "staff_viewer_only")

    # -- the staff login: a form, a signed session cookie, logout ----------------------------------

    async def staff_login_page(self, request: Request) -> Response:
        if not await self.logins.enabled():
            raise Rejected(404, "staff_disabled")
        next_url = self._next_url(request, request.query_params.get("next"))
        if await self._session_staff(request) is not None:
            return Response(status_code=303, headers={"location": next_url})
        return self._login_form(request, next_url)

    async def staff_login_post(self, request: Request) -> Response:
        if not await self.logins.enabled():
            raise Rejected(404, "staff_disabled")
        fields = await self._read_form(request)
        if not self.csrf.valid(self.csrf.cookie_of(request.cookies), fields.get(CSRF_FIELD, "")):
            raise Rejected(403, "csrf_expired")
        next_url = self._next_url(request, fields.get("next"))
        name = fields.get("username", "").strip()[:64]
        client = client_bucket(_client(request), self.settings.booking.ipv6_prefix)
        if self.staff_failures.exhausted(client):  # per client: guessing many names from one address
            raise Rejected(429, "e429", {"retry-after": "60"})
        attempt = await self.logins.log_in(name, fields.get("password", ""))
        if attempt.wait > 0:  # per account: this name waits, whatever the address
            await self._audit_login("login_refused", name, throttled=True)
            seconds = math.ceil(attempt.wait)
            message = self.translators[self._lang(request)]("login_wait", seconds=seconds)
            return self._login_form(request, next_url, name, message, 429, {"retry-after": str(seconds)})
        if attempt.staff is None:
            await self._audit_login("login_refused", name)
            self.staff_failures.allow(client)
            message = self.translators[self._lang(request)]("login_failed")
            return self._login_form(request, next_url, name, message, 401)
        log.info("staff login: %s (%s)", attempt.staff.name, attempt.staff.role)
        await self._audit_login("login", attempt.staff.name)
        now = self.clock()
        session = sessions.Session(attempt.staff.name, attempt.staff.role, now, now)
        response = Response(status_code=303, headers={"location": next_url})
        response.headers.append("set-cookie", self._session_cookie(request, session))
        return response

    async def staff_logout(self, request: Request) -> Response:
        fields = await self._read_form(request)
        if not self.csrf.valid(self.csrf.cookie_of(request.cookies), fields.get(CSRF_FIELD, "")):
            raise Rejected(403, "csrf_expired")
        staff = await self._session_staff(request)
        if staff is not None:
            await self._audit_login("logout", staff.name)
        response = Response(status_code=303, headers={"location": self._url(request, "/staff/login")})
        response.headers.append("set-cookie", sessions.clear_header(self._secure(request)))
        return response

    async def _audit_login(self, op: str, name: str, *, throttled: bool = False) -> None:
        """Logins, refusals and logouts in the audit log: who, never the password. A refused name is
        written only if it is an account (what someone typed may be a password in the wrong field)."""
        account = name if op != "login_refused" or await self.logins.current(name) is not None else None
        detail: dict[str, object] = {"op": op, "account": account, "via": "web"}
        if throttled:
            detail["throttled"] = True
        try:
            await self.store.add_event("staff_session", None, **detail)
        except Exception as err:  # the audit line is lost, the login itself is not refused for it
            log.error("staff %s not written to the audit log: %s", op, type(err).__name__)

    def _login_form(
        self,
        request: Request,
        next_url: str,
        name: str = "",
        message: str | None = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        lang = self._lang(request)

        def render(csrf: str) -> Response:
            page = self._page(
                request,
                "login.html",
                lang,
                status=status,
                other_url=self._url(request, "/staff/login", next=next_url),
                form_action=self._url(request, "/staff/login", lang=request.query_params.get("lang")),
                csrf=csrf,
                next_url=next_url,
                name=name,
                message=message,
            )
            page.headers.update(dict(headers or {}))
            return page

        return self._with_csrf(request, render)

    def _next_url(self, request: Request, value: str | None) -> str:
        """Where to go after the login: a path of ours only (never another site: no open redirect)."""
        root = request.scope.get("root_path", "")
        ours = value and value.startswith(f"{root}/staff") and not value.startswith("//") and "\\" not in value
        return value if ours and value else self._url(request, "/staff")

    def _secure(self, request: Request) -> bool:
        public = self.settings.server.public_url
        return request.url.scheme == "https" or (public is not None and str(public).startswith("https:"))

    def _session_cookie(self, request: Request, session: sessions.Session) -> str:
        value = sessions.encode(self.key, session)
        return sessions.cookie_header(value, self._secure(request), self.settings.staff.session_idle)

    async def _session_staff(self, request: Request) -> Staff | None:
        """The staff member of a valid session cookie (its account still there), refreshed on use."""
        now = self.clock()
        cookie = request.cookies.get(sessions.SESSION_COOKIE)
        session = sessions.decode(self.key, cookie, now, self.settings.staff.session_idle)
        if session is None:
            return None
        staff = await self.logins.current(session.account)
        if staff is None:
            return None
        request.state.staff_session = sessions.Session(staff.name, staff.role, session.issued, now)
        return staff

    def _keep_session(self, request: Request, response: Response) -> Response:
        """Refresh the session's last-seen time in its cookie (the idle timeout counts from here)."""
        session = getattr(request.state, "staff_session", None)
        if session is not None:
            response.headers.append("set-cookie", self._session_cookie(request, session))
        return response

    async def _staff_login(self, request: Request) -> Staff:
        """Who is asking: a session from the login form, or ``Authorization`` (scripts, as before).

        A browser with neither is sent to the login form; a script gets 401 with the challenge."""
        auth = self.settings.staff
        if not await self.logins.enabled():
            raise Rejected(404, "staff_disabled")  # disabled, never open
        header = request.headers.get("authorization")
        if header is None:
            staff = await self._session_staff(request)
            if staff is not None:
                return staff
            if request.method == "GET" and (auth.username is not None or auth.token is None):
                path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                login = self._url(request, "/staff/login", next=f"{request.scope.get('root_path', '')}{path}")
                raise Rejected(303, "staff_unauthorized", {"location": login})
        await self._header_login(request, header)
        scheme = (header or "").partition(" ")[0].lower()
        if scheme == "basic":
            return Staff(auth.username or "", "operator")
        return Staff("token", auth.token_role)

    async def _header_login(self, request: Request, header: str | None) -> None:
        """The right credentials always get in; only failures are counted, and delayed.

        Past ``STAFF_FAILED_LOGINS_PER_MINUTE`` failures from one client (an IPv6 client: its /64),
        that client's checks run one at a time, each wrong one answered 429 only after
        ``LOCKED_OUT_DELAY``: guessing stays at that rate however many connections it opens, while
        staff behind the same address (the clinic's NAT) still get in with the right password.
        """
        auth = self.settings.staff
        client = client_bucket(_client(request), self.settings.booking.ipv6_prefix)
        if not self.staff_failures.exhausted(client):
            if staff_authorized(auth, header):
                return
            self.staff_failures.allow(client)
            raise Rejected(401, "staff_unauthorized", {"www-authenticate": staff_challenge(auth)})
        await self._locked_out_check(client, auth, header)

    async def _locked_out_check(self, client: str, auth: StaffAuth, header: str | None) -> None:
        queue = self._lockout_queues.setdefault(client, asyncio.Lock())
        if self._lockout_waiting.get(client, 0) >= LOCKED_OUT_QUEUE:
            raise Rejected(429, "e429", {"retry-after": "60"})  # a flood: not even checked
        self._lockout_waiting[client] = self._lockout_waiting.get(client, 0) + 1
        try:
            async with queue:
                if staff_authorized(auth, header):
                    return
                await self.sleep(LOCKED_OUT_DELAY)
        finally:
            self._lockout_waiting[client] -= 1
            if not self._lockout_waiting[client]:
                self._lockout_waiting.pop(client)
                self._lockout_queues.pop(client, None)
        raise Rejected(429, "e429", {"retry-after": "60"})

    # -- the rest -------------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        try:
            writable = await self.store.writable()
        except (StoreError, sqlite3.Error, OSError) as err:
            writable, error = False, describe_error(err)
        else:
            error = getattr(getattr(self.store, "health", None), "last_error", "") or "the write check failed"
        if writable:
            return PlainTextResponse("ok\n")
        damaged = getattr(getattr(self.store, "health", None), "damaged", None)
        if damaged is not None:
            return PlainTextResponse(
                f"store damaged ({damaged}): failover goes on from memory; stop portalguard, restore the store "
                "file from the latest backup, start it again\n",
                status_code=503,
            )
        # Failover itself goes on from memory (ResilientStore); say so, and what to do.
        fix = (
            "check that the database server runs and accepts this instance (address, password, free space)"
            if is_database_url(self.settings.store)
            else "free disk space on the store's filesystem or fix its permissions"
        )
        return PlainTextResponse(
            f"store not writable ({error}): failover goes on from memory; {fix}\n", status_code=503
        )

    async def metrics_page(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    async def static(self, request: Request) -> Response:
        asset = self.assets.get(request.path_params["name"])
        if asset is None:
            raise Rejected(404, "e404")
        # The URL carries ?v=<content hash>, so browsers may keep a file for a day without asking.
        headers = {"etag": asset.etag, "cache-control": "public, max-age=86400"}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    # -- errors ---------------------------------------------------------------------------------

    def _portal_is_back(self, request: Request, pid: str, lang: str) -> Response:
        """The portal's link and the phone, no form: booking requests are taken only in failover."""
        portal_url = location_header(self.settings.portals[pid].book_url)
        return self._page(
            request, "error.html", lang, status=403, message="portal_back", portal_url=portal_url, back_url=None
        )

    async def rejected(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Rejected)
        return self.error_response(request, exc.status, exc.message, exc.headers)

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = {404: "e404", 405: "e405"}.get(exc.status_code, "e400")
        return self.error_response(request, exc.status_code, message, exc.headers or {})

    def error_response(
        self, request: Request, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        lang = self._lang(request)
        back = self._back_url(request, lang) if status in (400, 403, 413, 415, 429) else None
        response = self._page(
            request, "error.html", lang, status=status, message=message, back_url=back, other_url=back
        )
        response.headers.update(dict(headers or {}))
        return response

    # -- helpers --------------------------------------------------------------------------------

    def _portal_id(self, request: Request) -> str:
        pid = request.path_params["portal"]
        if pid not in self.settings.portals:
            raise Rejected(404, "e404")
        return pid

    def _lang(self, request: Request) -> str:
        return choose_lang(request.query_params.get("lang"), request.headers.get("accept-language"))

    def _today(self) -> date:
        return datetime.fromtimestamp(self.clock(), self.tz).date()

    def _url(self, request: Request, path: str, **query: str | None) -> str:
        """A path under our root (a proxy may mount us below /), with the non-empty query values."""
        params = {k: v for k, v in query.items() if v}
        root = request.scope.get("root_path", "")
        return f"{root}{path}" + (f"?{urlencode(params)}" if params else "")

    def _back_url(self, request: Request, lang: str) -> str | None:
        pid = request.path_params.get("portal")
        return self._url(request, f"/book/{pid}", lang=lang) if pid in self.settings.portals else None

    async def _read_form(self, request: Request) -> dict[str, str]:
        """The url-encoded body, at most ``booking.max_body_bytes``: 415/413/400 otherwise."""
        mime, params = _media_type(request.headers.get("content-type", ""))
        # Other parameters (a proxy or client may add some) are harmless; another charset is not.
        if mime != FORM_CONTENT_TYPE or params.get("charset", "utf-8") not in ("utf-8", "utf8"):
            raise Rejected(415, "e415")
        limit = self.settings.booking.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise Rejected(413, "e413")
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise Rejected(413, "e413")
        except ClientDisconnect:
            # The patient's phone lost the connection mid-post: their doing, not a server error.
            # Counted as 499 (nginx's "client closed request"); nobody is there to read the answer.
            raise Rejected(CLIENT_CLOSED, "e400") from None
        try:
            pairs = parse_qsl(
                body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FORM_FIELDS
            )
        except (UnicodeDecodeError, ValueError):
            raise Rejected(400, "e400") from None
        fields: dict[str, str] = {}
        for name, value in pairs:
            fields.setdefault(name, value)  # a repeated field: the first one counts
        return fields

    def _form(
        self,
        request: Request,
        pid: str,
        lang: str,
        values: dict[str, str] | None = None,
        errors: dict[str, forms.FieldError] | None = None,
        status: int = 200,
        *,
        banner: str | None = None,
        preview: str | None = None,
    ) -> Response:
        """The booking form; ``values=None`` is the blank form every patient gets first."""
        date_min, date_max = forms.date_bounds(self._today())

        def render(csrf: str) -> str:
            return self._render(
                request,
                "book.html",
                lang,
                other_url=self._url(request, f"/book/{pid}", preview=preview),
                form_action=self._url(request, f"/book/{pid}/request"),
                csrf=csrf,
                values=values or forms.blank_values(),
                errors=errors or {},
                banner=banner,
                drill=preview is not None,
                preview=preview,
                choices=range(1, forms.MAX_CHOICES + 1),
                times=forms.TIMES,
                visits=forms.VISITS,
                date_min=date_min,
                date_max=date_max,
                max_name=forms.MAX_NAME,
                max_reason=forms.MAX_REASON,
            )

        if values is not None:
            return self._with_csrf(request, lambda csrf: HTMLResponse(render(csrf), status_code=status), form=True)
        # Rendering is most of a request's CPU, and the blank form differs between patients only in
        # the CSRF token: render it once per portal, language and day, then fill the token in.
        key = (pid, lang, preview, date_min, request.scope.get("root_path", ""))
        html = self._blank_forms.get(key)
        if html is None:
            if len(self._blank_forms) >= BLANK_FORMS_KEPT:
                self._blank_forms.clear()  # mostly days gone by
            html = self._blank_forms[key] = render(CSRF_SLOT)
        return self._with_csrf(request, lambda csrf: HTMLResponse(html.replace(CSRF_SLOT, csrf, 1)), form=True)

    def _done(self, request: Request, pid: str, lang: str, number: int | None, drill: bool) -> Response:
        back = self._url(request, f"/book/{pid}", lang=lang)
        return self._page(request, "done.html", lang, number=number, drill=drill, back_url=back)

    def _with_csrf(self, request: Request, render: Callable[[str], Response], *, form: bool = False) -> Response:
        """Render a page with a form: reuse the browser's CSRF cookie, or set a new one. ``form``:
        the booking form, whose token is good for one request."""
        cookie = self.csrf.cookie_of(request.cookies)
        fresh = cookie is None
        cookie = cookie or self.csrf.new_cookie()
        response = render(self.csrf.form_token(cookie) if form else self.csrf.token(cookie))
        if fresh:
            response.headers.append("set-cookie", csrf_cookie_header(cookie, request.url.scheme == "https"))
        return response

    def _clinic(self, request: Request) -> Clinic:
        """The clinic a page speaks for: its portal's (``/book/{portal}``...), else the instance's."""
        pid = request.path_params.get("portal")
        return self.settings.clinic_of(pid) if pid in self.settings.portals else self.settings.home()

    def _page(
        self, request: Request, template: str, lang: str, status: int = 200, other_url: str | None = None, **ctx: Any
    ) -> HTMLResponse:
        return HTMLResponse(self._render(request, template, lang, other_url, **ctx), status_code=status)

    def _render(self, request: Request, template: str, lang: str, other_url: str | None = None, **ctx: Any) -> str:
        """Render a page; ``other_url`` is where the language switch leads (default: this GET page)."""
        t = self.translators[lang]
        clinic = self._clinic(request)
        if other_url is None and request.method in ("GET", "HEAD"):
            other_url = self._url(request, request.url.path)
        switch = None
        if other_url is not None:
            switch = f"{other_url}{'&' if '?' in other_url else '?'}lang={t('other_lang')}"
        values: dict[str, Any] = {
            "t": t,
            "lang": lang,
            "clinic": clinic,
            "clinic_name": clinic.text("name", lang),
            "clinic_hours": clinic.text("hours", lang),
            "clinic_address": clinic.text("address", lang),
            "tel_href": tel_href(clinic.phone),
            "asset": lambda name: self._url(request, f"/static/{name}", v=self.asset_version),
            "other_lang_url": switch,
        }
        return self.templates[template].render(**(values | ctx))  # a page may speak for the group


# -- middleware -----------------------------------------------------------------------------------


class _MetricsMiddleware:
    """Counts every response by route *template* (``/book/{portal}``, never the raw path) and code."""

    def __init__(self, app: ASGIApp, metrics: FailoverMetrics) -> None:
        self.app = app
        self.counter = metrics.http_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.counter.labels(route, str(status)).inc()


class _ErrorPageMiddleware:
    """An unexpected error still shows the patient a page with the clinic's phone number (500).

    Logs the error type and stack, never the exception's message: it may quote what a patient typed.
    """

    def __init__(self, app: ASGIApp, render: Callable[..., Response]) -> None:
        self.app = app
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as err:
            stack = "".join(traceback.format_tb(err.__traceback__))
            route = getattr(scope.get("route"), "path", UNMATCHED)
            log.error("unexpected %s on %s\n%s", type(err).__name__, route, stack)
            if not started:
                await self._error_page(scope)(scope, receive, send)

    def _error_page(self, scope: Scope) -> Response:
        try:
            return self.render(Request(scope), 500, "e500")
        except Exception as err:  # the page itself failed: plain words are better than nothing
            log.error("error page failed: %s", type(err).__name__)
            return PlainTextResponse("Internal Server Error", status_code=500)


# -- loading --------------------------------------------------------------------------------------

_MEDIA_TYPES = {".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}


def _load_assets(directory: Path) -> dict[str, Asset]:
    # Read once at start: a handful of small files, served from memory with no disk I/O per request.
    out = {}
    for path in sorted(directory.iterdir()):
        if path.suffix in _MEDIA_TYPES:
            body = path.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            out[path.name] = Asset(body, _MEDIA_TYPES[path.suffix], etag)
    return out


def _media_type(header: str) -> tuple[str, dict[str, str]]:
    """``type/subtype`` and its parameters (names and values lower-cased, quotes removed) of a
    Content-Type header (RFC 9110 §8.3.1)."""
    mime, *parts = header.split(";")
    params: dict[str, str] = {}
    for part in parts:
        name, sep, value = part.partition("=")
        if sep:
            params.setdefault(name.strip().lower(), value.strip().strip('"').lower())
    return mime.strip().lower(), params


def _actor(staff: Staff) -> str:
    """Who decided on the console, for the audit log: the account (or "token"), marked as the web's."""
    return f"{staff.name or 'staff'} (web)"


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"
