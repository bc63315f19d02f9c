"""Fetching pages the way probes need it: redirects followed by hand under the same-host rule,
cookies kept per probe, bodies read up to a cap and decoded."""

from __future__ import annotations

import base64
import functools
import re
from contextlib import aclosing
from dataclasses import dataclass

import httpx

from watchdog.probes.errors import ProbeFailure, Trace
from watchdog.probes.tls import cert_expiry
from watchdog.result import FailureKind
from watchdog.targets import Endpoint, ProbeSettings

MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-]+)""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Page:
    url: httpx.URL  # where the page was finally found, after redirects
    status: int
    text: str  # at most ``max_body_bytes`` of the body, decoded
    body: bytes = b""  # the same bytes undecoded (a CSV export picks its own encoding)


class Browser:
    """One probe's view of the web: its own cookie jar and the hosts it may be led to.

    Never shared between probes, so a session cookie of one probe cannot leak into another.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        endpoint: Endpoint,
        settings: ProbeSettings,
        trace: Trace,
        *,
        basic_auth: tuple[str, str] | None = None,
    ) -> None:
        self._client = client
        self._max_body = settings.max_body_bytes
        self._trace = trace
        self._cookies = httpx.Cookies()
        self._allowed_hosts = allowed_hosts(endpoint.url, tuple(endpoint.allow_redirect_hosts))
        self._https = endpoint.url.startswith("https://")
        # HTTP Basic credentials (a feed's) go to the endpoint's own origin only, never along a redirect.
        self._authorization: tuple[str, httpx.URL] | None = None
        if basic_auth is not None:
            self._authorization = _basic(*basic_auth), httpx.URL(endpoint.url)

    def require_allowed(self, url: httpx.URL, what: str) -> None:
        """Fail with ``redirect`` unless ``url`` is on the endpoint's host or an allowed one."""
        if url.scheme not in ("http", "https"):
            raise ProbeFailure(FailureKind.REDIRECT, f"{what} unsupported scheme {url.scheme or '?'}")
        if url.host not in self._allowed_hosts:
            raise ProbeFailure(FailureKind.REDIRECT, f"{what} other host {url.host}")

    async def fetch(self, method: str, url: str | httpx.URL, data: dict[str, str] | None = None) -> Page:
        """The page at ``url`` after following at most ``MAX_REDIRECTS`` allowed redirects."""
        target = httpx.URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            if data is not None and self._https and target.scheme != "https":
                # A form (or a 307/308) leading an https login to plain http would expose the password.
                raise ProbeFailure(FailureKind.LOGIN, "refused to send the login over plain http")
            page, location = await self._send(method, target, data)
            if location is None:
                return page
            target = self._redirect_target(page.url, location)
            if page.status in (301, 302, 303) and method != "GET":
                method, data = "GET", None  # what browsers do; 307/308 repeat the request
        raise ProbeFailure(FailureKind.REDIRECT, f"more than {MAX_REDIRECTS} redirects")

    def _redirect_target(self, current: httpx.URL, location: str) -> httpx.URL:
        try:
            target = current.join(location)
        except httpx.InvalidURL:
            raise ProbeFailure(FailureKind.REDIRECT, "redirect to an invalid location") from None
        self.require_allowed(target, "redirect to")
        return target

    async def _send(self, method: str, url: httpx.URL, data: dict[str, str] | None) -> tuple[Page, str | None]:
        request = self._client.build_request(method, url, data=data)
        if self._authorization is not None and _same_origin(url, self._authorization[1]):
            request.headers["Authorization"] = self._authorization[0]
        if self._cookies:  # the cookie machinery is costly; most probes never get a cookie
            self._cookies.set_cookie_header(request)
        response = await self._client.send(request, stream=True)
        try:
            self._note(response)
            location = response.headers.get("location")
            if response.status_code in _REDIRECT_STATUSES and location:
                return Page(url, response.status_code, ""), location
            body = await read_capped(response, self._max_body)
        finally:
            await response.aclose()
        return Page(url, response.status_code, decode(body, response), body), None

    def _note(self, response: httpx.Response) -> None:
        self._trace.status = response.status_code
        if "set-cookie" in response.headers:
            self._cookies.extract_cookies(response)
        if self._trace.tls_expiry is None and response.url.scheme == "https":
            # The first TLS hop is the endpoint's own host (later hops may be allowed others).
            self._trace.tls_expiry = cert_expiry(response)


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _same_origin(url: httpx.URL, origin: httpx.URL) -> bool:
    return (url.scheme, url.host, url.port) == (origin.scheme, origin.host, origin.port)


@functools.lru_cache(maxsize=16_384)
def allowed_hosts(url: str, others: tuple[str, ...]) -> frozenset[str]:
    """The endpoint's own host and the other hosts it may redirect to (cached: URL parsing is
    a noticeable part of a probe's CPU when thousands of endpoints are probed)."""
    return frozenset({httpx.URL(url).host, *(host.lower() for host in others)})


async def read_capped(response: httpx.Response, cap: int) -> bytes:
    """At most ``cap`` bytes of the (decompressed) body; stops reading the network past the cap."""
    chunks: list[bytes] = []
    size = 0
    async with aclosing(response.aiter_bytes()) as stream:
        async for chunk in stream:
            chunks.append(chunk)
            size += len(chunk)
            if size >= cap:
                break
    return b"".join(chunks)[:cap]


def decode(body: bytes, response: httpx.Response) -> str:
    """The body as text: the header's charset, else a ``<meta charset>`` (Japanese sites still
    serve Shift_JIS and EUC-JP), else UTF-8. Undecodable bytes never fail a probe by themselves."""
    charset = response.charset_encoding
    if charset is None:
        match = _META_CHARSET.search(body[:4096])
        charset = match.group(1).decode("ascii") if match else "utf-8"
    try:
        return body.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        return body.decode("utf-8", errors="replace")
