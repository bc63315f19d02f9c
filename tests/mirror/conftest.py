"""Fixtures for the mirror's source tests: the portal simulator on 127.0.0.1 with a known book, a
probe client, and the portal's endpoints and source configs the way the config file gives them."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import httpx
import pytest

from failover.fakes.portal_simulator import PortalSimulator
from failover.mirror.config import MirrorSettings
from failover.mirror.model import DayFailure, DayListing, DayResult
from watchdog.http_client import make_probe_client
from watchdog.targets import Endpoint, ProbeSettings

TZ = ZoneInfo("Asia/Tokyo")
DAY = dt.date(2026, 12, 2)  # a Wednesday
DAYS = [DAY + dt.timedelta(days=n) for n in range(3)]
# Patient data the tests plant, to check no failure message ever repeats it.
PATIENTS = [("山田 太郎", "090-0000-1234"), ("佐藤 花子", "090-0000-5678"), ("鈴木 一郎", "090-0000-9999")]


@pytest.fixture
async def sim() -> AsyncIterator[PortalSimulator]:
    async with PortalSimulator(page_size=2) as simulator:
        book = simulator.book
        book.add("2026-12-02T10:00", PATIENTS[0][0], phone=PATIENTS[0][1], menu="検診", id="R1")
        book.add("2026-12-02T11:00", PATIENTS[1][0], end="2026-12-02T11:45", phone=PATIENTS[1][1], id="R2")
        book.add("2026-12-02T09:00", PATIENTS[2][0], phone=PATIENTS[2][1], menu="クリーニング", id="R3")
        book.add("2026-12-03T15:30", PATIENTS[0][0], phone=PATIENTS[0][1], id="R4", cancelled=True)
        # 2026-12-04: nobody
        book.add("2026-12-10T10:00", PATIENTS[1][0], id="R5")  # outside the days asked for
        yield simulator


@pytest.fixture
def settings() -> ProbeSettings:
    return ProbeSettings()


@pytest.fixture
async def client(settings: ProbeSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with make_probe_client(settings) as probe_client:
        yield probe_client


def endpoints(sim: PortalSimulator) -> dict[str, Endpoint]:
    """The portal's endpoints, the admin one with its maintenance text (``expect.not_contains``)."""
    raw = sim.endpoints_config()
    admin = {**raw["admin"], "expect": {"not_contains": ["メンテナンス中"]}}  # type: ignore[dict-item]
    return {"public": Endpoint.model_validate(raw["public"]), "admin": Endpoint.model_validate(admin)}


def source(sim: PortalSimulator, kind: str, **overrides: object) -> object:
    """The validated ``mirror.source`` for ``kind`` pointing at ``sim`` (keys of it replaced)."""
    section = sim.mirror_config(kind)
    section["source"] = {**section["source"], **overrides}  # type: ignore[dict-item]
    return MirrorSettings.model_validate(section).source


def failures(results: list[DayResult]) -> dict[dt.date, tuple[str, str]]:
    return {r.day: (r.failure.kind, r.failure.detail) for r in results if isinstance(r, DayFailure)}


def listings(results: list[DayResult]) -> dict[dt.date, list[str]]:
    return {r.day: [a.id for a in r.appointments] for r in results if isinstance(r, DayListing)}


def assert_no_patient_data(*texts: str) -> None:
    for text in texts:
        for name, phone in PATIENTS:
            for part in (*name.split(), phone):
                assert part not in text, text
