"""The HTTP server inside ``portalguard run`` and the guards on its connections.

uvicorn alone lets a client hold a connection (one file descriptor) for ever by sending its request
headers a byte at a time: ``timeout_keep_alive`` only covers the idle time *between* requests, and
``limit_concurrency`` neither refuses connections (it answers 503 once headers are complete, so it
frees no descriptor) nor tells a slow attacker from a patient (idle connections count against it,
so under attack patients get the 503s). A slowloris of ~1,000 such connections used up the process's
1,024 descriptors, and with them the probes, the canaries, the store and the booking page.

So every connection here goes through a ``ConnectionGuard``:

- headers must be complete ``server.header_timeout`` after the connection (or the previous response)
  and the body ``server.body_timeout`` after the headers: a deadline for the whole part, not per
  byte, so trickling bytes does not extend it;
- at most ``server.max_connections_per_client`` connections per TCP peer (``server.trusted_proxies``
  are exempt: every patient behind the proxy shares its address; the proxy limits per patient);
- at most ``server.max_connections`` in total, kept below the descriptor limit with ``RESERVED_FDS``
  left for everything else. At the total cap a new connection is not refused: it closes the oldest
  *slow* connection (part of its headers sent, the rest not yet; or idle between requests), else the
  oldest one that has sent nothing yet. A patient's browser sends its headers in one go right after
  connecting, so it is never slow, and ``GET /book`` keeps working while the attack lasts. Only if
  every connection is busy with a request is the new one refused.

Refused connections are closed in ``connection_made``, before a byte is parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import resource
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import h11
import uvicorn
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.utils import get_remote_addr

from failover.settings import ServerSettings

log = logging.getLogger("portalguard.web")

# Descriptors never given to web connections: probes and canaries (probe.concurrency at once), the
# store, the webhook/Apprise/Google Ads clients, log files, the listeners themselves.
RESERVED_FDS = 128
DEFAULT_MAX_CONNECTIONS = 4096  # far above a clinic's traffic; each connection costs memory too
MIN_CONNECTIONS = 32
# The separate /metrics listener (Prometheus uses one connection) gets its own small share, so an
# attack on the booking port cannot stop the scrapes that would show it.
METRICS_CONNECTIONS = 16
METRICS_PER_CLIENT = 8
TRIM_AFTER = 0.05  # the reads of a burst just accepted have been handled by then


def burst_margin(max_total: int) -> int:
    return max(8, max_total // 4)


# A connection that has sent nothing yet is not shed for this long: its headers may be in flight.
FRESH_GRACE = 1.0


class ServiceError(Exception):
    """The service cannot start; the message says why and what to change."""


# -- file descriptor budget -------------------------------------------------------------------------


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one where allowed; returns the soft limit in force.

    Under the shipped systemd unit setrlimit is filtered (``~@resources``): ``LimitNOFILE=`` sets both.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if want > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass  # the limit we have is the limit we plan with
    return soft


def web_connection_limit(fd_limit: int, configured: int | None) -> int:
    """``server.max_connections``, or its default: what the descriptor limit leaves after the reserve."""
    # max_total plus its burst margin must fit: available >= n + max(8, n // 4)
    room = fd_limit - RESERVED_FDS - METRICS_CONNECTIONS
    available = min(room - 8, room * 4 // 5)
    if configured is not None:
        if configured > available:
            raise ServiceError(
                f"server.max_connections: {configured} would leave too few of the {fd_limit} file descriptors "
                f"this process may open (ulimit -n) for probes, the store and outbound calls; use at most "
                f"{max(available, 0)}, or raise the limit (LimitNOFILE=65536 in the systemd unit)"
            )
        return configured
    if available < MIN_CONNECTIONS:
        needed = RESERVED_FDS + METRICS_CONNECTIONS + MIN_CONNECTIONS + burst_margin(MIN_CONNECTIONS)
        raise ServiceError(
            f"only {fd_limit} file descriptors may be open (ulimit -n): portalguard needs at least "
            f"{needed}; raise it (LimitNOFILE=65536 in the systemd unit)"
        )
    return min(DEFAULT_MAX_CONNECTIONS, available)


# -- the guard --------------------------------------------------------------------------------------


class Guarded(Protocol):
    def shed(self) -> None: ...


@dataclass
class GuardStats:
    """Counts since start, for tests and the rate-limited warnings."""

    refused_per_client: int = 0
    refused_full: int = 0
    shed: int = 0
    header_timeouts: int = 0
    body_timeouts: int = 0
    peak: int = 0


class ConnectionGuard:
    """Admits connections under a total and a per-client cap; knows which ones wait for headers."""

    def __init__(
        self,
        max_total: int,
        max_per_client: int,
        exempt: list[str] | tuple[str, ...] = (),
        clock: Callable[[], float] = time.monotonic,
        later: Callable[[float, Callable[[], None]], object] | None = None,
    ) -> None:
        self.clock = clock
        self._later = later
        self._trim_pending = False
        self.max_total = max_total
        # Above max_total, up to this many more for a moment: a burst of connections is accepted in
        # one go before any of them is read, so which ones are slow is known only a little later.
        self.hard_max = max_total + burst_margin(max_total)
        self.max_per_client = max_per_client
        self._exempt_nets = [ipaddress.ip_network(n, strict=False) for n in exempt]
        self._exempt_cache: dict[str, bool] = {}
        self._client: dict[Guarded, str] = {}
        self._per_client: Counter[str] = Counter()
        # The connections that may be shed, oldest first. `_slow`: some bytes of a request's headers
        # came but not all (slowloris's signature), or idle between requests. `_fresh`: nothing yet.
        # A patient's browser sends its headers at once, so it is in `_fresh` for milliseconds and
        # then busy: the slow ones go first, and a fresh one only when there are no slow ones.
        self._slow: dict[Guarded, None] = {}
        self._fresh: dict[Guarded, float] = {}  # -> when admitted
        self.stats = GuardStats()

    @property
    def open(self) -> int:
        return len(self._client)

    def count(self, client: str) -> int:
        return self._per_client[client]

    def admit(self, conn: Guarded, client: str) -> bool:
        """Take ``conn`` (fresh) or return False: the caller closes it at once."""
        if self._per_client[client] >= self.max_per_client and not self._exempt(client):
            self.stats.refused_per_client += 1
            log.warning(
                "web: refused connections from a client with %d open (server.max_connections_per_client)",
                self.max_per_client,
            )
            return False
        if len(self._client) >= self.max_total:
            self._schedule_trim()
        if len(self._client) >= self.hard_max and not self._shed_one():
            self.stats.refused_full += 1
            log.warning("web: refused connections: %d open, all busy (server.max_connections)", self.max_total)
            return False
        self._client[conn] = client
        self._per_client[client] += 1
        self._fresh[conn] = self.clock()
        self.stats.peak = max(self.stats.peak, len(self._client))
        return True

    def slow(self, conn: Guarded) -> None:
        """``conn`` has sent part of a request's headers, or waits idle for its next request."""
        if conn in self._client and conn not in self._slow:
            self._fresh.pop(conn, None)
            self._slow[conn] = None

    def busy(self, conn: Guarded) -> None:
        """``conn``'s headers are complete: it is serving a patient and is not shed."""
        self._slow.pop(conn, None)
        self._fresh.pop(conn, None)

    def release(self, conn: Guarded) -> None:
        client = self._client.pop(conn, None)
        self.busy(conn)
        if client is not None:
            self._per_client[client] -= 1
            if self._per_client[client] <= 0:
                del self._per_client[client]

    def trim(self) -> None:
        """Back to ``max_total``: shed slow connections (then fresh ones past their grace)."""
        self._trim_pending = False
        while len(self._client) > self.max_total and self._shed_one():
            pass

    def _schedule_trim(self) -> None:
        if self._trim_pending:
            return
        later = self._later or asyncio.get_running_loop().call_later
        later(TRIM_AFTER, self.trim)
        self._trim_pending = True

    def _shed_one(self) -> bool:
        if self._slow:
            victim = next(iter(self._slow))
        elif self._fresh and self.clock() - next(iter(self._fresh.values())) >= FRESH_GRACE:
            victim = next(iter(self._fresh))
        else:
            # Only connections just made: a burst of them (accepted in one go, not read yet) would
            # otherwise close the patient whose headers are about to be read. The new one goes.
            return False
        self.release(victim)
        victim.shed()
        self.stats.shed += 1
        log.warning(
            "web: %d connections open (server.max_connections): closing the oldest slow one to take a new one",
            self.max_total,
        )
        return True

    def _exempt(self, client: str) -> bool:
        known = self._exempt_cache.get(client)
        if known is None:
            try:
                addr = ipaddress.ip_address(client)
                known = any(addr in net for net in self._exempt_nets)
            except ValueError:
                known = False
            if len(self._exempt_cache) > 4096:  # bounded: attackers choose their addresses
                self._exempt_cache.clear()
            self._exempt_cache[client] = known
        return known


@dataclass(frozen=True)
class Timeouts:
    header: float
    body: float


def guarded_protocol(guard: ConnectionGuard, timeouts: Timeouts) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with the guard and the header/body deadlines (``uvicorn.Config(http=...)``)."""

    class GuardedH11Protocol(H11Protocol):
        _admitted = False
        _timer: asyncio.TimerHandle | None = None
        _timer_kind: str | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            peer = get_remote_addr(transport)
            if not guard.admit(self, peer[0] if peer else ""):
                transport.abort()  # before anything is parsed or allocated for it
                return
            self._admitted = True
            super().connection_made(transport)
            self._arm("header")

        def connection_lost(self, exc: Exception | None) -> None:
            if not self._admitted:
                return
            self._cancel()
            guard.release(self)
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._follow()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._follow()  # between requests uvicorn's keep-alive timer runs; the next bytes arm ours

        def _follow(self) -> None:
            """Put the deadline (and the guard's view) in step with where the request is."""
            if self.transport is None or self.transport.is_closing():
                return
            state = self.conn.their_state
            if state is h11.IDLE:  # part of the headers, or idle after a response
                guard.slow(self)
                if self.timeout_keep_alive_task is None and self._timer_kind != "header":
                    self._arm("header")  # bytes of a request have come: its headers now have a deadline
            elif state is h11.SEND_BODY:
                guard.busy(self)
                if self._timer_kind != "body":
                    self._arm("body")
            else:
                guard.busy(self)
                self._cancel()

        def _arm(self, kind: str) -> None:
            self._cancel()
            delay = timeouts.header if kind == "header" else timeouts.body
            self._timer = self.loop.call_later(delay, self._expired, kind)
            self._timer_kind = kind

        def _cancel(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
            self._timer, self._timer_kind = None, None

        def _expired(self, kind: str) -> None:
            self._timer, self._timer_kind = None, None
            if kind == "header":
                guard.stats.header_timeouts += 1
            else:
                guard.stats.body_timeouts += 1
            log.info("web: closed a connection whose request %s did not arrive in time (server.%s_timeout)", kind, kind)
            self.shed()

        def shed(self) -> None:
            if self.transport is not None and not self.transport.is_closing():
                self.transport.abort()  # frees the descriptor now; nothing useful is left to send

    return GuardedH11Protocol


# -- servers ----------------------------------------------------------------------------------------


def bind(key: str, listen: str) -> socket.socket:
    """A listening socket for ``host:port``, or a ServiceError naming the config key."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # IPPROTO_TCP: uvicorn sets NODELAY
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
        sock.listen(2048)
    except OSError as err:
        sock.close()
        raise ServiceError(
            f"{key}: cannot listen on {listen}: {err.strerror} (another process on that port?)"
        ) from None
    sock.setblocking(False)
    return sock


def http_server(app: object, settings: ServerSettings, guard: ConnectionGuard) -> uvicorn.Server:
    # X-Forwarded-For is believed from server.trusted_proxies only: anyone else could pick a fresh
    # address per request and escape the booking form's per-client rate limit.
    config = uvicorn.Config(
        app,
        http=guarded_protocol(guard, Timeouts(settings.header_timeout, settings.body_timeout)),
        ws="none",
        log_level="warning",
        lifespan="off",
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=list(settings.trusted_proxies),
    )
    return EmbeddedServer(config)


def build_servers(
    settings: ServerSettings, app: object, registry: CollectorRegistry
) -> list[tuple[uvicorn.Server, socket.socket]]:
    """The web server (and the /metrics one), bound and listening, with their guards."""
    _warn_ignored_forwarded_env()
    fd_limit = raise_fd_limit()
    total = web_connection_limit(fd_limit, settings.max_connections)
    web_guard = ConnectionGuard(total, settings.max_connections_per_client, settings.trusted_proxies)
    listeners: list[tuple[str, str, object, ConnectionGuard]] = [("server.listen", settings.listen, app, web_guard)]
    if settings.metrics_listen:
        metrics_guard = ConnectionGuard(METRICS_CONNECTIONS, METRICS_PER_CLIENT)
        listeners.append(("server.metrics_listen", settings.metrics_listen, metrics_app(registry), metrics_guard))
    log.debug("web: at most %d connections (file descriptor limit %d)", total, fd_limit)
    bound: list[tuple[uvicorn.Server, socket.socket]] = []
    try:
        for key, listen, asgi, guard in listeners:
            bound.append((http_server(asgi, settings, guard), bind(key, listen)))
    except ServiceError:
        for _, sock in bound:
            sock.close()
        raise
    return bound


def _warn_ignored_forwarded_env() -> None:
    # uvicorn's own variable (documented here before server.trusted_proxies existed) no longer
    # applies: say so, or a proxy in a container would silently share one rate-limit bucket.
    if os.environ.get("FORWARDED_ALLOW_IPS"):
        log.warning(
            "FORWARDED_ALLOW_IPS is ignored: list your reverse proxy's address under server.trusted_proxies "
            "in the config file instead"
        )


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside our loop: signals belong to the service, which stops every part in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def metrics_app(registry: CollectorRegistry) -> Starlette:
    from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", metrics)])
