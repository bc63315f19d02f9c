"""Fixtures every test may use: the asyncio backend for anyio's plugin, a fake clock, and a guard
that keeps every test on loopback."""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from tests.pg_support import postgres, store_location  # noqa: F401  (fixtures: a real PostgreSQL)

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # quiet gRPC's connection info lines in test output
# `status` caches its config view under $XDG_CACHE_HOME (failover/cli/status_config.py): in tests, a
# directory of their own (their processes inherit it), never the developer's ~/.cache.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="pg-test-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], True)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeClock:
    """Unix time that moves only when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# -- loopback only ---------------------------------------------------------------------------------
# Tests and the code under test may reach 127.0.0.0/8 and ::1 and nothing else. The guard sits under
# the socket module's own functions (this process only: child processes get loopback-only configs),
# refuses anything else before a packet leaves, and fails the test that tried.

BLOCKED: list[str] = []
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _loopback_host(host: object) -> bool:
    name = host.decode() if isinstance(host, bytes) else host
    if name is None:
        return True  # a listening socket's wildcard lookup
    if not isinstance(name, str):
        return False
    name = name.strip("[]").split("%", 1)[0].rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _allowed_address(sock: socket.socket, address: Any) -> bool:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return True  # AF_UNIX and the like never leave the machine
    return _loopback_host(address[0])


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _allowed_address(self, address):
        BLOCKED.append(f"connect {address!r}")
        raise ConnectionRefusedError(f"tests/conftest.py: only loopback may be reached, not {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if not _allowed_address(self, address):
        BLOCKED.append(f"connect {address!r}")
        return 111  # ECONNREFUSED
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else host
    if isinstance(name, str) and name.rstrip(".").lower().endswith(".invalid"):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")  # RFC 6761: never resolves
    if not _loopback_host(host):
        BLOCKED.append(f"resolve {host!r}")
        raise socket.gaierror(socket.EAI_NONAME, f"tests/conftest.py: only loopback names resolve, not {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo


@pytest.fixture
def blocked_attempts() -> list[str]:
    """What the guard refused so far (a test of the guard itself takes its own entries out)."""
    return BLOCKED


@pytest.fixture(autouse=True)
def loopback_only() -> Iterator[None]:
    before = len(BLOCKED)
    yield
    tried = BLOCKED[before:]
    if tried:
        pytest.fail(f"the test tried to reach beyond loopback: {tried}", pytrace=False)
