"""The one outbound HTTP seam of the probes: an ``httpx.AsyncClient`` configured for probing."""

from __future__ import annotations

import ssl
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from watchdog.targets import ProbeSettings


def make_probe_client(settings: ProbeSettings, *, ssl_context: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """A client shared by all probes.

    - No keep-alive: every probe opens a fresh connection, so DNS, connect and TLS failures are
      seen each time instead of hidden behind a pooled connection.
    - No connection limit: the scheduler's semaphore bounds probes in flight; a pool limit here
      would make probes wait for a slot and report our own queueing as a portal timeout.
    - No httpx timeouts: each probe bounds itself as a whole with ``asyncio.timeout``.
    - No automatic redirects: probes follow them by hand to apply the same-host rule.
    - No cookie memory: the client is shared, so each probe keeps its own jar instead.
    - Environment proxies are ignored: patients reach the portal directly, so must the watchdog.
    - Certificates are always verified; ``ssl_context`` may add trusted CAs (a private CA).
    """
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
        timeout=None,
        follow_redirects=False,
        headers={"User-Agent": settings.user_agent},
        cookies=_forgetful_jar(),
        verify=ssl_context if ssl_context is not None else True,
        trust_env=False,
    )


def _forgetful_jar() -> CookieJar:
    # An empty allowed-domains list rejects every cookie: httpx stores each response's cookies
    # in the client's jar, which would leak a session from one probe into the next.
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
