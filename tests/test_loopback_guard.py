"""The test suite's own guard: nothing in a test process reaches beyond loopback."""

from __future__ import annotations

import socket

import httpx
import pytest

# 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never routed. The guard refuses it before a packet leaves.
OUTSIDE = "192.0.2.1"


def test_connect_beyond_loopback_is_refused_and_recorded(blocked_attempts: list[str]) -> None:
    before = len(blocked_attempts)
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError, match="only loopback"):
        sock.connect((OUTSIDE, 80))
    with socket.socket() as sock:
        assert sock.connect_ex((OUTSIDE, 80)) != 0
    assert len(blocked_attempts) == before + 2
    del blocked_attempts[before:]  # this test meant it


def test_names_other_than_loopback_do_not_resolve(blocked_attempts: list[str]) -> None:
    before = len(blocked_attempts)
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("portal.example.jp", 443)
    with pytest.raises(httpx.ConnectError):
        httpx.get("https://portal.example.jp/", timeout=2)
    assert blocked_attempts[before:], "the lookups were not recorded"
    del blocked_attempts[before:]


def test_loopback_still_works() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
    assert socket.getaddrinfo("localhost", 80)
