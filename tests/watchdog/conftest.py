"""Fixtures for the watchdog tests: the portal simulator, a probe client, a resolver that never
leaves the machine, and an event loop on virtual time for the scheduler.

(``anyio_backend`` comes from ``tests/conftest.py``.)
"""

from __future__ import annotations

import asyncio
import selectors
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from failover.fakes.portal_simulator import PortalSimulator
from watchdog.http_client import make_probe_client
from watchdog.targets import ProbeSettings

T = TypeVar("T")


@pytest.fixture
async def sim() -> AsyncIterator[PortalSimulator]:
    async with PortalSimulator() as simulator:
        yield simulator


@pytest.fixture
async def tls_sim() -> AsyncIterator[PortalSimulator]:
    async with PortalSimulator(tls=True) as simulator:
        yield simulator


@pytest.fixture
def settings() -> ProbeSettings:
    return ProbeSettings()


@pytest.fixture
async def client(settings: ProbeSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with make_probe_client(settings) as probe_client:
        yield probe_client


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (just released by us)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def offline_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``.invalid`` names fail to resolve without a query leaving the machine.

    glibc (without systemd-resolved) would send them to the configured nameserver; RFC 6761 says
    they never resolve, which is exactly what this answers. Other names resolve as usual.
    Returns the ``.invalid`` names looked up, so tests can check what was (not) resolved.
    """
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if isinstance(name, str) and name.rstrip(".").endswith(".invalid"):
            looked_up.append(name)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


# -- virtual time --------------------------------------------------------------------------------


class _JumpingSelector(selectors.DefaultSelector):
    """Polls for real I/O without blocking; when the loop would wait for a timer, jumps instead."""

    def __init__(self, advance: Callable[[float], None]) -> None:
        super().__init__()
        self._advance = advance

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        events = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:  # nothing scheduled at all: only real I/O can wake the loop
            return super().select(None)
        self._advance(timeout)
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` jumps to the next timer whenever nothing is ready:
    hours of scheduling run in milliseconds, and every timing is exact and repeatable."""

    def __init__(self) -> None:
        self._now = 0.0
        super().__init__(_JumpingSelector(self._advance))

    def time(self) -> float:
        return self._now

    def _advance(self, seconds: float) -> None:
        self._now += seconds


@pytest.fixture
def virtual_time() -> Iterator[Callable[[Callable[[], Awaitable[T]]], T]]:
    """``virtual_time(main)`` runs the coroutine function ``main`` on a ``VirtualClockLoop``."""
    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:

        def run(main: Callable[[], Awaitable[T]]) -> T:
            return runner.run(main())

        yield run
