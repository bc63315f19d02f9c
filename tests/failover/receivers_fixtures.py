"""Fixtures for the staff/notify/webhook tests: real local receivers, a store on disk that can be
opened again (a restart), an HTTP client. Loaded by those modules with ``pytest_plugins``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from failover.fakes.receivers import JsonReceiver, SmtpReceiver
from failover.store import AsyncStore


@pytest.fixture
async def hook() -> AsyncIterator[JsonReceiver]:
    async with JsonReceiver() as receiver:
        yield receiver


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpReceiver]:
    async with SmtpReceiver() as receiver:
        yield receiver


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "s.db"


@pytest.fixture
async def open_store(db_path: Path, clock: Callable[[], float]) -> AsyncIterator[Callable[[], AsyncStore]]:
    """Opens the same store file again: a restart of the service. (Tests set up and assert through
    ``.sync``; the code under test uses the async API.)"""
    opened: list[AsyncStore] = []

    def open_one() -> AsyncStore:
        opened.append(AsyncStore(db_path, clock))
        return opened[-1]

    yield open_one
    for store in opened:
        await store.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client
