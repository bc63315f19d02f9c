"""The http probe against the portal simulator on 127.0.0.1: every failure kind it can report."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from failover.fakes.portal_simulator import PortalSimulator
from watchdog.http_client import make_probe_client
from watchdog.probes import PROBES, run_probe
from watchdog.probes.fetch import read_capped
from watchdog.probes.http import probe_http
from watchdog.result import FailureKind
from watchdog.targets import Endpoint, Expect, ProbeSettings

pytestmark = pytest.mark.anyio

SHORT = 0.3  # seconds: the timeout of probes that are meant to time out


def booking(url: str, **kwargs: object) -> Endpoint:
    return Endpoint.model_validate(
        {"url": url, "expect": {"contains": ["さくら歯科"], "not_contains": ["メンテナンス中"]}, **kwargs}
    )


async def test_healthy_page_is_ok(sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings):
    result = await probe_http(client, booking(sim.url("public")), 2.0, settings)
    assert result.ok, result
    assert result.status == 200
    assert result.tls_expiry is None  # plain http
    assert 0 < result.duration < 2.0
    assert sim.request_count("public") == 1


@dataclass(frozen=True)
class Case:
    kind: FailureKind
    detail: str  # expected in the detail
    mode: str | None = None  # simulator mode of the public endpoint
    url: Callable[[PortalSimulator, int], str] = lambda sim, port: sim.url("public")
    endpoint: dict[str, object] = field(default_factory=dict)
    status: int | None = None
    timeout: float = 2.0


CASES = {
    "http_status": Case(FailureKind.HTTP_STATUS, "HTTP 500", mode="error500", status=500),
    "content": Case(
        FailureKind.CONTENT,
        "missing text 'ひまわり歯科'",
        endpoint={"expect": {"contains": ["ひまわり歯科"]}},
        status=200,
    ),
    "maintenance": Case(FailureKind.MAINTENANCE, "'メンテナンス中'", mode="maintenance", status=200),
    "redirect": Case(FailureKind.REDIRECT, "redirect to other host error.invalid", mode="redirect", status=302),
    "timeout-hang": Case(FailureKind.TIMEOUT, f"timed out after {SHORT:g}s", mode="hang", timeout=SHORT),
    "timeout-slow": Case(FailureKind.TIMEOUT, "timed out", mode="slow", timeout=SHORT),
    # Headers at once, then a byte at a time: only a deadline over the whole probe stops it.
    "timeout-trickle": Case(FailureKind.TIMEOUT, "timed out", mode="trickle", timeout=SHORT, status=200),
    "connect-refused": Case(FailureKind.CONNECT, "connection refused", mode="refuse"),
    "connect-closed-port": Case(
        FailureKind.CONNECT, "connection refused", url=lambda sim, port: f"http://127.0.0.1:{port}/"
    ),
    "dns": Case(FailureKind.DNS, "DNS lookup failed", url=lambda sim, port: "http://portal.invalid/"),
    "tls-plain-server": Case(
        FailureKind.TLS, "TLS handshake failed", url=lambda sim, port: sim.url("public").replace("http:", "https:")
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_failure_kinds(
    case: Case, sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings, closed_port: int
):
    if case.mode is not None:
        sim.set_mode(case.mode, endpoints=("public",), delay=10.0)
    endpoint = booking(case.url(sim, closed_port), **case.endpoint)
    result = await probe_http(client, endpoint, case.timeout, settings)
    assert not result.ok
    assert result.error_kind is case.kind, result
    assert case.detail in result.detail
    assert result.status == case.status
    assert result.duration < case.timeout + 0.2  # bounded by the probe's own timeout


async def test_maintenance_is_reported_even_with_an_error_status(
    sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings
):
    sim.set_mode("maintenance", endpoints=("public",))
    endpoint = booking(sim.url("public"), expect={"status": [204], "not_contains": ["メンテナンス中"]})
    result = await probe_http(client, endpoint, 2.0, settings)
    assert result.error_kind is FailureKind.MAINTENANCE


async def test_redirects_on_the_same_host_are_followed(
    sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings
):
    # Without a login the dashboard sends us (303) to the login page on the same host.
    endpoint = Endpoint(url=sim.url("admin", "/admin/dashboard"), expect=Expect(contains=["ログイン"]))
    result = await probe_http(client, endpoint, 2.0, settings)
    assert result.ok, result
    assert result.status == 200
    assert sim.request_count("admin") == 2


async def test_redirect_to_an_allowed_host_is_followed(
    sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings, offline_dns: list[str]
):
    sim.set_mode("redirect", endpoints=("public",))
    endpoint = booking(sim.url("public"), allow_redirect_hosts=["ERROR.invalid"])
    result = await probe_http(client, endpoint, 2.0, settings)
    # Followed to error.invalid, which does not resolve.
    assert result.error_kind is FailureKind.DNS
    assert offline_dns == ["error.invalid"]


async def test_a_redirect_to_another_host_is_not_followed(
    sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings, offline_dns: list[str]
):
    sim.set_mode("redirect", endpoints=("public",))
    result = await probe_http(client, booking(sim.url("public")), 2.0, settings)
    assert result.error_kind is FailureKind.REDIRECT
    assert offline_dns == []  # not even resolved


async def test_details_never_carry_the_query_string(
    sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings, closed_port: int
):
    for mode in ("error500", "redirect", "hang"):
        sim.set_mode(mode, endpoints=("public",))
        result = await probe_http(client, booking(sim.url("public") + "?token=s3cret"), SHORT, settings)
        assert not result.ok
        assert "s3cret" not in result.detail
    result = await probe_http(client, booking(f"http://127.0.0.1:{closed_port}/?token=s3cret"), SHORT, settings)
    assert "s3cret" not in result.detail and "127.0.0.1" not in result.detail


async def test_the_body_is_read_only_up_to_the_cap():
    served: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for index in range(1000):
            served.append(index)
            yield b"x" * 1024

    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=endless()))
    async with httpx.AsyncClient(transport=transport) as mock, mock.stream("GET", "http://127.0.0.1/") as response:
        body = await read_capped(response, 4096)
    assert len(body) == 4096
    assert len(served) <= 5  # stopped reading right after the cap


async def test_text_past_the_body_cap_is_not_seen(client: httpx.AsyncClient, settings: ProbeSettings):
    # A long clinic name pushes the booking button ("予約する") past the first KiB of the page.
    async with PortalSimulator(clinic_name="さくら歯科" + "あ" * 400) as long_page:
        endpoint = Endpoint(url=long_page.url("public"), expect=Expect(contains=["予約する"]))
        assert (await probe_http(client, endpoint, 2.0, settings)).ok
        capped = await probe_http(client, endpoint, 2.0, ProbeSettings(max_body_bytes=1024))
    assert capped.error_kind is FailureKind.CONTENT


async def test_probe_client_defaults(settings: ProbeSettings):
    async with make_probe_client(settings) as probe_client:
        assert probe_client.headers["user-agent"] == settings.user_agent
        assert probe_client.follow_redirects is False


async def test_run_probe_dispatches_by_kind(sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings):
    assert set(PROBES) == {"http", "login", "canary"}
    result = await run_probe(client, "http", booking(sim.url("public")), 2.0, settings)
    assert result.ok
    with pytest.raises(ValueError, match="unknown probe kind 'ftp'"):
        await run_probe(client, "ftp", booking(sim.url("public")), 2.0, settings)


async def test_every_probe_uses_its_own_connection_and_closes_it(
    sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings
):
    endpoint = booking(sim.url("public"))
    results = await asyncio.gather(*(probe_http(client, endpoint, 2.0, settings) for _ in range(20)))
    assert all(result.ok for result in results)
    async with asyncio.timeout(2.0):
        await sim.wait_idle()  # the server saw every connection closed
    sim.set_mode("hang", endpoints=("public",))
    assert (await probe_http(client, endpoint, 0.2, settings)).error_kind is FailureKind.TIMEOUT
    async with asyncio.timeout(2.0):
        await sim.wait_idle()  # the timed-out probe closed its connection too


async def test_a_redirect_loop_ends_after_five_hops(settings: ProbeSettings):
    # A loop the simulator has no mode for: a mock transport stands in for the server.
    hops: list[str] = []

    def loop(request: httpx.Request) -> httpx.Response:
        hops.append(request.url.path)
        return httpx.Response(302, headers={"Location": f"/hop{len(hops)}"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(loop)) as mock:
        result = await probe_http(mock, Endpoint(url="http://127.0.0.1/start"), 2.0, settings)
    assert result.error_kind is FailureKind.REDIRECT
    assert result.detail == "more than 5 redirects"
    assert len(hops) == 6
