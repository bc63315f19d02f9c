"""A store that cannot write (a full disk) never stops failover: the orchestrator decides and switches
from memory, staff hear of the store once, and everything is written once the store can write."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest

from failover.resilient import ALERT_AFTER, REPLAY_EVERY, ResilientStore
from tests.failover.test_orchestrator import PORTAL, Rig
from watchdog.verdict import Health

pytestmark = pytest.mark.anyio


class DiskFull:
    """Makes every write transaction of a store fail as SQLite does on a full disk; reads go on."""

    def __init__(self, store: ResilientStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        real_tx = store.sync._write

        @contextmanager
        def tx(fenced: bool = False) -> Iterator[Any]:
            if self.full:
                raise sqlite3.OperationalError("database or disk is full")
            with real_tx(fenced) as db:
                yield db

        monkeypatch.setattr(store.sync, "_write", tx)


@pytest.fixture
def rig(tmp_path: Any, clock: Any) -> Rig:
    return Rig(tmp_path, str(tmp_path / "pg.db"), clock)


@pytest.fixture
def disk(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> DiskFull:
    return DiskFull(rig.store, monkeypatch)


def sample(rig: Rig, name: str) -> float:
    if name == "up":  # portalguard_store_up: what the StoreDown alert watches
        return rig.metrics.store_up._value.get()
    return rig.metrics.store_writable._value.get() if name == "writable" else float(rig.store.health.errors)


async def test_a_full_disk_still_switches_every_measure_and_tells_staff_once(rig: Rig, disk: DiskFull) -> None:
    await rig.tick()  # healthy, written
    disk.full = True
    rig.health = Health.DOWN
    await rig.tick()
    assert rig.page.on and rig.ads.on, "a failing write stopped the failover"
    assert (await rig.store.portal(PORTAL)).failover and (await rig.store.portal(PORTAL)).incident == 1
    assert not rig.store.sync.portal(PORTAL).failover, "nothing could be written"
    assert sample(rig, "writable") == 0 and sample(rig, "up") == 0 and sample(rig, "errors") > 0
    for _ in range(5):
        await rig.tick()
    assert [s[0] for s in rig.staff.sent] == ["store_failing"]
    assert "full" in str(rig.staff.sent[0][2]["error"])
    assert rig.page.calls.count("apply") == 1 and rig.ads.calls.count("apply") == 1, "re-applied from a stale row"


async def test_what_was_kept_in_memory_is_written_in_order_once_the_disk_has_room(rig: Rig, disk: DiskFull) -> None:
    disk.full = True
    rig.health = Health.DOWN
    await rig.tick()
    rig.health = Health.UP
    await rig.tick(301)  # on and off again while nothing can be written
    assert not rig.page.on
    disk.full = False
    await rig.tick(REPLAY_EVERY)
    row = rig.store.sync.portal(PORTAL)
    assert not row.failover and row.incident == 1, "the switches were not replayed in order"
    assert (rig.row("ads").desired, rig.row("ads").observed) == ("off", "off")
    assert rig.store.pending == 0 and sample(rig, "writable") == 1 and sample(rig, "up") == 1
    # The next outage is a new incident, in memory and in the file alike.
    rig.health = Health.DOWN
    await rig.tick()
    assert rig.store.sync.portal(PORTAL).incident == 2 == (await rig.store.portal(PORTAL)).incident
    assert [s[0] for s in rig.staff.sent] == ["store_failing", "store_restored"]
    kept = [c for c in rig.staff.delivered if c.endswith(":store_failing")]
    assert kept and rig.store.sync.claimed(kept[0]), "a claim kept in memory was not written"


async def test_a_short_lock_pages_nobody(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    real_tx, calls = rig.store.sync._write, {"n": 0}

    @contextmanager
    def tx(fenced: bool = False) -> Iterator[Any]:
        calls["n"] += 1
        if calls["n"] <= 2:  # a backup held the lock for a moment
            raise sqlite3.OperationalError("database is locked")
        with real_tx(fenced) as db:
            yield db

    monkeypatch.setattr(rig.store.sync, "_write", tx)
    for _ in range(3):
        await rig.tick()
    assert sample(rig, "writable") == 1 and rig.staff.sent == []
    assert rig.store.health.failing_since is None
    assert ALERT_AFTER > 3


async def test_a_lock_that_does_not_clear_is_told_after_a_while(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    @contextmanager
    def locked(fenced: bool = False) -> Iterator[Any]:
        raise sqlite3.OperationalError("database is locked")
        yield

    monkeypatch.setattr(rig.store.sync, "_write", locked)
    rig.health = Health.DOWN
    await rig.tick()
    assert rig.page.on, "a locked store stopped the failover"
    await rig.tick(ALERT_AFTER / 2)
    assert rig.staff.sent == [], "a lock may clear by itself: not at once"
    await rig.tick(ALERT_AFTER / 2)
    assert [s[0] for s in rig.staff.sent] == ["store_failing"]


async def test_book_switches_to_the_fallback_page_from_memory_on_a_full_disk(
    tmp_path: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx
    from prometheus_client import CollectorRegistry

    from failover.metrics import FailoverMetrics
    from failover.web.app import create_app
    from tests.failover.test_web_support import PORTAL as WEB_PORTAL
    from tests.failover.test_web_support import make_settings

    settings = make_settings(tmp_path)
    registry = CollectorRegistry()
    metrics = FailoverMetrics(registry)
    store = ResilientStore(settings.store, clock, metrics)
    await store.load(settings.portals)
    DiskFull(store, monkeypatch).full = True

    def no_reads(*_a: Any) -> None:
        raise AssertionError("/book read the database")

    monkeypatch.setattr(store.sync, "portal", no_reads)
    app = create_app(settings, store, metrics, registry, None, clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        assert (await c.get(f"/book/{WEB_PORTAL}")).status_code == 302
        await store.set_page(WEB_PORTAL, True)  # the fallback_page action's apply, on the full disk
        assert (await c.get(f"/book/{WEB_PORTAL}")).status_code == 200
        health = await c.get("/healthz")
    assert health.status_code == 503 and "database or disk is full" in health.text
    assert store.pending == 1
    await store.close()


async def test_a_staff_message_queued_on_a_full_disk_is_delivered_from_memory_and_written_later(
    rig: Rig, disk: DiskFull
) -> None:
    from failover.store import OutboxRow

    now = rig.clock()
    rows = [OutboxRow("store:1:store_failing", "staff#0", "store_failing", None, "ja", "t", "b", now)]
    disk.full = True
    assert await rig.store.enqueue("store:1:store_failing", rows) is True
    assert await rig.store.enqueue("store:1:store_failing", rows) is False  # once, in memory too
    (due,) = await rig.store.due_outbox(now)  # delivered while nothing can be written
    await rig.store.update_outbox_delivery(replace(due, state="sent", attempts=1, sent_at=now))
    assert await rig.store.due_outbox(now) == []
    assert rig.store.sync.outbox() == [], "nothing could be written"
    disk.full = False
    await rig.tick(REPLAY_EVERY)
    await rig.store.flush()
    (written,) = rig.store.sync.outbox()
    assert (written.state, written.attempts) == ("sent", 1) and rig.store.sync.claimed("store:1:store_failing")
