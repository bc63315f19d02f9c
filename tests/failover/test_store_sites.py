"""Several instances (sites) on one store, on both backends: the heartbeat and per-site verdicts, the
leader lease and its fencing token, and the fenced writes.

Proved here: the first lease is token 1; another site is told the holder while it runs; the holder
renews with its token kept; an expired lease, or one its own site restarts for, is taken with the
next token; a resigned lease is free at once. A write that makes an effect (claim, enqueue, failover
switch, action row, …) goes through with the current fence and raises ``FencedOut`` writing nothing
with a stale token, another site's lease, an expired lease or the follower's fence ``(site, 0)``;
fence None (the CLI) never checks. ``site_view`` ages sites and verdicts by the database's clock.
``store migrate`` leaves the runtime tables behind; the PostgreSQL service lock is one per site; the
service's journal drops a kept write the fence refuses, and ``forget_unwritten`` empties it.

Two ``Store`` instances on one location stand for two processes (two sites). The lease is timed on
the database's clock, which cannot be injected: expiry is waited for, with leases of 0.3 s.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from failover.resilient import ResilientStore
from failover.store import (
    ActionRow,
    AsyncStore,
    DatabaseServiceLock,
    FencedOut,
    OutboxRow,
    ReadOnlyStore,
    SiteBeat,
    Store,
    StoreInUseError,
)
from failover.store import schema as t
from failover.store.copy import RUNTIME_TABLES, copy_store, count, tables
from tests.failover.test_store_full import DiskFull
from tests.pg_support import PostgresServer

pytestmark = pytest.mark.anyio
T0 = 1_800_000_000.0
SHORT = 0.3  # a lease that runs out within a test
WAIT = 0.35  # just past it
LONG = 30.0  # a lease that does not


@pytest.fixture
def stores(store_location: str) -> Iterator[Callable[[], Store]]:
    """Opens stores on the test's location (each one a process of its own); closes them all."""
    opened: list[Store] = []

    def open_one() -> Store:
        opened.append(Store(store_location, clock=lambda: T0))
        return opened[-1]

    yield open_one
    for s in opened:
        s.close()


def outbox_row(claim: str = "k") -> OutboxRow:
    return OutboxRow(claim, "staff#0", "outage", "epark", "ja", "title", "body", T0)


def action_row() -> ActionRow:
    return ActionRow("epark", "ads", "on", "on", None, False, 1, 0.0, T0, T0)


FENCED: dict[str, Callable[[Store], object]] = {
    "claim": lambda s: s.claim("k"),
    "enqueue": lambda s: s.enqueue("q", [outbox_row("q")]),
    "set_failover": lambda s: s.set_failover("epark", True, "public: timeout"),
    "put_action": lambda s: s.put_action(action_row()),
    "set_page": lambda s: s.set_page("epark", True),
    "update_outbox_delivery": lambda s: s.update_outbox_delivery(outbox_row("q")),
    "requeue_interrupted_sends": lambda s: s.requeue_interrupted_sends(),
    "fence_check": lambda s: s.fence_check(),
}


def nothing_written(s: Store) -> None:
    """None of the fenced writes above left a row."""
    assert not s.claimed("k") and not s.claimed("q"), "a refused claim was written"
    assert s.outbox() == []
    assert not s.portal("epark").failover and not s.portal("epark").page_on
    assert s.action("epark", "ads").observed == "unknown"  # the default: no row
    with s._read() as conn:
        assert conn.execute(t.portal_state.select()).first() is None
        assert conn.execute(t.action_state.select()).first() is None


def refused_everywhere(s: Store) -> None:
    for name, write in FENCED.items():
        try:
            write(s)
        except FencedOut as err:
            assert "no longer holds the leader lease" in str(err), name
        else:
            pytest.fail(f"{name} went through a fence that no longer holds")
    nothing_written(s)


# -- the lease -------------------------------------------------------------------------------------


def test_the_first_lease_is_token_1_and_another_site_is_told_the_holder(stores: Callable[[], Store]) -> None:
    a, b = stores(), stores()
    assert a.lease() is None
    first = a.take_lease("tokyo", LONG, None)
    assert (first.site, first.token, first.held) == ("tokyo", 1, True)
    assert first.remaining == LONG
    other = b.take_lease("osaka", LONG, None)
    assert (other.site, other.token) == ("tokyo", 1), "another site got the lease (or a new token) while it runs"
    assert 0 < other.remaining <= LONG and other.since == first.since
    seen = b.lease()
    assert seen is not None and (seen.site, seen.token, seen.since) == ("tokyo", 1, first.since)
    assert LONG - 5 < seen.remaining <= LONG


def test_the_holder_renews_with_its_token_kept(stores: Callable[[], Store]) -> None:
    a = stores()
    first = a.take_lease("tokyo", SHORT, None)
    time.sleep(0.1)
    renewed = a.take_lease("tokyo", LONG, first.token)
    assert (renewed.site, renewed.token, renewed.since) == ("tokyo", 1, first.since)
    time.sleep(WAIT - 0.1)  # past the first term's expiry: the renewal moved it on
    lease = a.lease()
    assert lease is not None and lease.held and lease.remaining > LONG - 5 and lease.token == 1


def test_an_expired_lease_goes_to_another_site_with_the_next_token(stores: Callable[[], Store]) -> None:
    a, b = stores(), stores()
    a.take_lease("tokyo", SHORT, None)
    assert b.take_lease("osaka", SHORT, None).site == "tokyo"
    time.sleep(WAIT)
    expired = b.lease()
    assert expired is not None and not expired.held and expired.remaining <= 0
    taken = b.take_lease("osaka", LONG, None)
    assert (taken.site, taken.token, taken.held) == ("osaka", 2, True)
    assert taken.since > expired.since
    back = a.take_lease("tokyo", LONG, 1)  # the old holder, renewing with its old token
    assert (back.site, back.token) == ("osaka", 2), "a stale token renewed a lease another site holds"


def test_the_same_site_restarting_takes_its_lease_over_at_once(stores: Callable[[], Store]) -> None:
    a, restarted = stores(), stores()
    first = a.take_lease("tokyo", LONG, None)
    again = restarted.take_lease("tokyo", LONG, None)  # a new process of the same site: no token yet
    assert (again.site, again.token) == ("tokyo", first.token + 1)
    restarted.fence, a.fence = ("tokyo", again.token), ("tokyo", first.token)
    restarted.fence_check()
    with pytest.raises(FencedOut):
        a.fence_check()  # the old process's term is over
    assert stores().take_lease("osaka", LONG, None).site == "tokyo"


def test_a_resigned_lease_is_free_for_another_site_at_once(stores: Callable[[], Store]) -> None:
    a, b = stores(), stores()
    first = a.take_lease("tokyo", LONG, None)
    assert a.resign("osaka", first.token) is False, "another site resigned a lease it does not hold"
    assert a.resign("tokyo", first.token + 1) is False, "a wrong token resigned the lease"
    assert b.take_lease("osaka", LONG, None).site == "tokyo"
    assert a.resign("tokyo", first.token) is True
    lease = b.lease()
    assert lease is not None and not lease.held
    taken = b.take_lease("osaka", LONG, None)
    assert (taken.site, taken.token) == ("osaka", 2)


# -- fenced writes ---------------------------------------------------------------------------------


def test_fenced_writes_go_through_with_the_current_fence(stores: Callable[[], Store]) -> None:
    a = stores()
    lease = a.take_lease("tokyo", LONG, None)
    a.fence = ("tokyo", lease.token)
    assert a.claim("k") is True
    assert a.enqueue("q", [outbox_row("q")]) is True
    assert a.set_failover("epark", True, "public: timeout").failover
    a.put_action(action_row())
    a.set_page("epark", True)
    a.update_outbox_delivery(outbox_row("q"))
    assert a.requeue_interrupted_sends() == 0 and a.clear_permanent_errors() == 0
    a.fence_check()
    assert a.claimed("k") and [r.claim for r in a.outbox()] == ["q"]
    assert a.portal("epark").failover and a.portal("epark").page_on
    assert a.action("epark", "ads").observed == "on"


def test_a_stale_token_is_refused_and_writes_nothing(stores: Callable[[], Store]) -> None:
    old, restarted = stores(), stores()
    old.fence = ("tokyo", old.take_lease("tokyo", LONG, None).token)
    restarted.fence = ("tokyo", restarted.take_lease("tokyo", LONG, None).token)  # token 2: same site
    refused_everywhere(old)
    assert restarted.claim("other") is True


def test_another_sites_lease_is_refused_and_writes_nothing(stores: Callable[[], Store]) -> None:
    a, b = stores(), stores()
    b.take_lease("osaka", LONG, None)  # token 1, as tokyo's fence says: the site decides
    a.fence = ("tokyo", 1)
    refused_everywhere(a)


def test_an_expired_lease_is_refused_and_writes_nothing(stores: Callable[[], Store]) -> None:
    a = stores()
    a.fence = ("tokyo", a.take_lease("tokyo", SHORT, None).token)
    a.fence_check()  # holds now
    time.sleep(WAIT)  # nobody took it: it ran out all the same
    refused_everywhere(a)


def test_the_followers_fence_is_refused_with_or_without_a_lease(stores: Callable[[], Store]) -> None:
    a = stores()
    a.fence = ("tokyo", 0)
    refused_everywhere(a)  # no lease row at all
    a.take_lease("tokyo", LONG, None)  # held by this very site, but the fence was never given the token
    refused_everywhere(a)


def test_without_a_fence_the_cli_never_checks(stores: Callable[[], Store]) -> None:
    cli, leader = stores(), stores()
    assert cli.fence is None
    assert cli.claim("before-any-lease") is True
    leader.take_lease("osaka", LONG, None)
    assert cli.set_failover("epark", True, "operator").failover
    assert cli.claim("k") is True


def test_unfenced_writes_go_through_for_a_follower(stores: Callable[[], Store]) -> None:
    a = stores()
    a.fence = ("tokyo", 0)
    a.set_value("heartbeat", T0)
    a.set_verdict("epark", "down", T0)
    a.add_event("tick", "epark")
    assert a.value("heartbeat") == T0 and a.portal("epark").verdict == "down"
    # A human decision on a follower's console lets stopped actions try again: no effect of its own.
    assert a.clear_permanent_errors("epark") == 0


async def test_the_async_lease_runs_on_its_own_thread_past_a_busy_writer(store_location: str) -> None:
    store = AsyncStore(store_location, clock=lambda: T0)
    threads: list[str] = []
    real = store.sync.take_lease

    def noted(site: str, seconds: float, token: int | None) -> Any:
        threads.append(threading.current_thread().name)
        return real(site, seconds, token)

    store.sync.take_lease = noted  # type: ignore[method-assign]
    busy = threading.Event()
    try:
        blocked = asyncio.ensure_future(store._write(busy.wait, 5.0))  # the writer thread is stuck
        lease = await asyncio.wait_for(store.take_lease("tokyo", LONG, None), 2.0)
        assert (lease.site, lease.token) == ("tokyo", 1)
        assert threads and threads[0].startswith("store-lease")
        await asyncio.wait_for(store.beat(SiteBeat("tokyo", "h1", 1, 5.0, False)), 2.0)
        sites, _, held = await asyncio.wait_for(store.site_view(), 2.0)
        assert [s.site for s in sites] == ["tokyo"] and held is not None and held.token == 1
        assert not blocked.done()
        busy.set()
        await blocked
        store.sync.fence = ("tokyo", 0)
        with pytest.raises(FencedOut):
            await store.fence_check()
        assert await store.resign("tokyo", 1) is True
    finally:
        busy.set()
        await store.close()


# -- heartbeats and verdicts -----------------------------------------------------------------------


def test_a_beat_is_seen_alive_and_ages_on_the_database_clock(stores: Callable[[], Store]) -> None:
    a, reader = stores(), stores()
    a.beat(SiteBeat("tokyo", "h1", 100, SHORT, False, {"epark": ("up", T0)}))
    a.beat(SiteBeat("osaka", "h2", 200, 5.0, None))
    osaka, tokyo = reader.sites()
    seen = (tokyo.site, tokyo.host, tokyo.pid, tokyo.stale_after, tokyo.network_down)
    assert seen == ("tokyo", "h1", 100, SHORT, False)
    assert osaka.network_down is None
    assert 0 <= tokyo.age < SHORT and tokyo.alive
    assert tokyo.started == tokyo.last_seen
    time.sleep(WAIT)
    osaka, tokyo = reader.sites()
    assert tokyo.age > SHORT and not tokyo.alive, "a silent site is still alive"
    assert osaka.alive and osaka.age < 5.0
    a.beat(SiteBeat("tokyo", "h1", 100, SHORT, True))
    tokyo = reader.sites()[1]
    assert tokyo.alive and tokyo.network_down is True


def test_started_is_kept_across_beats_of_one_process_and_reset_by_a_new_one(stores: Callable[[], Store]) -> None:
    a = stores()
    a.beat(SiteBeat("tokyo", "h1", 100, 5.0, False))
    (first,) = a.sites()
    time.sleep(0.05)
    a.beat(SiteBeat("tokyo", "h1", 100, 5.0, False))
    (second,) = a.sites()
    assert second.started == first.started and second.last_seen > first.last_seen
    time.sleep(0.05)
    a.beat(SiteBeat("tokyo", "h1", 101, 5.0, False))  # restarted: a new PID
    (third,) = a.sites()
    assert third.pid == 101 and third.started == third.last_seen > second.last_seen
    time.sleep(0.05)
    a.beat(SiteBeat("tokyo", "h2", 101, 5.0, False))  # the same PID on another host: another process
    (fourth,) = a.sites()
    assert fourth.host == "h2" and fourth.started == fourth.last_seen > third.last_seen


def test_verdicts_are_upserted_per_portal_and_site(stores: Callable[[], Store]) -> None:
    a, b = stores(), stores()
    a.beat(SiteBeat("tokyo", "h1", 1, 5.0, False, {"epark": ("up", T0), "dentamap": ("up", T0)}))
    b.beat(SiteBeat("osaka", "h2", 2, 5.0, True, {"epark": ("down", T0 + 1)}))
    a.beat(SiteBeat("tokyo", "h1", 1, 5.0, False, {"epark": ("degraded", T0 + 2)}))
    got = [(v.portal, v.site, v.health, v.since) for v in a.site_verdicts()]
    assert got == [
        ("dentamap", "tokyo", "up", T0),  # not in the last beat: kept as it was
        ("epark", "osaka", "down", T0 + 1),
        ("epark", "tokyo", "degraded", T0 + 2),
    ]
    assert [v.site for v in a.site_verdicts("epark")] == ["osaka", "tokyo"]
    assert all(0 <= v.age < 5 for v in a.site_verdicts())
    sites, verdicts, lease = a.site_view()
    assert [s.site for s in sites] == ["osaka", "tokyo"] and len(verdicts) == 3 and lease is None


def test_status_reads_the_same_view_without_sqlalchemy(tmp_path: Path) -> None:
    path = tmp_path / "portalguard.db"
    store = Store(path, clock=lambda: T0)
    try:
        store.beat(SiteBeat("tokyo", "h1", 1, 5.0, None, {"epark": ("up", T0)}))
        store.take_lease("tokyo", LONG, None)
        full = store.site_view()
    finally:
        store.close()
    readonly = ReadOnlyStore.open(path, lambda: T0)
    assert readonly is not None
    try:
        sites, verdicts, lease = readonly.site_view()
    finally:
        readonly.close()
    assert [replace(s, age=0.0) for s in sites] == [replace(s, age=0.0) for s in full[0]]
    assert sites[0].network_down is None and sites[0].alive and 0 <= sites[0].age < 5
    assert [(v.portal, v.site, v.health) for v in verdicts] == [("epark", "tokyo", "up")]
    assert lease is not None and full[2] is not None and (lease.site, lease.token) == ("tokyo", 1) and lease.held


# -- store migrate ---------------------------------------------------------------------------------


def test_a_copy_leaves_the_sites_verdicts_and_lease_behind(stores: Callable[[], Store], tmp_path: Path) -> None:
    source = stores()
    source.beat(SiteBeat("tokyo", "h1", 1, 5.0, False, {"epark": ("up", T0)}))
    source.take_lease("tokyo", LONG, None)
    source.set_value("heartbeat", T0)
    source.claim("k")
    target = Store(tmp_path / "target.db", clock=lambda: T0)
    try:
        target.beat(SiteBeat("nagoya", "h3", 3, 5.0, False))  # an instance already on the target
        assert {"sites", "site_verdicts", "leader_lease"} == RUNTIME_TABLES
        assert not RUNTIME_TABLES & {tb.name for tb in tables()}
        done = copy_store(source, target)  # the target's own heartbeat is not "data": no --replace
        assert not RUNTIME_TABLES & {c.table for c in done}
        assert target.value("heartbeat") == T0 and target.claimed("k")
        assert [s.site for s in target.sites()] == ["nagoya"], "the source's sites came along"
        assert target.site_verdicts() == [] and target.lease() is None
        assert count(target, t.sites) == 1 and count(target, t.leader_lease) == 0
        copy_store(source, target, replace=True)
        assert [s.site for s in target.sites()] == ["nagoya"]
    finally:
        target.close()


# -- the PostgreSQL service lock: one per site -----------------------------------------------------


def test_one_service_lock_per_site_on_one_database(postgres: PostgresServer) -> None:
    url = postgres.new_database()
    tokyo = DatabaseServiceLock(url, "tokyo").acquire()
    osaka = DatabaseServiceLock(url, "osaka")
    try:
        with pytest.raises(StoreInUseError) as info:
            DatabaseServiceLock(url, "tokyo").acquire()
        message = str(info.value)
        assert message.startswith("another portalguard run of site tokyo (")
        assert f"PID {os.getpid()} on host {socket.gethostname()}" in message
        assert "give this instance its own name" in message
        osaka.acquire()  # another site: its own lock
        with pytest.raises(StoreInUseError, match="of site osaka "):
            DatabaseServiceLock(url, "osaka").acquire()
    finally:
        tokyo.release()
        osaka.release()
    again = DatabaseServiceLock(url, "tokyo").acquire()  # released: free again
    again.release()


# -- the service's journal and the fence -----------------------------------------------------------


@pytest.fixture
async def resilient(store_location: str, clock: Any) -> AsyncIterator[ResilientStore]:
    s = ResilientStore(store_location, clock=clock)
    yield s
    await s.close()


async def test_a_kept_write_the_fence_refuses_at_replay_is_dropped(
    resilient: ResilientStore, store_location: str, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = DiskFull(resilient, monkeypatch)
    lease = await resilient.take_lease("tokyo", LONG, None)
    resilient.sync.fence = ("tokyo", lease.token)
    disk.full = True
    assert await resilient.claim("k") is True  # kept: answered from memory
    await resilient.put_action(action_row())
    await resilient.set_failover("epark", True, "public: timeout")
    assert resilient.pending == 3 and resilient.health.failing
    disk.full = False
    assert await resilient.resign("tokyo", lease.token) is True
    other = Store(store_location, clock=lambda: T0)
    try:
        assert other.take_lease("osaka", LONG, None).token == 2
        resilient.replay_due(clock())
        await resilient.flush()
        assert resilient.pending == 0 and resilient._journal == [], "a refused write stayed in the journal"
        assert resilient.health.pending == 0 and not resilient.health.failing
        nothing_written(other)
        assert not await resilient.claimed("k") and (await resilient.action("epark", "ads")).observed == "unknown"
    finally:
        other.close()


async def test_forget_unwritten_clears_the_journal_and_overlays(
    resilient: ResilientStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = DiskFull(resilient, monkeypatch)
    resilient.sync.fence = ("tokyo", (await resilient.take_lease("tokyo", LONG, None)).token)
    disk.full = True
    await resilient.set_failover("epark", True, "public: timeout")
    await resilient.put_action(action_row())
    await resilient.set_value("drill", {"ok": True})
    assert await resilient.claim("k") is True
    assert await resilient.enqueue("q", [outbox_row("q")]) is True
    assert resilient.pending == 5
    assert await resilient.claimed("k") and await resilient.value("drill") == {"ok": True}
    assert [r.claim for r in await resilient.outbox()] == ["q"]
    assert resilient.forget_unwritten() == 5
    assert resilient.pending == 0 and resilient.health.pending == 0
    assert resilient.forget_unwritten() == 0
    disk.full = False
    assert not await resilient.claimed("k") and await resilient.value("drill") is None
    assert (await resilient.action("epark", "ads")).observed == "unknown"
    assert await resilient.outbox() == []
    assert (await resilient.portal("epark")).failover, "memory is the portal's truth until refreshed"
    await resilient.refresh(["epark"])
    assert not (await resilient.portal("epark")).failover, "refresh did not read the store again"
    assert await resilient.claim("k") is True  # written now, the journal being empty
    assert resilient.sync.claimed("k") and resilient.pending == 0
