"""A store damaged under the running service (pages zeroed, as a failing disk or a bad copy does):
``/book`` still redirects from memory, SQLite's ``PRAGMA quick_check`` confirms the damage, and staff,
``/healthz`` and the log say to restore from a backup — once."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from failover.resilient import CHECK_DAMAGE_EVERY
from tests.failover.test_orchestrator import PORTAL, Rig

pytestmark = pytest.mark.anyio


def zero_pages(path: Path) -> None:
    """Everything in the file after its first page, zeroed: the schema and the rows are gone."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the rows are in the main file now
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(4096)
        f.write(b"\0" * (size - 4096))


async def settle(rig: Rig) -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)
    await rig.tick(0)


async def test_a_damaged_store_is_found_reported_once_and_book_still_redirects(tmp_path: Any, clock: Any) -> None:
    rig = Rig(tmp_path, str(tmp_path / "pg.db"), clock)
    await rig.store.load([PORTAL])
    await rig.tick()
    assert rig.store.health.damaged is None and rig.metrics.store_damaged._value.get() == 0.0
    zero_pages(Path(rig.settings.store))
    # A fresh connection sees the damage (the service's own connections would at their next read).
    assert rig.store.sync.damage() is not None

    assert not await rig.store.writable()  # what /healthz asks
    await settle(rig)
    assert rig.store.health.damaged is not None, rig.store.health.last_error
    assert rig.metrics.store_damaged._value.get() == 1.0  # portalguard_store_damaged
    assert not (await rig.store.portal(PORTAL)).page_on  # answered from memory: /book redirects

    for _ in range(3):
        await rig.tick(CHECK_DAMAGE_EVERY)
        await rig.store.writable()
    topics = [s[0] for s in rig.staff.sent]
    assert topics.count("store_damaged") == 1 and "store_failing" not in topics, topics
    await rig.store.close()
