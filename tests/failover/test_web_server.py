"""The web server's connection guards: the descriptor budget, the caps, the header and body deadlines.

The deadlines are checked against a real uvicorn server on 127.0.0.1 with short timeouts (tenths of a
second), with raw sockets playing the slow client. The whole-process attack is in tests/e2e.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from failover.settings import ServerSettings
from failover.web.server import (
    FRESH_GRACE,
    METRICS_CONNECTIONS,
    RESERVED_FDS,
    ConnectionGuard,
    ServiceError,
    bind,
    burst_margin,
    http_server,
    web_connection_limit,
)

pytestmark = pytest.mark.anyio


# -- the descriptor budget --------------------------------------------------------------------------


def test_the_default_total_leaves_the_reserve_free() -> None:
    for limit in (256, 1024, 65536):
        total = web_connection_limit(limit, None)
        assert total + burst_margin(total) <= limit - RESERVED_FDS - METRICS_CONNECTIONS
    assert web_connection_limit(256, None) == 89
    assert web_connection_limit(1 << 20, None) == 4096  # far more than a clinic needs, memory too


def test_a_configured_total_above_the_budget_is_refused_naming_the_key_and_the_fix() -> None:
    assert web_connection_limit(1024, 500) == 500
    with pytest.raises(ServiceError, match=r"^server\.max_connections: 1000 .* at most 704, .*LimitNOFILE"):
        web_connection_limit(1024, 1000)


def test_a_descriptor_limit_too_low_to_serve_is_refused() -> None:
    with pytest.raises(ServiceError, match=r"only 100 file descriptors .*LimitNOFILE=65536"):
        web_connection_limit(100, None)


# -- the guard --------------------------------------------------------------------------------------


@dataclass(eq=False)
class FakeConn:
    name: str
    shed_called: bool = False

    def shed(self) -> None:
        self.shed_called = True


def test_per_client_cap_refuses_the_next_connection_from_that_address_only() -> None:
    guard = ConnectionGuard(max_total=100, max_per_client=2)
    a = [FakeConn(f"a{i}") for i in range(3)]
    assert guard.admit(a[0], "192.0.2.1") and guard.admit(a[1], "192.0.2.1")
    assert not guard.admit(a[2], "192.0.2.1")
    assert guard.admit(FakeConn("b"), "192.0.2.2")
    guard.release(a[0])
    assert guard.admit(a[2], "192.0.2.1")  # a slot freed is a slot again
    assert guard.stats.refused_per_client == 1 and guard.open == 3


class Later:
    """Stands in for loop.call_later: the test runs the scheduled trim when it likes."""

    def __init__(self) -> None:
        self.calls: list[object] = []

    def __call__(self, delay: float, fn: object) -> None:
        self.calls.append(fn)


def test_trusted_proxies_are_exempt_from_the_per_client_cap_not_from_the_total() -> None:
    guard = ConnectionGuard(max_total=5, max_per_client=1, exempt=["10.0.0.0/24", "::1"], later=Later())
    proxied = [FakeConn(str(i)) for i in range(guard.hard_max + 1)]
    for conn in proxied[:-1]:
        assert guard.admit(conn, "10.0.0.7")
        guard.busy(conn)  # all serving requests: none may be shed
    assert not guard.admit(proxied[-1], "10.0.0.7")
    assert guard.stats.refused_full == 1 and guard.count("10.0.0.7") == guard.hard_max


def test_over_the_total_cap_the_oldest_slow_connection_is_shed_before_any_fresh_or_busy_one() -> None:
    later = Later()
    guard = ConnectionGuard(max_total=4, max_per_client=10, later=later)
    fresh, slow_old, serving, slow_new = (FakeConn(n) for n in ("fresh", "slow-old", "serving", "slow-new"))
    for conn in (fresh, slow_old, serving, slow_new):
        assert guard.admit(conn, "192.0.2.9")
    guard.slow(slow_old)
    guard.busy(serving)
    guard.slow(slow_new)
    patient = FakeConn("patient")
    assert guard.admit(patient, "198.51.100.1")  # taken at once; the trim comes when reads are done
    assert guard.open == 5 and len(later.calls) == 1
    guard.trim()
    assert [c.shed_called for c in (fresh, slow_old, serving, slow_new, patient)] == [False, True, False, False, False]
    assert guard.open == 4 and guard.count("192.0.2.9") == 3 and guard.stats.shed == 1
    guard.release(slow_old)  # its connection_lost comes later: counted once only
    assert guard.open == 4 and guard.count("192.0.2.9") == 3


def test_at_the_hard_cap_a_slow_connection_is_shed_at_once() -> None:
    guard = ConnectionGuard(max_total=4, max_per_client=100, later=Later())
    conns = [FakeConn(str(i)) for i in range(guard.hard_max)]
    for conn in conns:
        assert guard.admit(conn, "192.0.2.9")
    guard.slow(conns[3])
    assert guard.admit(FakeConn("new"), "192.0.2.10")
    assert conns[3].shed_called and guard.open == guard.hard_max


def test_with_no_slow_connection_the_oldest_fresh_one_is_shed_once_past_its_grace() -> None:
    now = [100.0]
    guard = ConnectionGuard(max_total=2, max_per_client=10, clock=lambda: now[0], later=Later())
    first, second = FakeConn("first"), FakeConn("second")
    guard.admit(first, "192.0.2.1")
    guard.admit(second, "192.0.2.1")
    now[0] += FRESH_GRACE - 0.1  # their headers may still be on the way: nothing is shed
    guard.trim()
    assert guard.open == 2
    assert guard.admit(FakeConn("third"), "192.0.2.1")
    guard.trim()
    assert not first.shed_called and guard.open == 3
    now[0] += 0.1
    guard.trim()
    assert first.shed_called and not second.shed_called and guard.open == 2 and guard.stats.shed == 1


def test_an_idle_keep_alive_connection_is_slow_and_goes_to_the_young_end() -> None:
    guard = ConnectionGuard(max_total=2, max_per_client=10, later=Later())
    first, second = FakeConn("first"), FakeConn("second")
    guard.admit(first, "192.0.2.1")
    guard.admit(second, "192.0.2.1")
    guard.slow(second)
    guard.busy(first)
    guard.slow(first)  # answered, now idle until its next request: slow, younger than `second`
    guard.admit(FakeConn("third"), "192.0.2.1")
    guard.trim()
    assert second.shed_called and not first.shed_called


# -- deadlines on a real server ---------------------------------------------------------------------


async def _echo(request: Request) -> PlainTextResponse:
    body = await request.body()
    return PlainTextResponse(f"ok {len(body)}")


@dataclass
class Served:
    port: int
    guard: ConnectionGuard


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    settings = ServerSettings(header_timeout="400ms", body_timeout="400ms", max_connections_per_client=3)
    guard = ConnectionGuard(max_total=6, max_per_client=3, exempt=[])  # hard_max 14
    server = http_server(Starlette(routes=[Route("/", _echo, methods=["GET", "POST"])]), settings, guard)
    sock = bind("server.listen", "127.0.0.1:0")
    port = sock.getsockname()[1]
    task = asyncio.create_task(server.serve(sockets=[sock]))  # listening already: clients wait in the backlog
    try:
        yield Served(port, guard)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def _connect(port: int, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def _closed_after(reader: asyncio.StreamReader, within: float) -> float:
    """Seconds until the server closed the connection (reading whatever it sent); fails past ``within``."""
    start = time.monotonic()
    try:
        while await asyncio.wait_for(reader.read(4096), within):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - start


async def test_headers_trickled_byte_by_byte_are_cut_off_at_the_header_timeout(served: Served) -> None:
    reader, writer = await _connect(served.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    start = time.monotonic()

    async def trickle() -> None:
        for _ in range(20):  # every byte would reset a per-byte timer: the deadline is for all headers
            await asyncio.sleep(0.05)
            writer.write(b"X")

    trickler = asyncio.create_task(trickle())
    await _closed_after(reader, 3)
    trickler.cancel()
    elapsed = time.monotonic() - start
    assert 0.3 < elapsed < 1.0, elapsed
    assert served.guard.stats.header_timeouts == 1
    await asyncio.sleep(0.05)
    assert served.guard.open == 0


async def test_a_stalled_body_is_cut_off_at_the_body_timeout(served: Served) -> None:
    reader, writer = await _connect(served.port)
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf")
    elapsed = await _closed_after(reader, 3)
    assert 0.3 < elapsed < 1.0 and served.guard.stats.body_timeouts == 1


async def test_prompt_requests_are_served_and_keep_alive_then_header_deadline_again(served: Served) -> None:
    reader, writer = await _connect(served.port)
    for _ in range(3):  # well within the deadlines, each time
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        assert head.startswith(b"HTTP/1.1 200")
        assert await reader.readexactly(len(b"ok 5")) == b"ok 5"
        await asyncio.sleep(0.3)  # three of these outlast one header_timeout: the deadline is per request
    writer.write(b"GET / HTTP/1.1\r\n")  # then a slow one on the same connection
    elapsed = await _closed_after(reader, 3)
    assert elapsed < 1.0 and served.guard.stats.header_timeouts == 1


async def test_over_the_per_client_cap_a_connection_is_closed_at_once(served: Served) -> None:
    held = [await _connect(served.port, "127.0.0.2") for _ in range(3)]
    reader, _ = await _connect(served.port, "127.0.0.2")
    assert await _closed_after(reader, 1) < 0.2
    other, writer = await _connect(served.port, "127.0.0.3")  # another address is not affected
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await asyncio.wait_for(other.readuntil(b"\r\n\r\n"), 2)).startswith(b"HTTP/1.1 200")
    assert served.guard.stats.refused_per_client == 1
    for _, w in held:
        w.close()


async def test_when_full_of_slow_connections_a_patient_is_still_answered(served: Served) -> None:
    slow = [await _connect(served.port, f"127.0.0.{10 + i // 3}") for i in range(served.guard.hard_max)]
    for _, w in slow:
        w.write(b"GET / HTTP/1.1\r\n")
    await asyncio.sleep(0.2)  # read, found slow, trimmed back to max_total
    assert served.guard.open == 6 and served.guard.stats.shed == served.guard.hard_max - 6
    reader, writer = await _connect(served.port, "127.0.0.20")
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 1)).startswith(b"HTTP/1.1 200")
    assert await _closed_after(slow[0][0], 1) < 0.2  # the oldest slow ones made room


def test_bind_names_the_key_when_the_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServiceError, match=rf"^server\.listen: cannot listen on 127\.0\.0\.1:{port}: "):
            bind("server.listen", f"127.0.0.1:{port}")
