"""Fixtures every test may use: the asyncio backend for anyio's plugin, and a fake clock."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # quiet gRPC's connection info lines in test output


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
