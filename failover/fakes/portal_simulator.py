"""A booking portal on 127.0.0.1 for tests, the demo and benchmarks.

A real HTTP/1.1 server (asyncio streams, no framework: thousands of connections per second) with
two endpoints on their own ports, so each can fail alone:

- ``public``: the booking page patients see (clinic name, booking form), on any path;
- ``admin``: a staff login (form with a hidden CSRF token, session cookie) leading to a
  dashboard with "ログアウト"; behind the login, the reservation book (``sim.book``,
  ``failover.fakes.reservations``) as the appointment mirror reads it: the list of one day
  (``/admin/reservations?date=YYYY-MM-DD[&page=N]``, paginated with 次へ), the CSV export
  (``/admin/reservations.csv?from=…&to=…``, CP932) and an iCalendar feed (``/admin/calendar.ics``,
  HTTP Basic when the simulator is given ``ics_credentials``; no login session).

Each endpoint's behaviour is switched at run time (``set_mode`` or ``POST /_sim/mode`` on the
control port, which never fails) between ``MODES``; each reservation source (``html``, ``csv``,
``ics``) on its own between ``SOURCE_MODES`` (``set_reservations_mode``, ``POST /_sim/reservations/mode``).
``mirror_config(type)`` is a ready ``mirror:`` section for each source type.

In process::

    async with PortalSimulator() as sim:
        sim.url("public"); sim.url("admin")
        sim.set_mode("error500", endpoints=("public",))
        sim.book.seed(days=14, per_day=80, seed=1); sim.book.add("2026-12-02T10:00", "山田 太郎")
        sim.set_reservations_mode("layout_changed", sources=("html",))
        sim.mirror_config("admin_html")

As a process: ``python -m failover.fakes.portal_simulator --port 8081`` prints one JSON line with
its URLs once it listens, then serves until SIGTERM/SIGINT::

    curl -X POST http://127.0.0.1:CONTROL/_sim/mode -d '{"mode": "hang", "endpoints": ["public"]}'
    curl -X POST http://127.0.0.1:CONTROL/_sim/appointments -d '{"start": "2026-12-02T10:00", "name": "山田 太郎"}'
    curl -X POST http://127.0.0.1:CONTROL/_sim/appointments/R0000001 -d '{"name": "山田 花子"}'
    curl -X POST http://127.0.0.1:CONTROL/_sim/appointments/R0000001/cancel
    curl -X DELETE http://127.0.0.1:CONTROL/_sim/appointments/R0000001
    curl -X POST http://127.0.0.1:CONTROL/_sim/appointments/seed -d '{"days": 14, "per_day": 80, "seed": 1}'
    curl -X POST http://127.0.0.1:CONTROL/_sim/reservations/mode -d '{"mode": "error500", "sources": ["csv"]}'
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import html
import ipaddress
import json
import secrets
import signal
import socket
import ssl
import tempfile
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qsl

from failover.fakes import reservations
from failover.fakes.booking_mail import SENDER as MAIL_SENDER
from failover.fakes.booking_mail import TEMPLATES as MAIL_TEMPLATES
from failover.fakes.booking_mail import MaildirOutbox
from failover.fakes.reservations import SOURCE_MODES, SOURCES, ReservationBook
from failover.fakes.selfsigned import self_signed

MODES = (
    "healthy",
    "error500",  # every request answers 500
    "hang",  # requests are read and never answered (until the client gives up)
    "refuse",  # the listening socket is closed: connections are refused
    "maintenance",  # 200 with a maintenance page ("メンテナンス中")
    "redirect",  # 302 to another host (http://error.invalid/)
    "login_rejected",  # the admin login always fails
    "slow",  # answers after ``delay`` seconds
    "trickle",  # sends the headers at once, then the body one byte per ``delay / 100`` s
)
ENDPOINTS = ("public", "admin")
PUBLIC_PATH = "/clinic/sakura"
CANARY_PATH = "/generate_204"  # 204 on the control port (always) and the public port (per mode)
LOGIN_PATH = "/admin/login"
DASHBOARD_PATH = "/admin/dashboard"
RESERVATIONS_PATH = "/admin/reservations"
CSV_PATH = "/admin/reservations.csv"
ICS_PATH = "/admin/calendar.ics"
_SOURCE_PATHS = {RESERVATIONS_PATH: "html", CSV_PATH: "csv", ICS_PATH: "ics"}
REDIRECT_TARGET = "http://error.invalid/"
SESSION_COOKIE = "sim_session"
AUTH_COOKIE = "sim_auth"
_MAX_HEAD = 64 * 1024
_MAX_BODY = 1024 * 1024
_MAX_SESSIONS = 10_000
_HANG_LIMIT = 600.0  # a hung request is dropped after this long, so nothing leaks forever


@dataclass(slots=True)
class _Endpoint:
    mode: str = "healthy"
    by_client: dict[str, str] = field(default_factory=dict)  # client IP -> its own mode (one vantage point)
    delay: float = 2.0
    requests: int = 0
    server: asyncio.Server | None = None
    port: int = 0


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    query: dict[str, str] = field(default_factory=dict)

    @property
    def cookies(self) -> dict[str, str]:
        pairs = (part.strip().partition("=") for part in self.headers.get("cookie", "").split(";"))
        return {name: value for name, _, value in pairs if name}

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    @property
    def keep_alive(self) -> bool:
        return self.headers.get("connection", "").lower() != "close"


@dataclass(slots=True)
class _Response:
    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    def head(self, keep_alive: bool) -> bytes:
        lines = [
            f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Status')}",
            f"Content-Type: {self.content_type}",
            *([] if self.status == 204 else [f"Content-Length: {len(self.body)}"]),
            f"Connection: {'keep-alive' if keep_alive else 'close'}",
            *(f"{name}: {value}" for name, value in self.headers),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
_REASONS = {200: "OK", 204: "No Content", 302: "Found", 303: "See Other", 400: "Bad Request", 404: "Not Found"}
_REASONS |= {401: "Unauthorized"}
_REASONS |= {405: "Method Not Allowed", 413: "Payload Too Large", 500: "Internal Server Error"}


class PortalSimulator:
    """The simulated portal. Start it with ``async with`` (or ``start()``/``stop()``)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        port: int = 0,
        admin_port: int = 0,
        control_port: int = 0,
        tls: bool = False,
        tls_days: int = 30,
        clinic_name: str = "さくら歯科",
        username: str = "staff",
        password: str = "sakura-pass",
        delay: float = 2.0,
        page_size: int = 20,
        ics_credentials: tuple[str, str] | None = None,
        ics_utc: bool = False,
        csv_encoding: str = "cp932",
    ) -> None:
        self.host = host
        self.book = ReservationBook()
        self.page_size = page_size
        self.ics_utc = ics_utc  # the feed's times in UTC (...Z) instead of TZID=Asia/Tokyo
        self.csv_encoding = csv_encoding  # cp932 as Japanese admin screens export; utf-8, utf-8-sig
        self._ics_credentials = ics_credentials
        self._source_modes = dict.fromkeys(SOURCES, "healthy")
        self.clinic_name = clinic_name
        self.username = username
        self._password = password
        self._endpoints = {name: _Endpoint(delay=delay) for name in ENDPOINTS}
        self._endpoints["public"].port = port
        self._endpoints["admin"].port = admin_port
        self._control_port = control_port
        self._control: asyncio.Server | None = None
        self._tls = _SelfSignedCert(host, tls_days) if tls else None
        self._sessions: OrderedDict[str, str] = OrderedDict()  # session id -> CSRF token
        self._logged_in: OrderedDict[str, None] = OrderedDict()  # auth tokens
        self._connections: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()  # set while no client connection is open
        self._idle.set()
        self._reopening: set[asyncio.Task[None]] = set()
        self.last_login_error: str | None = None  # why the last login failed: session, csrf, ...
        self._booking_page = _booking_page(clinic_name)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> PortalSimulator:
        for name in ENDPOINTS:
            await self._open(name, _listening_socket(self.host, self._endpoints[name].port))
        sock = _listening_socket(self.host, self._control_port)
        self._control = await asyncio.start_server(self._connection("control"), sock=sock, limit=_MAX_HEAD)
        self._control_port = sock.getsockname()[1]
        return self

    async def stop(self) -> None:
        for task in list(self._reopening):
            task.cancel()
        servers = [self._control, *(ep.server for ep in self._endpoints.values())]
        for server in servers:
            if server is not None:
                server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, *self._reopening, return_exceptions=True)
        for endpoint in self._endpoints.values():
            endpoint.server = None
        if self._tls is not None:
            self._tls.cleanup()

    async def __aenter__(self) -> PortalSimulator:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- the API tests and the demo use ------------------------------------------------------

    def url(self, endpoint: str = "public", path: str | None = None) -> str:
        """The URL of an endpoint's main page, or of ``path`` on that endpoint's port."""
        default = PUBLIC_PATH if endpoint == "public" else LOGIN_PATH
        return self.base_url(endpoint) + (path or default)

    def base_url(self, endpoint: str = "public") -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{_host_port(self.host, self._endpoints[endpoint].port)}"

    @property
    def control_url(self) -> str:
        """Base of the control API (always plain http): ``POST {control_url}/_sim/mode``."""
        return f"http://{_host_port(self.host, self._control_port)}"

    @property
    def credentials(self) -> tuple[str, str]:
        return self.username, self._password

    def endpoints_config(self) -> dict[str, object]:
        """The ``endpoints:`` of a portalguard portal watching this simulator (as parsed YAML):
        the public page with its texts, and the admin login with its credentials."""
        return {
            "public": {
                "url": self.url("public"),
                "expect": {"contains": [self.clinic_name], "not_contains": ["メンテナンス"]},
            },
            "admin": {
                "url": self.url("admin"),
                "login": {"username": self.username, "password": self._password, "success_contains": ["ログアウト"]},
            },
        }

    def set_mode(
        self,
        mode: str,
        endpoints: Iterable[str] = ENDPOINTS,
        *,
        delay: float | None = None,
        clients: Iterable[str] | None = None,
    ) -> None:
        """Switch endpoints to ``mode`` now; ``delay`` sets the ``slow``/``trickle`` pace. With
        ``clients`` (IP addresses, e.g. ``["127.0.0.2"]``) only connections from those addresses get
        ``mode`` (``healthy`` hands them back to the endpoint's mode): the portal failing for one
        vantage point only. ``refuse`` for a client closes its connections as they are accepted."""
        names = _check_mode(mode, endpoints, delay)
        chosen = _check_clients(clients)
        for name in names:
            endpoint = self._endpoints[name]
            if delay is not None:
                endpoint.delay = delay
            if chosen is None:
                endpoint.mode = mode
                endpoint.by_client.clear()
                self._sync_listener(name)
                continue
            for ip in chosen:
                if mode == "healthy":
                    endpoint.by_client.pop(ip, None)
                else:
                    endpoint.by_client[ip] = mode

    def mode(self, endpoint: str = "public", client: str | None = None) -> str:
        """The mode an endpoint serves (to ``client``, when given)."""
        found = self._endpoints[endpoint]
        return found.by_client.get(client, found.mode) if client is not None else found.mode

    def request_count(self, endpoint: str | None = None) -> int:
        """Requests received by one endpoint, or by both (control requests are not counted)."""
        names = ENDPOINTS if endpoint is None else (endpoint,)
        return sum(self._endpoints[name].requests for name in names)

    @property
    def open_connections(self) -> int:
        """Client connections currently open on any port."""
        return len(self._connections)

    async def wait_idle(self) -> None:
        """Return once no client connection is open (e.g. to check that clients closed theirs)."""
        await self._idle.wait()

    def reset(self) -> None:
        """Everything healthy again, counters at zero (the reservation book is kept)."""
        self.set_mode("healthy")
        self.set_reservations_mode("healthy")
        for endpoint in self._endpoints.values():
            endpoint.requests = 0
        self.last_login_error = None

    @property
    def cert_pem(self) -> bytes | None:
        """The self-signed certificate (PEM) when started with ``tls=True``."""
        return self._tls.cert_pem if self._tls is not None else None

    @property
    def cert_not_after(self) -> float | None:
        """Unix time the certificate expires when started with ``tls=True``."""
        return self._tls.not_after if self._tls is not None else None

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this simulator's certificate (and nothing else)."""
        if self._tls is None:
            raise RuntimeError("the simulator was started without tls=True")
        return ssl.create_default_context(cadata=self._tls.cert_pem.decode("ascii"))

    def describe(self) -> dict[str, object]:
        return {
            "public": self.url("public"),
            "admin": self.url("admin"),
            "public_base": self.base_url("public"),
            "admin_base": self.base_url("admin"),
            "control": self.control_url,
            "username": self.username,
            "cert_pem": self.cert_pem.decode("ascii") if self.cert_pem else None,
        }

    def state(self) -> dict[str, object]:
        return {
            "modes": {name: ep.mode for name, ep in self._endpoints.items()},
            "by_client": {name: dict(ep.by_client) for name, ep in self._endpoints.items() if ep.by_client},
            "delays": {name: ep.delay for name, ep in self._endpoints.items()},
            "requests": {name: ep.requests for name, ep in self._endpoints.items()},
            "reservations": {"modes": dict(self._source_modes), "appointments": len(self.book)},
        }

    # -- the reservation book as the mirror reads it -------------------------------------------

    def set_reservations_mode(self, mode: str, sources: Iterable[str] = SOURCES) -> None:
        """Switch reservation sources (``html``, ``csv``, ``ics``) to one of ``SOURCE_MODES``."""
        if mode not in SOURCE_MODES:
            raise ValueError(f"unknown reservations mode {mode!r} (modes: {', '.join(SOURCE_MODES)})")
        names = [sources] if isinstance(sources, str) else list(sources)
        if not names or any(name not in SOURCES for name in names):
            raise ValueError(f"sources must be among {', '.join(SOURCES)}")
        for name in names:
            self._source_modes[name] = mode

    def reservations_mode(self, source: str = "html") -> str:
        return self._source_modes[source]

    @property
    def ics_credentials(self) -> tuple[str, str] | None:
        return self._ics_credentials

    def send_mails(self, maildir: str, *, charset: str = "iso-2022-jp") -> MaildirOutbox:
        """From now on, each booking, change and cancellation of ``book`` is mailed into ``maildir``
        (a Maildir an IMAP server serves), as the portal mails the clinic."""
        outbox = MaildirOutbox(maildir, charset=charset)
        self.book.listeners.append(outbox)
        return outbox

    def mail_config(self, imap: str, **overrides: object) -> dict[str, object]:
        """A ``mirror.mail`` section that reads this simulator's booking mails from ``imap``."""
        return {"imap": imap, "from": [MAIL_SENDER], "templates": MAIL_TEMPLATES, **overrides}

    def mirror_config(self, source: str = "admin_html", **overrides: object) -> dict[str, object]:
        """A portal's ``mirror:`` section (as parsed YAML) reading this simulator with ``source``
        (``admin_html``, ``admin_csv`` or ``ics``); ``overrides`` replace keys of the section.
        The html and csv sources read through ``endpoints_config()["admin"]``'s login."""
        base = self.base_url("admin")
        specs: dict[str, dict[str, object]] = {
            "admin_html": {
                "type": "admin_html",
                "url": f"{base}{RESERVATIONS_PATH}?date={{date}}",
                "next": "a.next",
                "row": "table.list tbody tr",
                "fields": {
                    "id": "@data-reservation-id",
                    "date": "td.date",
                    "time": "td.time",
                    "name": "td.name",
                    "phone": "td.tel",
                    "menu": "td.menu",
                    "status": "td.status",
                },
                "cancelled_contains": [reservations.CANCELLED],
                "empty_contains": [reservations.EMPTY_TEXT],
            },
            "admin_csv": {
                "type": "admin_csv",
                "url": f"{base}{CSV_PATH}?from={{from}}&to={{to}}",
                "cancelled_contains": [reservations.CANCELLED],
            },
            "ics": {
                "type": "ics",
                "url": f"{base}{ICS_PATH}",
                "fields": {"name": "SUMMARY", "phone": "X-PHONE", "menu": "DESCRIPTION"},
            },
        }
        if source not in specs:
            raise ValueError(f"unknown source type {source!r} (use {', '.join(specs)})")
        spec = specs[source]
        if source == "ics" and self._ics_credentials is not None:
            spec |= {"username": self._ics_credentials[0], "password": self._ics_credentials[1]}
        return {"every": "10m", "days_ahead": 14, "retention": "7d", "source": spec, **overrides}

    # -- listeners ---------------------------------------------------------------------------

    async def _open(self, name: str, sock: socket.socket) -> None:
        endpoint = self._endpoints[name]
        endpoint.port = sock.getsockname()[1]
        context = self._tls.server_context() if self._tls is not None else None
        endpoint.server = await asyncio.start_server(
            self._connection(name), sock=sock, ssl=context, limit=_MAX_HEAD, backlog=1024
        )

    def _sync_listener(self, name: str) -> None:
        endpoint = self._endpoints[name]
        if endpoint.mode == "refuse" and endpoint.server is not None:
            endpoint.server.close()  # closes the listening socket at once
            endpoint.server = None
        elif endpoint.mode != "refuse" and endpoint.server is None and endpoint.port:
            # Bind now, synchronously: from here on connections queue in the kernel's backlog,
            # so callers need not await the reopening.
            sock = _listening_socket(self.host, endpoint.port)
            task = asyncio.get_running_loop().create_task(self._open(name, sock))
            self._reopening.add(task)
            task.add_done_callback(self._reopening.discard)

    def _connection(self, name: str) -> _StreamHandler:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._connections.add(task)
            self._idle.clear()
            try:
                await self._serve(name, reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ssl.SSLError):
                pass  # the client went away or spoke nonsense: nothing to answer
            except ValueError:
                with contextlib.suppress(ConnectionError):
                    writer.write(_Response(400, b"bad request").head(False) + b"bad request")
            finally:
                self._connections.discard(task)
                if not self._connections:
                    self._idle.set()
                writer.close()

        return serve

    async def _serve(self, name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if peer else ""
        if name != "control" and self.mode(name, client) == "refuse":
            return  # refused for this client only: closed as accepted, before a byte is read
        while True:
            request = await _read_request(reader)
            if request is None:
                return
            if name == "control":
                response = self._control_request(request)
            else:
                response = await self._portal_request(name, request, reader, writer, client)
                if response is None:
                    return  # hung up, or already written
            writer.write(response.head(request.keep_alive) + response.body)
            await writer.drain()
            if not request.keep_alive:
                return

    # -- the portal ----------------------------------------------------------------------------

    async def _portal_request(
        self,
        name: str,
        request: _Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client: str = "",
    ) -> _Response | None:
        endpoint = self._endpoints[name]
        endpoint.requests += 1
        mode = self.mode(name, client)
        if mode == "refuse":
            return None  # a kept-alive connection from before: drop it as a closing server would
        if mode == "hang":
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_HANG_LIMIT):
                    await reader.read()  # until the client gives up and closes
            return None
        if mode == "slow":
            await asyncio.sleep(endpoint.delay)
        canned = _canned(mode, self.clinic_name)
        if canned is None and name == "admin" and request.path in _SOURCE_PATHS:
            response = await self._reservations(_SOURCE_PATHS[request.path], request, endpoint.delay)
        else:
            response = canned or (self._public(request) if name == "public" else self._admin(request, mode))
        if mode == "trickle":
            await _trickle(writer, response, endpoint.delay / 100)
            return None
        return response

    def _public(self, request: _Request) -> _Response:
        if request.path == CANARY_PATH:
            return _Response(204)
        if request.method == "POST":
            body = f"<p>{html.escape(self.clinic_name)}</p><p>ご予約を受け付けました。</p>"
            return _Response(200, _page("受付完了", body))
        if request.method not in ("GET", "HEAD"):
            return _Response(405, b"")
        return _Response(200, self._booking_page)

    def _admin(self, request: _Request, mode: str) -> _Response:
        if request.path == DASHBOARD_PATH:
            if request.cookies.get(AUTH_COOKIE) in self._logged_in:
                return _Response(200, _dashboard_page(self.clinic_name))
            return _Response(303, headers=[("Location", LOGIN_PATH)])
        if request.method == "POST":
            return self._login(request, mode)
        return self._login_page(error=None)

    def _login_page(self, error: str | None) -> _Response:
        session, csrf = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        _remember(self._sessions, session, csrf)
        cookie = f"{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax"
        return _Response(200, _login_page(self.clinic_name, csrf, error), headers=[("Set-Cookie", cookie)])

    def _login(self, request: _Request, mode: str) -> _Response:
        form = request.form()
        session = request.cookies.get(SESSION_COOKIE)
        if session is None or session not in self._sessions:
            failure = "session"
        elif not secrets.compare_digest(self._sessions[session], form.get("csrf_token", "")):
            failure = "csrf"
        elif (form.get("username"), form.get("password")) != (self.username, self._password):
            failure = "credentials"
        elif mode == "login_rejected":
            failure = "rejected"
        else:
            failure = None
        self.last_login_error = failure
        if session is None or failure is not None:
            return self._login_page(error="IDまたはパスワードが正しくありません。")
        del self._sessions[session]  # one use per CSRF token
        token = secrets.token_urlsafe(16)
        _remember(self._logged_in, token, None)
        cookie = f"{AUTH_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax"
        return _Response(303, headers=[("Location", DASHBOARD_PATH), ("Set-Cookie", cookie)])

    # -- the reservation sources --------------------------------------------------------------

    async def _reservations(self, source: str, request: _Request, delay: float) -> _Response:
        mode = self._source_modes[source]
        if mode == "slow":
            await asyncio.sleep(delay)
        if source == "ics":
            if mode == "login_rejected" or not self._ics_authorised(request):
                return _Response(401, b"unauthorized", "text/plain", [("WWW-Authenticate", 'Basic realm="calendar"')])
        elif mode == "login_rejected" or request.cookies.get(AUTH_COOKIE) not in self._logged_in:
            return _Response(303, headers=[("Location", LOGIN_PATH)])
        canned = _canned(mode, self.clinic_name) if mode in ("error500", "maintenance", "redirect") else None
        if canned is not None:
            return canned
        try:
            if source == "html":
                return self._reservation_list(request, mode)
            if source == "csv":
                first, last = (
                    reservations.parse_day(request.query.get("from")),
                    reservations.parse_day(request.query.get("to")),
                )
                body = reservations.csv_export(self.book.between(first, last), mode, self.csv_encoding)
                return _Response(
                    200, body, "text/csv", [("Content-Disposition", 'attachment; filename="reservations.csv"')]
                )
        except ValueError:
            return _Response(400, _page("Bad Request", "<p>日付の指定が正しくありません。</p>"))
        body = reservations.ics_feed(self.book.all(), mode, utc=self.ics_utc)
        return _Response(200, body, "text/calendar; charset=utf-8")

    def _reservation_list(self, request: _Request, mode: str) -> _Response:
        day = reservations.parse_day(request.query.get("date"))
        page = int(request.query.get("page", "1"))
        if page < 1:
            raise ValueError("page")
        body = reservations.html_list(
            self.book.on(day),
            day,
            page,
            self.page_size,
            mode,
            RESERVATIONS_PATH,
            self.clinic_name,
            other_host=REDIRECT_TARGET.rstrip("/"),
        )
        return _Response(200, _page("予約一覧", body))

    def _ics_authorised(self, request: _Request) -> bool:
        if self._ics_credentials is None:
            return True
        expected = base64.b64encode(":".join(self._ics_credentials).encode()).decode("ascii")
        return secrets.compare_digest(request.headers.get("authorization", ""), f"Basic {expected}")

    # -- control -----------------------------------------------------------------------------

    def _control_request(self, request: _Request) -> _Response:
        try:
            if request.path == CANARY_PATH:
                return _Response(204)  # the control port never fails: an always-up canary
            if request.method == "GET" and request.path == "/_sim/state":
                pass
            elif request.method == "POST" and request.path == "/_sim/mode":
                spec = json.loads(request.body or b"{}")
                endpoints = spec.get("endpoints", ENDPOINTS)
                self.set_mode(spec.get("mode", ""), endpoints, delay=spec.get("delay"), clients=spec.get("clients"))
            elif request.method == "POST" and request.path == "/_sim/reset":
                self.reset()
            elif request.path == "/_sim/reservations/mode" and request.method == "POST":
                spec = json.loads(request.body or b"{}")
                self.set_reservations_mode(spec.get("mode", ""), spec.get("sources", SOURCES))
            elif request.path.startswith("/_sim/appointments"):
                return self._appointments_request(request)
            else:
                return _json(404, {"error": "use GET /_sim/state, POST /_sim/mode or POST /_sim/reset"})
        except (ValueError, TypeError, AttributeError) as exc:
            return _json(400, {"error": str(exc)})
        except KeyError as exc:
            return _json(404, {"error": str(exc.args[0]) if exc.args else "not found"})
        return _json(200, self.state())

    def _appointments_request(self, request: _Request) -> _Response:
        """``GET|POST /_sim/appointments``, ``POST /_sim/appointments/seed``,
        ``POST /_sim/appointments/ID`` (change), ``POST …/ID/cancel``, ``DELETE …/ID``."""
        parts = request.path.removeprefix("/_sim/appointments").strip("/").split("/")
        spec = json.loads(request.body or b"{}") if request.method == "POST" else {}
        if not isinstance(spec, dict):
            raise ValueError("the body must be a JSON object")
        if parts == [""] and request.method == "GET":
            return _json(200, [a.to_json() for a in self.book.all()])
        if parts == [""] and request.method == "POST":
            start, name = spec.pop("start"), spec.pop("name")
            return _json(200, self.book.add(start, name, **spec).to_json())
        if parts == ["seed"] and request.method == "POST":
            if "start" in spec:
                spec["start"] = dt.date.fromisoformat(spec["start"])
            made = self.book.seed(**spec)
            return _json(200, {"added": len(made), "appointments": len(self.book)})
        if len(parts) == 1 and request.method == "POST":
            return _json(200, self.book.change(parts[0], **spec).to_json())
        if len(parts) == 2 and parts[1] == "cancel" and request.method == "POST":
            return _json(200, self.book.cancel(parts[0]).to_json())
        if len(parts) == 1 and request.method == "DELETE":
            return _json(200, self.book.remove(parts[0]).to_json())
        return _json(404, {"error": "see the simulator's docstring for /_sim/appointments"})


# -- helpers ------------------------------------------------------------------------------------


def _check_mode(mode: str, endpoints: Iterable[str], delay: float | None) -> list[str]:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (modes: {', '.join(MODES)})")
    names = [endpoints] if isinstance(endpoints, str) else list(endpoints)
    unknown = [name for name in names if name not in ENDPOINTS]
    if unknown or not names:
        raise ValueError(f"endpoints must be among {', '.join(ENDPOINTS)}")
    if delay is not None and not (isinstance(delay, int | float) and delay >= 0):
        raise ValueError("delay must be a non-negative number of seconds")
    return names


def _check_clients(clients: Iterable[str] | None) -> list[str] | None:
    if clients is None:
        return None
    names = [clients] if isinstance(clients, str) else list(clients)
    for ip in names:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ValueError(f"clients must be IP addresses (got {ip!r})") from None
    return names


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    """The next request on a connection; None when the client closed it cleanly."""
    try:
        first = await reader.readexactly(1)
        if not first.isalpha():  # e.g. a TLS handshake on a plain port: answer 400 like nginx
            raise ValueError("not an HTTP request")
        head = first + await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise
        return None
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, _version = request_line.split(" ", 2)
    headers = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or "0")
    if not 0 <= length <= _MAX_BODY:
        raise ValueError("body too large")
    body = await reader.readexactly(length) if length else b""
    path, _, query = target.partition("?")
    return _Request(method.upper(), path, headers, body, dict(parse_qsl(query, keep_blank_values=True)))


def _canned(mode: str, clinic_name: str) -> _Response | None:
    """The answer a failure mode gives whatever was asked, None when the normal page applies."""
    if mode == "error500":
        return _Response(500, _page("Internal Server Error", "<p>500 Internal Server Error</p>"))
    if mode == "maintenance":
        body = f"<p>{html.escape(clinic_name)}</p><p>ただいまシステムメンテナンス中です。</p>"
        return _Response(200, _page("メンテナンス中", body))
    if mode == "redirect":
        return _Response(302, headers=[("Location", REDIRECT_TARGET)])
    return None


async def _trickle(writer: asyncio.StreamWriter, response: _Response, pause: float) -> None:
    writer.write(response.head(keep_alive=False))
    for index in range(len(response.body)):
        writer.write(response.body[index : index + 1])
        await writer.drain()
        await asyncio.sleep(pause)


def _json(status: int, payload: object) -> _Response:
    return _Response(status, json.dumps(payload, ensure_ascii=False).encode(), "application/json")


def _remember(store: OrderedDict[str, object], key: str, value: object) -> None:
    store[key] = value
    if len(store) > _MAX_SESSIONS:
        store.popitem(last=False)


def _page(title: str, body: str) -> bytes:
    return (
        f'<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"</head><body>{body}</body></html>"
    ).encode()


def _booking_page(clinic_name: str) -> bytes:
    name = html.escape(clinic_name)
    return _page(
        f"{name} | ネット予約",
        f"<h1>{name}</h1><p>ネット予約受付中</p>"
        f'<form action="{PUBLIC_PATH}/book" method="post">'
        '<label>日時 <input type="datetime-local" name="when"></label>'
        '<label>お名前 <input type="text" name="name"></label>'
        '<button type="submit">予約する</button></form>',
    )


def _login_page(clinic_name: str, csrf: str, error: str | None) -> bytes:
    message = f'<p class="error">{html.escape(error)}</p>' if error else ""
    return _page(
        "管理画面ログイン",
        f"<h1>{html.escape(clinic_name)} 管理画面</h1>{message}"
        '<form action="/search" method="get"><input type="text" name="q"></form>'
        f'<form action="{LOGIN_PATH}" method="post">'
        f'<input type="hidden" name="csrf_token" value="{csrf}">'
        '<input type="text" name="username"><input type="password" name="password">'
        '<button type="submit">ログイン</button></form>',
    )


def _dashboard_page(clinic_name: str) -> bytes:
    return _page(
        "管理画面",
        f'<h1>{html.escape(clinic_name)} 管理画面</h1><p>本日の予約: 3件</p><a href="{LOGIN_PATH}">ログアウト</a>',
    )


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # Reopening after ``refuse`` must get the same port back at once.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _SelfSignedCert:
    """A fresh self-signed certificate for ``host`` (and localhost), valid 30 days."""

    def __init__(self, host: str, valid_days: int) -> None:
        made = self_signed("portalguard portal simulator", (host, "127.0.0.1", "::1"), valid_days)
        self.not_after = made.not_after
        self.cert_pem = made.cert_pem
        key_pem = made.key_pem
        # ssl can only load a certificate chain from files.
        self._dir = tempfile.TemporaryDirectory(prefix="portal-sim-")
        self._cert_file = Path(self._dir.name, "cert.pem")
        self._key_file = Path(self._dir.name, "key.pem")
        self._cert_file.write_bytes(self.cert_pem)
        self._key_file.write_bytes(key_pem)
        self._context: ssl.SSLContext | None = None

    def server_context(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._context.load_cert_chain(self._cert_file, self._key_file)
        return self._context

    def cleanup(self) -> None:
        self._dir.cleanup()


# -- as a process ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A simulated booking portal on 127.0.0.1.")
    parser.add_argument("--host", default="127.0.0.1", help="127.0.0.1 or ::1")
    parser.add_argument("--port", type=int, default=0, help="public endpoint port (0: any free port)")
    parser.add_argument("--admin-port", type=int, default=0)
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--tls", action="store_true", help="serve https with a fresh self-signed cert")
    parser.add_argument("--clinic-name", default="さくら歯科")
    parser.add_argument("--username", default="staff")
    parser.add_argument("--password", default="sakura-pass")
    parser.add_argument("--delay", type=float, default=2.0, help="seconds the slow mode waits")
    parser.add_argument("--page-size", type=int, default=20, help="reservations per page of a day's list")
    parser.add_argument("--ics-username", help="protect the iCalendar feed with HTTP Basic (with --ics-password)")
    parser.add_argument("--ics-password")
    args = parser.parse_args(argv)
    if (args.ics_username is None) != (args.ics_password is None):
        parser.error("--ics-username and --ics-password go together")
    simulator = PortalSimulator(
        args.host,
        port=args.port,
        admin_port=args.admin_port,
        control_port=args.control_port,
        tls=args.tls,
        clinic_name=args.clinic_name,
        username=args.username,
        password=args.password,
        delay=args.delay,
        page_size=args.page_size,
        ics_credentials=(args.ics_username, args.ics_password) if args.ics_username is not None else None,
    )
    asyncio.run(_serve_forever(simulator))


async def _serve_forever(simulator: PortalSimulator) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with simulator:
        print(json.dumps(simulator.describe(), ensure_ascii=False), flush=True)
        await stop.wait()


if __name__ == "__main__":
    main()
