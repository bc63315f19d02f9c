"""Probe kinds, one module each, registered in ``PROBES``.

A probe is ``async (client, target, timeout, settings) -> ProbeResult``: bounded by ``timeout``
as a whole, and never raising on a target failure (the failure is in the result).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from watchdog.probes.canary import probe_canary
from watchdog.probes.http import probe_http
from watchdog.probes.login import probe_login
from watchdog.result import ProbeResult
from watchdog.targets import Endpoint, ProbeSettings

Probe = Callable[[httpx.AsyncClient, Any, float, ProbeSettings], Awaitable[ProbeResult]]

PROBES: dict[str, Probe] = {
    "http": probe_http,
    "login": probe_login,
    "canary": probe_canary,
}


def endpoint_kind(endpoint: Endpoint) -> str:
    """The probe kind that checks a portal's endpoint: the login probe where a login is configured."""
    return "login" if endpoint.login else "http"


async def run_probe(
    client: httpx.AsyncClient,
    kind: str,
    target: Endpoint | str,
    timeout: float,
    settings: ProbeSettings,
) -> ProbeResult:
    """Probe ``target`` (an ``Endpoint``, or a URL for ``canary``) with the probe kind ``kind``."""
    try:
        probe = PROBES[kind]
    except KeyError:
        raise ValueError(f"unknown probe kind {kind!r} (known: {', '.join(PROBES)})") from None
    return await probe(client, target, timeout, settings)
