"""The logged-in staff session the mirror's sources read through, on the login probe's rules.

The machinery is the watchdog's, not a copy: ``watchdog.probes.fetch.Browser`` (its own cookie jar, the
endpoint's host and ``allow_redirect_hosts`` only, redirects followed by hand, bodies read up to
``probe.max_body_bytes`` and decoded, Shift_JIS included) and ``watchdog.probes.login.log_in`` (the
login form with its hidden inputs, the POST, the success texts). What they raise (``ProbeFailure``,
network exceptions as ``watchdog.probes.errors.classify`` reads them) is translated here into the
mirror's ``SyncFailure`` kinds; details are the probe's own short texts: never a secret, never a
page's content, so never patient data.

One session per sync: ``StaffSession.open`` logs in once (when the endpoint has a ``login``), then
every ``get`` carries its cookies. Each request (the login as a whole, each page with its redirects)
is bounded by the portal's ``timeout``. Without a login (an iCalendar feed) it is a plain GET under
the same rules, optionally with HTTP Basic credentials sent to the feed's own origin only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from failover.mirror.model import SyncFailure
from watchdog.probes.errors import ProbeFailure, Trace, classify
from watchdog.probes.fetch import Browser, Page
from watchdog.probes.http import quote
from watchdog.probes.login import log_in
from watchdog.result import FailureKind
from watchdog.targets import Endpoint, ProbeSettings

T = TypeVar("T")

# The probe's failure kinds as the mirror counts them (portalguard_mirror_sync_errors_total{kind}).
_KINDS: dict[FailureKind, str] = {
    FailureKind.LOGIN: "login",
    FailureKind.HTTP_STATUS: "http_status",
    FailureKind.TIMEOUT: "timeout",
    FailureKind.CONNECT: "connect",
    FailureKind.DNS: "connect",
    FailureKind.TLS: "connect",
    FailureKind.REDIRECT: "redirect",
    FailureKind.MAINTENANCE: "maintenance",
    FailureKind.CONTENT: "parse",  # a body that cannot be decoded
}


class StaffSession:
    """One sync's view of a portal's admin side (or of a feed): its cookies, its hosts, its timeout."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        endpoint: Endpoint,
        settings: ProbeSettings,
        timeout: float,
        *,
        basic_auth: tuple[str, str] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.requests = 0  # pages asked for through ``get`` (the login not counted)
        self.logged_in = False
        self._browser = Browser(client, endpoint, settings, Trace(), basic_auth=basic_auth)
        self._login_path = httpx.URL(endpoint.url).path if endpoint.login is not None else None

    @classmethod
    async def open(
        cls,
        client: httpx.AsyncClient,
        endpoint: Endpoint,
        settings: ProbeSettings,
        timeout: float,
        *,
        basic_auth: tuple[str, str] | None = None,
    ) -> StaffSession:
        """A session, logged in when ``endpoint`` has a ``login``; raises ``SyncFailure`` if it cannot."""
        session = cls(client, endpoint, settings, timeout, basic_auth=basic_auth)
        if endpoint.login is not None:
            await session.login()
        return session

    async def login(self) -> None:
        """Log in once (the whole flow within ``timeout``); ``SyncFailure`` (mostly ``login``) if refused."""
        await self._guarded(lambda: log_in(self._browser, self.endpoint), during_login=True)
        self.logged_in = True

    async def get(self, url: str | httpx.URL) -> Page:
        """The page at ``url`` (redirects on allowed hosts followed), judged as the sources need it.

        ``SyncFailure`` kinds: ``maintenance`` (an ``expect.not_contains`` text, whatever the status),
        ``http_status`` (≥ 400), ``login`` (led back to the login page: the session was not accepted),
        ``redirect``, ``timeout``, ``connect``.
        """
        target = httpx.URL(url)
        self.requests += 1
        page = await self._guarded(lambda: self._fetch(target), during_login=False)
        found = next((text for text in self.endpoint.expect.not_contains if text in page.text), None)
        if found is not None:
            raise SyncFailure("maintenance", f"maintenance text {quote(found)} found")
        if page.status >= 400:
            raise SyncFailure("http_status", f"HTTP {page.status}")
        if self._login_path is not None and page.url.path == self._login_path and target.path != self._login_path:
            raise SyncFailure("login", "led back to the login page: the staff session was not accepted")
        return page

    def follow(self, page: Page, href: str) -> httpx.URL:
        """Where a link on ``page`` leads, under the same-host rule (``redirect`` otherwise)."""
        try:
            target = page.url.join(href)
        except httpx.InvalidURL:
            raise SyncFailure("parse", "a link with an invalid address") from None
        try:
            self._browser.require_allowed(target, "a link leads to")
        except ProbeFailure as failure:
            raise SyncFailure("redirect", failure.detail) from None
        return target

    async def _fetch(self, target: httpx.URL) -> Page:
        self._browser.require_allowed(target, "the source's address is on")
        return await self._browser.fetch("GET", target)

    async def _guarded(self, step: Callable[[], Awaitable[T]], *, during_login: bool) -> T:
        try:
            async with asyncio.timeout(self.timeout):
                return await step()
        except ProbeFailure as failure:
            kind = "login" if during_login and failure.kind is FailureKind.CONTENT else _KINDS[failure.kind]
            detail = f"login page: {failure.detail}" if during_login and kind != "login" else failure.detail
            raise SyncFailure(kind, detail) from None
        except Exception as exc:
            mapped = classify(exc, self.timeout)
            if mapped is None:
                raise  # a bug, not the portal's failure
            kind, detail = mapped
            raise SyncFailure(_KINDS.get(kind, "connect"), detail) from None
