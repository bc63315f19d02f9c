"""One sync and the loop, with the real pieces: the simulator's admin screen on 127.0.0.1, the
admin_html source through a logged-in session, and a real store with a data key. The clock is
injected; nothing sleeps."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from failover.crypto import DataKey
from failover.fakes.portal_simulator import PortalSimulator
from failover.metrics import MirrorMetrics
from failover.mirror.model import DayResult, SyncFailure
from failover.mirror.sources import read_days
from failover.mirror.sync import MirrorJob, MirrorSync, summary
from failover.store import AsyncStore
from tests.mirror.conftest import DAY, PATIENTS, TZ, assert_no_patient_data, endpoints, source
from watchdog.targets import ProbeSettings

pytestmark = pytest.mark.anyio

NOW = dt.datetime(2026, 12, 2, 8, 0, tzinfo=TZ).timestamp()  # 08:00 on DAY, before the first booking


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncStore]:
    _, key = DataKey.generate()
    s = AsyncStore(tmp_path / "pg.db", data_key=key)
    yield s
    await s.close()


def job(sim: PortalSimulator, client: httpx.AsyncClient, every: float = 600.0, days: int = 3, **cfg: object):
    settings = ProbeSettings()
    src = source(sim, "admin_html", **cfg)

    def read(wanted: Sequence[dt.date]):
        return read_days(src, endpoints(sim), client, settings, 2.0, wanted, TZ)

    return MirrorJob("sakura", every, days, "admin_html", read)


def mirror(sim, client, store, clock=None, *, metrics=None, is_down=lambda p: False, **kw) -> MirrorSync:
    return MirrorSync({"sakura": job(sim, client, **kw)}, store, TZ, clock or Clock(), metrics, is_down)


async def ids(store: AsyncStore, first: dt.date = DAY, days: int = 3) -> dict[str, str]:
    rows = await store.appointments("sakura", first, first + dt.timedelta(days=days - 1))
    return {a.id: ("vanished" if a.vanished_at else "cancelled" if a.cancelled else "booked") for a in rows}


async def test_a_sync_copies_every_listed_day_then_follows_the_portals_changes(
    sim: PortalSimulator, client: httpx.AsyncClient, store: AsyncStore
) -> None:
    clock = Clock()
    sync = mirror(sim, client, store, clock)
    report = await sync.sync("sakura")
    assert report.ok and report.totals() == (4, 0, 0)
    assert await ids(store) == {"R1": "booked", "R2": "booked", "R3": "booked", "R4": "cancelled"}
    rows = {a.id: a for a in await store.appointments("sakura", DAY, DAY)}
    assert (rows["R1"].name, rows["R1"].phone, rows["R1"].menu) == (PATIENTS[0][0], PATIENTS[0][1], "検診")
    assert rows["R2"].end == dt.datetime(2026, 12, 2, 11, 45, tzinfo=TZ).timestamp()

    sim.book.change("R1", menu="抜歯")
    sim.book.cancel("R2")
    sim.book.remove("R3")  # gone from the list: cancelled in the mirror, kept with when it vanished
    sim.book.add("2026-12-04T14:00", "田中 次郎", id="R9")
    clock.now += 600
    report = await sync.sync("sakura")
    assert report.ok and report.totals() == (1, 1, 2), summary(report)  # R2 cancelled, R3 vanished
    assert await ids(store) == {"R1": "booked", "R2": "cancelled", "R3": "vanished", "R4": "cancelled", "R9": "booked"}
    state = await store.mirror_state("sakura", DAY)
    assert state.last_success == clock.now and state.booked == 2 and state.last_error_kind is None
    per_day = {row["day"]: (row["added"], row["updated"], row["cancelled"]) for row in summary(report)}
    assert per_day == {DAY: (0, 1, 2), DAY + dt.timedelta(days=1): (0, 0, 0), DAY + dt.timedelta(days=2): (1, 0, 0)}


async def test_a_failed_sync_changes_nothing_and_counts_its_kind(
    sim: PortalSimulator, client: httpx.AsyncClient, store: AsyncStore
) -> None:
    registry = CollectorRegistry()
    metrics = MirrorMetrics(registry)
    clock = Clock()
    sync = mirror(sim, client, store, clock, metrics=metrics)
    await sync.sync("sakura")
    before = await store.appointments("sakura", DAY, DAY + dt.timedelta(days=2))
    synced = clock.now
    for mode, kind in (("error500", "http_status"), ("login_rejected", "login"), ("empty_without_text", "empty")):
        sim.set_reservations_mode(mode)
        clock.now += 600
        report = await sync.sync("sakura")
        assert not report.ok and report.first_failure is not None and report.first_failure.kind == kind
        assert await store.appointments("sakura", DAY, DAY + dt.timedelta(days=2)) == before
        state = await store.mirror_state("sakura", DAY)
        assert (state.last_success, state.last_attempt, state.last_error_kind) == (synced, clock.now, kind)
        assert (
            registry.get_sample_value("portalguard_mirror_sync_errors_total", {"portal": "sakura", "kind": kind}) == 1.0
        )
        assert_no_patient_data(state.last_error or "")
    assert registry.get_sample_value("portalguard_mirror_last_success_timestamp_seconds", {"portal": "sakura"}) == (
        synced
    )
    assert registry.get_sample_value("portalguard_mirror_appointments", {"portal": "sakura"}) == 3.0
    sim.set_reservations_mode("healthy")
    clock.now += 600
    assert (await sync.sync("sakura")).ok  # resumes by itself


async def test_a_source_that_fails_every_day_at_once_fails_each_day(store: AsyncStore) -> None:
    async def refused(days: Sequence[dt.date]) -> list[DayResult]:
        raise SyncFailure("login", "login not accepted: missing text ログアウト")

    sync = MirrorSync({"p": MirrorJob("p", 600, 3, "admin_html", refused)}, store, TZ, Clock())
    report = await sync.sync("p")
    assert [f.failure.kind for f in report.failures] == ["login"] * 3 and not report.changes


async def test_the_loop_syncs_when_due_and_never_while_the_portal_is_down(
    sim: PortalSimulator, client: httpx.AsyncClient, store: AsyncStore
) -> None:
    clock = Clock()
    down = {"sakura": False}
    sync = mirror(sim, client, store, clock, is_down=lambda p: down[p], every=600.0)
    assert sync.due("sakura", clock.now)  # never synced: at once
    await sync.sync("sakura")
    assert not sync.due("sakura", clock.now + 599) and sync.due("sakura", clock.now + 600)
    down["sakura"] = True
    assert not sync.due("sakura", clock.now + 3600)  # the copy stays as it is while the portal is DOWN
    down["sakura"] = False
    assert sync.due("sakura", clock.now + 3600)  # and resumes at once on recovery
