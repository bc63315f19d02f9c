"""The canary probe: any answer below 500 means our own network works."""

from __future__ import annotations

import httpx
import pytest

from failover.fakes.portal_simulator import CANARY_PATH, PortalSimulator
from watchdog.probes.canary import probe_canary
from watchdog.result import FailureKind
from watchdog.targets import ProbeSettings

pytestmark = pytest.mark.anyio

OK_MODES = {"204": None, "redirect-not-followed": "redirect", "maintenance-page": "maintenance"}


@pytest.mark.parametrize("mode", OK_MODES.values(), ids=OK_MODES.keys())
async def test_answers_below_500_are_ok(
    mode: str | None, sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings
):
    if mode is not None:
        sim.set_mode(mode, endpoints=("public",))
    result = await probe_canary(client, sim.url("public", CANARY_PATH), 2.0, settings)
    assert result.ok, result
    assert result.status == (204 if mode is None else {"redirect": 302, "maintenance": 200}[mode])


async def test_the_control_port_is_an_always_up_canary(
    sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings
):
    sim.set_mode("refuse")
    assert (await probe_canary(client, sim.control_url + CANARY_PATH, 2.0, settings)).ok


FAILURES = {
    "http_status": ("error500", FailureKind.HTTP_STATUS, 2.0),
    "connect": ("refuse", FailureKind.CONNECT, 2.0),
    "timeout": ("hang", FailureKind.TIMEOUT, 0.3),
}


@pytest.mark.parametrize(("mode", "kind", "timeout"), FAILURES.values(), ids=FAILURES.keys())
async def test_failures(
    mode: str,
    kind: FailureKind,
    timeout: float,
    sim: PortalSimulator,
    client: httpx.AsyncClient,
    settings: ProbeSettings,
):
    sim.set_mode(mode, endpoints=("public",))
    result = await probe_canary(client, sim.url("public", CANARY_PATH), timeout, settings)
    assert result.error_kind is kind, result


async def test_dns_failure(client: httpx.AsyncClient, settings: ProbeSettings):
    result = await probe_canary(client, "http://canary.invalid/generate_204", 2.0, settings)
    assert result.error_kind is FailureKind.DNS
