"""The portal simulator itself: pages, login flow, every mode, the control API, the CLI process."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from failover.fakes.portal_simulator import (
    CANARY_PATH,
    DASHBOARD_PATH,
    MODES,
    REDIRECT_TARGET,
    PortalSimulator,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sim() -> AsyncIterator[PortalSimulator]:
    async with PortalSimulator() as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
        yield client


async def test_public_booking_page(sim: PortalSimulator, http: httpx.AsyncClient):
    response = await http.get(sim.url("public"))
    assert response.status_code == 200
    assert "さくら歯科" in response.text and "<form" in response.text
    assert (await http.get(sim.url("public", "/clinic/4711"))).status_code == 200  # any path
    assert (await http.get(sim.url("public", CANARY_PATH))).status_code == 204
    assert sim.request_count("public") == 3 and sim.request_count("admin") == 0


async def test_keep_alive_connections_are_served(sim: PortalSimulator, http: httpx.AsyncClient):
    for _ in range(3):
        assert (await http.get(sim.url("public"))).status_code == 200
    assert sim.request_count() == 3


async def _login(http: httpx.AsyncClient, sim: PortalSimulator, **overrides: str) -> httpx.Response:
    page = await http.get(sim.url("admin"))
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    username, password = sim.credentials
    form = {"csrf_token": csrf, "username": username, "password": password, **overrides}
    return await http.post(sim.url("admin"), data=form, follow_redirects=True)


async def test_login_flow(sim: PortalSimulator, http: httpx.AsyncClient):
    assert (await http.get(sim.url("admin", DASHBOARD_PATH))).status_code == 303  # not logged in
    response = await _login(http, sim)
    assert response.url.path == DASHBOARD_PATH
    assert "ログアウト" in response.text
    assert sim.last_login_error is None


LOGIN_FAILURES = {
    "credentials": {"password": "nope"},
    "csrf": {"csrf_token": "forged"},
}


@pytest.mark.parametrize("overrides", LOGIN_FAILURES.values(), ids=LOGIN_FAILURES.keys())
async def test_login_checks(overrides: dict[str, str], sim: PortalSimulator, http: httpx.AsyncClient):
    response = await _login(http, sim, **overrides)
    assert "ログアウト" not in response.text and "正しくありません" in response.text
    assert sim.last_login_error == next(k for k, v in LOGIN_FAILURES.items() if v == overrides)


async def test_login_needs_the_session_cookie(sim: PortalSimulator, http: httpx.AsyncClient):
    page = await http.get(sim.url("admin"))
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    username, password = sim.credentials
    http.cookies.clear()
    await http.post(sim.url("admin"), data={"csrf_token": csrf, "username": username, "password": password})
    assert sim.last_login_error == "session"


async def test_login_rejected_mode(sim: PortalSimulator, http: httpx.AsyncClient):
    sim.set_mode("login_rejected", endpoints=("admin",))
    response = await _login(http, sim)
    assert "ログアウト" not in response.text
    assert sim.last_login_error == "rejected"


STATUS_MODES = {
    "error500": (500, "Internal Server Error"),
    "maintenance": (200, "メンテナンス中"),
    "redirect": (302, ""),
}


@pytest.mark.parametrize(("mode", "expected"), STATUS_MODES.items(), ids=STATUS_MODES.keys())
@pytest.mark.parametrize("endpoint", ["public", "admin"])
async def test_modes_apply_per_endpoint(
    mode: str, expected: tuple[int, str], endpoint: str, sim: PortalSimulator, http: httpx.AsyncClient
):
    sim.set_mode(mode, endpoints=(endpoint,))
    response = await http.get(sim.url(endpoint))
    assert response.status_code == expected[0]
    assert expected[1] in response.text
    if mode == "redirect":
        assert response.headers["location"] == REDIRECT_TARGET
    other = "admin" if endpoint == "public" else "public"
    assert (await http.get(sim.url(other))).status_code == 200  # the other endpoint is unaffected


async def test_hang_never_answers(sim: PortalSimulator, http: httpx.AsyncClient):
    sim.set_mode("hang")
    with pytest.raises(httpx.ReadTimeout):
        await http.get(sim.url("public"), timeout=0.2)
    assert sim.request_count("public") == 1


async def test_slow_answers_after_the_delay(sim: PortalSimulator, http: httpx.AsyncClient):
    sim.set_mode("slow", endpoints=("public",), delay=0.2)
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert (await http.get(sim.url("public"))).status_code == 200
    assert loop.time() - start >= 0.2


async def test_trickle_sends_headers_then_the_body_slowly(sim: PortalSimulator, http: httpx.AsyncClient):
    sim.set_mode("trickle", endpoints=("public",), delay=1.0)  # a byte per 10 ms
    received = bytearray()
    async with http.stream("GET", sim.url("public")) as response:
        assert response.status_code == 200
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                async for chunk in response.aiter_raw():
                    received += chunk
    assert 0 < len(received) < int(response.headers["content-length"]) / 4


async def test_refuse_closes_the_port_and_reopens_it(sim: PortalSimulator, http: httpx.AsyncClient):
    url = sim.url("public")
    sim.set_mode("refuse", endpoints=("public",))
    with pytest.raises(httpx.ConnectError):
        await http.get(url)
    assert (await http.get(sim.url("admin"))).status_code == 200  # its own port stays open
    sim.set_mode("healthy", endpoints=("public",))
    assert sim.url("public") == url  # the same port again
    assert (await http.get(url)).status_code == 200


async def test_control_endpoint(sim: PortalSimulator, http: httpx.AsyncClient):
    response = await http.post(f"{sim.control_url}/_sim/mode", json={"mode": "refuse", "endpoints": ["public"]})
    assert response.status_code == 200
    assert response.json()["modes"] == {"public": "refuse", "admin": "healthy"}
    assert (await http.get(f"{sim.control_url}{CANARY_PATH}")).status_code == 204  # always up
    bad = await http.post(f"{sim.control_url}/_sim/mode", json={"mode": "sideways"})
    assert bad.status_code == 400 and "unknown mode 'sideways'" in bad.json()["error"]
    await http.post(f"{sim.control_url}/_sim/reset")
    state = (await http.get(f"{sim.control_url}/_sim/state")).json()
    assert state["modes"] == {"public": "healthy", "admin": "healthy"}
    assert (await http.get(sim.url("public"))).status_code == 200


def test_set_mode_validates():
    simulator = PortalSimulator()
    with pytest.raises(ValueError, match="unknown mode"):
        simulator.set_mode("down")
    with pytest.raises(ValueError, match="endpoints must be among public, admin"):
        simulator.set_mode("hang", endpoints=("booking",))
    assert set(MODES) >= {"healthy", "error500", "hang", "refuse", "maintenance", "redirect"}


async def test_tls_variant(http: httpx.AsyncClient):
    async with PortalSimulator(tls=True) as tls_sim:
        assert tls_sim.url().startswith("https://127.0.0.1:")
        async with httpx.AsyncClient(verify=tls_sim.client_ssl_context(), trust_env=False) as trusting:
            assert (await trusting.get(tls_sim.url())).status_code == 200
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await http.get(tls_sim.url())


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
async def test_ipv6_loopback(http: httpx.AsyncClient):
    async with PortalSimulator("::1") as sim6:
        assert sim6.url().startswith("http://[::1]:")
        assert (await http.get(sim6.url())).status_code == 200


async def test_many_connections_at_once(sim: PortalSimulator):
    async with httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0), trust_env=False) as fresh:
        responses = await asyncio.gather(*(fresh.get(sim.url("public", f"/clinic/{i}")) for i in range(200)))
    assert {r.status_code for r in responses} == {200}
    assert sim.request_count("public") == 200


def test_runs_as_a_process():
    command = [sys.executable, "-m", "failover.fakes.portal_simulator", "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            urls = json.loads(process.stdout.readline())
            httpx.post(f"{urls['control']}/_sim/mode", json={"mode": "error500"}, timeout=2.0, trust_env=False)
            assert httpx.get(urls["public"], timeout=2.0, trust_env=False).status_code == 500
        finally:
            process.terminate()
        assert process.wait(timeout=5) == 0
