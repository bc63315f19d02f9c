"""The one outbound HTTP seam of the probes: an ``httpx.AsyncClient`` configured for probing."""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpcore
import httpx

from watchdog.targets import ProbeSettings


def make_probe_client(settings: ProbeSettings, *, ssl_context: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """A client shared by all probes.

    - A fresh connection per request, closed with its response (no keep-alive, no pool): DNS,
      connect and TLS failures are seen every time, never hidden behind a pooled connection.
    - No httpx timeouts: each probe bounds itself as a whole with ``asyncio.timeout``.
    - No automatic redirects: probes follow them by hand to apply the same-host rule.
    - No cookie memory: the client is shared, so each probe keeps its own jar instead.
    - Environment proxies are ignored: patients reach the portal directly, so must the watchdog.
    - Certificates are always verified; ``ssl_context`` may add trusted CAs (a private CA).
    - ``probe.source_address``: every connection leaves from that local address (the uplink this
      instance is meant to watch from, on a host with several).
    """
    context = ssl_context if ssl_context is not None else probe_ssl_context(settings)
    return httpx.AsyncClient(
        transport=FreshConnectionTransport(context, settings.source_address),
        timeout=None,
        follow_redirects=False,
        headers={"User-Agent": settings.user_agent},
        cookies=_forgetful_jar(),
        trust_env=False,
    )


def source_address_problem(settings: ProbeSettings) -> str | None:
    """Why probes cannot leave from ``probe.source_address`` on this machine, or None (unset or usable).
    Checked at start: otherwise every probe and canary would fail alike, a false "network down"."""
    address = settings.source_address
    if address is None:
        return None
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((address, 0))
    except OSError as err:
        return (
            f"probe.source_address: {address} is not an address of this machine ({err.strerror}); "
            "use one that `ip addr` lists, or remove the key"
        )
    return None


def probe_ssl_context(settings: ProbeSettings) -> ssl.SSLContext:
    """The public CAs (certifi, as browsers trust), plus ``probe.ca_file`` when set."""
    context = httpx.create_ssl_context(trust_env=False)
    if settings.ca_file:
        try:
            context.load_verify_locations(cafile=settings.ca_file)
        except (OSError, ssl.SSLError) as err:
            raise ValueError(f"probe.ca_file {settings.ca_file}: cannot load CA certificates ({err})") from None
    return context


def _forgetful_jar() -> CookieJar:
    # An empty allowed-domains list rejects every cookie: httpx stores each response's cookies
    # in the client's jar, which would leak a session from one probe into the next.
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


class FreshConnectionTransport(httpx.AsyncBaseTransport):
    """Opens a new HTTP/1.1 connection for each request and closes it with the response.

    httpx's pooled transport with keep-alive off would do the same, but its pool scans every
    connection in flight on each request: with hundreds of probes hanging on a dead portal,
    that bookkeeping costs more CPU than the probes themselves. Probes never reuse a
    connection, so there is nothing for a pool to do.
    """

    def __init__(self, ssl_context: ssl.SSLContext, local_address: str | None = None) -> None:
        self._ssl_context = ssl_context
        self._local_address = local_address
        self._network = httpcore.AnyIOBackend()  # the project runs on asyncio only

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = httpcore.URL(
            scheme=request.url.raw_scheme,
            host=request.url.raw_host,
            port=request.url.port,
            target=request.url.raw_path,
        )
        core_request = httpcore.Request(
            request.method, url, headers=request.headers.raw, content=request.stream, extensions=request.extensions
        )
        connection = httpcore.AsyncHTTPConnection(
            url.origin, ssl_context=self._ssl_context, local_address=self._local_address, network_backend=self._network
        )
        try:
            with _as_httpx_errors(request):
                response = await connection.handle_async_request(core_request)
        except BaseException:
            await connection.aclose()
            raise
        return httpx.Response(
            response.status,
            headers=response.headers,
            stream=_ClosingStream(request, response, connection),
            extensions=response.extensions,
        )


class _ClosingStream(httpx.AsyncByteStream):
    """A response body that closes its connection when the response is closed."""

    def __init__(
        self, request: httpx.Request, response: httpcore.Response, connection: httpcore.AsyncHTTPConnection
    ) -> None:
        self._request = request
        self._response = response
        self._connection = connection

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors(self._request):
            async for chunk in self._response.aiter_stream():
                yield chunk

    async def aclose(self) -> None:
        try:
            await self._response.aclose()
        finally:
            await self._connection.aclose()


_HTTPCORE_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ProxyError,
)


@contextlib.contextmanager
def _as_httpx_errors(request: httpx.Request) -> Iterator[None]:
    """Raise httpx's exception of the same name as httpcore's, as httpx's own transport does."""
    try:
        yield
    except _HTTPCORE_ERRORS as exc:
        mapped = getattr(httpx, type(exc).__name__, None)
        if not (isinstance(mapped, type) and issubclass(mapped, httpx.TransportError)):
            mapped = httpx.TransportError
        raise mapped(str(exc), request=request) from exc
