"""Probing from one vantage point: ``probe.source_address`` binds every probe to a local address, and
the portal simulator can fail for one client address only (the portal broken for one site of two).
Both on loopback: 127.0.0.2 and 127.0.0.3 are this machine's, like 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TypeVar

import pytest
from pydantic import ValidationError

from failover.fakes.portal_simulator import PortalSimulator
from watchdog.http_client import make_probe_client, source_address_problem
from watchdog.probes.http import probe_http
from watchdog.result import FailureKind
from watchdog.targets import Endpoint, ProbeSettings

pytestmark = pytest.mark.anyio

SITE_A, SITE_B = "127.0.0.2", "127.0.0.3"
T = TypeVar("T")


def page(sim: PortalSimulator) -> Endpoint:
    return Endpoint.model_validate({"url": sim.url("public"), "expect": {"contains": [sim.clinic_name]}})


async def probe_from(sim: PortalSimulator, address: str) -> tuple[bool, FailureKind | None]:
    settings = ProbeSettings(source_address=address)
    async with make_probe_client(settings) as client:
        result = await probe_http(client, page(sim), 2.0, settings)
    return result.ok, result.error_kind


async def test_the_portal_fails_for_one_site_only(sim: PortalSimulator) -> None:
    sim.set_mode("error500", ("public",), clients=[SITE_A])
    assert await probe_from(sim, SITE_A) == (False, FailureKind.HTTP_STATUS)
    assert await probe_from(sim, SITE_B) == (True, None)
    assert sim.mode("public", SITE_A) == "error500" and sim.mode("public", SITE_B) == "healthy"

    sim.set_mode("refuse", ("public",), clients=[SITE_B])  # closed as accepted: nothing answers
    ok, kind = await probe_from(sim, SITE_B)
    assert not ok and kind is not None and kind is not FailureKind.HTTP_STATUS

    sim.set_mode("healthy", ("public",), clients=[SITE_A, SITE_B])  # handed back to the endpoint's mode
    assert await probe_from(sim, SITE_A) == (True, None) and await probe_from(sim, SITE_B) == (True, None)


async def test_a_mode_for_every_client_clears_the_per_client_ones(sim: PortalSimulator) -> None:
    sim.set_mode("maintenance", ("public",), clients=[SITE_A])
    sim.set_mode("healthy")
    assert await probe_from(sim, SITE_A) == (True, None)


async def test_the_control_api_takes_clients(sim: PortalSimulator) -> None:
    def post(spec: dict[str, object]) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(sim.control_url + "/_sim/mode", json.dumps(spec).encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    status, state = await _in_thread(post, {"mode": "error500", "endpoints": ["public"], "clients": [SITE_A]})
    assert status == 200 and state["by_client"] == {"public": {SITE_A: "error500"}}
    status, error = await _in_thread(post, {"mode": "error500", "clients": ["site-a"]})
    assert status == 400 and "clients must be IP addresses" in str(error["error"])


async def _in_thread(fn: Callable[..., T], *args: object) -> T:
    return await asyncio.to_thread(fn, *args)  # the simulator runs on this test's loop


def test_an_address_not_of_this_machine_is_named_at_start() -> None:
    # 192.0.2.0/24 is TEST-NET-1: never assigned to a host, so binding fails (no packet is sent).
    problem = source_address_problem(ProbeSettings(source_address="192.0.2.55"))
    assert problem is not None and problem.startswith("probe.source_address: 192.0.2.55 is not an address of this")
    assert "ip addr" in problem
    assert source_address_problem(ProbeSettings(source_address=SITE_A)) is None
    assert source_address_problem(ProbeSettings()) is None


def test_the_source_address_must_be_an_ip_address() -> None:
    with pytest.raises(ValidationError) as info:
        ProbeSettings(source_address="eth0")
    assert '"eth0" is not an IP address of this machine' in str(info.value)
    assert ProbeSettings(source_address="::1").source_address == "::1"
