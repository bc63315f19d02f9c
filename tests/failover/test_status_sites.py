"""``portalguard status`` of several instances (issue 12): the leader, every site alive or silent, and per
portal each live site's verdict beside the combined one — read from a real store (both backends) as the
instances write it; one instance alone is its own leader while it runs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from failover.cli import main
from failover.store import SiteBeat, Store
from failover.store_url import is_database_url
from tests.failover.test_cli import CONFIG, SECRET


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_location: str) -> Path:
    data: dict[str, Any] = {**CONFIG, "store": store_location, "site": "vps-tokyo"}
    if is_database_url(store_location):
        data["server"] = {"secret_file": str(tmp_path / "web.key")}
    path = tmp_path / "portalguard.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("PORTAL_PASSWORD", SECRET)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PORTALGUARD_SITE", raising=False)
    return path


def status(cfg: Path, *args: str) -> str:
    r = CliRunner().invoke(main, ["-c", str(cfg), "status", *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def test_two_sites_one_leader_and_the_split_verdict(cfg: Path, store_location: str) -> None:
    store = Store(store_location)
    try:
        store.beat(SiteBeat("vps-tokyo", "vps1", 101, 30.0, False, {"epark": ("down", 1.0)}))
        store.beat(SiteBeat("clinic-shibuya", "clinic1", 202, 30.0, False, {"epark": ("up", 2.0)}))
        store.beat(SiteBeat("old-laptop", "laptop", 303, 0.05, False, {"epark": ("down", 3.0)}))
        store.take_lease("vps-tokyo", 10.0, None)
        store.set_verdict("epark", "up", 4.0)
    finally:
        store.close()
    time.sleep(0.1)  # old-laptop's 0.05 s are over, on the database's clock
    doc = json.loads(status(cfg, "--json"))
    assert doc["service"]["leader"] == "vps-tokyo"
    assert doc["service"]["running"] is True  # live sites, though no heartbeat was written
    sites = doc["sites"]
    assert {n: (s["alive"], s["leader"]) for n, s in sites.items()} == {
        "vps-tokyo": (True, True),
        "clinic-shibuya": (True, False),
        "old-laptop": (False, False),
    }
    assert sites["clinic-shibuya"]["host"] == "clinic1" and sites["clinic-shibuya"]["seen_ago"] < 5
    portal = doc["portals"]["epark"]
    assert portal["verdict"] == "up" and portal["sites"] == {"vps-tokyo": "down", "clinic-shibuya": "up"}
    text = status(cfg)
    assert "leader: vps-tokyo" in text
    assert "site old-laptop on laptop: SILENT (does not count)" in text
    assert "site vps-tokyo on vps1: alive, last seen" in text and "s ago, leader" in text
    assert "sites: clinic-shibuya up, vps-tokyo down (combined: up)" in text


def test_no_leader_is_said_plainly_and_one_live_site_decides_alone(cfg: Path, store_location: str) -> None:
    store = Store(store_location)
    try:
        store.beat(SiteBeat("vps-tokyo", "vps1", 101, 30.0, False, {"epark": ("down", 1.0)}))
        store.beat(SiteBeat("clinic-shibuya", "clinic1", 202, 0.05, True, {"epark": ("unknown", 2.0)}))
        store.take_lease("vps-tokyo", 0.05, None)
    finally:
        store.close()
    time.sleep(0.1)
    doc = json.loads(status(cfg, "--json"))
    assert doc["service"]["leader"] is None
    assert doc["portals"]["epark"]["sites"] == {"vps-tokyo": "down"}
    text = status(cfg)
    assert "leader: NONE (no instance holds the lease: nothing is switched)" in text
    assert "one site alone is alive: it decides alone" in text
    assert "sites: vps-tokyo down (combined: unknown) — one site decides alone" in text
    assert "its own network is down (votes neither way)" in text


def test_one_instance_alone_is_its_own_leader_while_it_runs(cfg: Path, store_location: str) -> None:
    doc = json.loads(status(cfg, "--json"))  # never ran
    assert doc["service"]["leader"] is None
    assert doc["sites"] == {"vps-tokyo": {"alive": False, "last_seen": None, "leader": False}}
    assert doc["portals"]["epark"]["sites"] == {}
    store = Store(store_location)
    try:
        store.set_value("heartbeat", store.clock())
        store.set_verdict("epark", "up", 1.0)
    finally:
        store.close()
    doc = json.loads(status(cfg, "--json"))
    assert doc["service"]["running"] is True and doc["service"]["leader"] == "vps-tokyo"
    assert doc["sites"]["vps-tokyo"]["alive"] is True
    assert doc["portals"]["epark"]["sites"] == {"vps-tokyo": "up"}
    assert "leader:" not in status(cfg)  # one instance: no lines about sites
