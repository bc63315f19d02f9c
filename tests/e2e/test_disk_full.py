"""``portalguard run`` with its store on a real, small filesystem that fills up: the portal fails while
nothing can be written, and patients still get the fallback page and staff still hear of it."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from failover.fakes.google_ads_server import FakeGoogleAds
from failover.fakes.portal_simulator import PortalSimulator
from failover.fakes.receivers import JsonReceiver
from tests.e2e.test_run_process import PORTAL, Rig, until

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs, unmounted afterwards (needs root: skipped otherwise)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem has no byte left."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as f:
        for chunk in (b"\0" * 65536, b"\0" * 4096, b"\0"):
            with contextlib.suppress(OSError):
                while True:
                    f.write(chunk)
    with pytest.raises(OSError) as full, (directory / "probe").open("wb", buffering=0) as f:
        f.write(b"\0" * 4096)
    assert full.value.errno == errno.ENOSPC
    return filler


@pytest.fixture
async def rig(tmp_path: Path, small_disk: Path) -> AsyncIterator[Rig]:
    with FakeGoogleAds(campaigns={"111": ("PAUSED", 3000)}) as ads:
        async with PortalSimulator() as sim, JsonReceiver() as staff, JsonReceiver() as hook:
            r = Rig(tmp_path, sim, ads, staff, hook)  # config and log stay on the roomy disk
            doc = yaml.safe_load(r.config.read_text(encoding="utf-8"))
            doc["store"] = str(small_disk / "pg.db")
            r.config.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
            r.store_dir = small_disk  # type: ignore[attr-defined]
            r.metrics_url = f"http://{doc['server']['metrics_listen']}/metrics"  # type: ignore[attr-defined]
            try:
                yield r
            finally:
                if r.proc and r.proc.returncode is None:
                    r.proc.send_signal(signal.SIGTERM)
                    await asyncio.wait_for(r.proc.wait(), 30)


def store_titles(rig: Rig, word: str) -> list[str]:
    return [t for t in rig.staff_topics() if word in t]


async def test_a_full_disk_never_stops_failover(rig: Rig) -> None:
    await rig.start()
    await until(lambda: rig.converged(False), 30, "healthy portal converged OFF")
    book_url = f"http://{rig.web}/book/{PORTAL}"
    async with httpx.AsyncClient() as web:
        assert (await web.get(book_url)).status_code == 302

        filler = fill(rig.store_dir)  # type: ignore[attr-defined]
        rig.sim.set_mode("error500", endpoints=("public",))

        async def fallback_served() -> bool:
            return (await web.get(book_url)).status_code == 200

        await until(fallback_served, 30, "/book serves the fallback page while the disk is full")
        await until(lambda: rig.staff_topics() and any(PORTAL in t for t in rig.staff_topics()), 30, "outage alert")
        await until(lambda: store_titles(rig, "ストア"), 30, "staff told the store cannot write")
        # Each measure switches on its own: under load the ads may come after the messages.
        await until(lambda: rig.ads.status("111") == "ENABLED", 30, "ads enabled on a full disk")

        health = await web.get(f"http://{rig.web}/healthz")
        assert health.status_code == 503 and "store not writable" in health.text and "full" in health.text
        metrics = (await web.get(rig.metrics_url)).text  # type: ignore[attr-defined]
        assert "portalguard_store_writable 0.0" in metrics

        await asyncio.sleep(3)  # more ticks on the full disk: still one store alert, log lines held back
        assert len(store_titles(rig, "ストア")) == 1, rig.staff_topics()
        log = rig.log_text()
        assert max(log.count(f"store: {m} not written") for m in ("set_value", "add_event")) <= 3, log[-3000:]

        # Room again: what was kept in memory is written, and staff hear the store is back.
        filler.unlink()
        await until(lambda: rig.converged(True), 30, "the failover state written to the store")
        assert (await web.get(f"http://{rig.web}/healthz")).status_code == 200
        await until(lambda: store_titles(rig, "戻りました"), 30, "staff told the store writes again")
        assert (await web.get(book_url)).status_code == 200
