"""``status``'s cached view of the config (``failover/cli/status_config.py``): a second ``status``
shows the same without loading the config; any change to what the view was derived from (the
file, a variable it names, the code) loads it again; no secret reaches the cache."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

import failover.settings.loader
from failover.cli import main
from failover.cli.status_config import StatusConfig, cache_dir
from failover.settings.loader import load
from tests.failover.test_group import group

SECRET = "a-webhook-secret-of-32-characters"
CONFIG: dict[str, Any] = {
    "clinic": {"name": "さくら歯科 渋谷院", "phone": "03-1234-5678"},
    "portals": {
        "epark": {
            "name": "EPARK",
            "endpoints": {"public": {"url": "http://127.0.0.1:9/booking"}},
            "book_url": "http://127.0.0.1:9/booking",
            "actions": ["page", "ivr"],
        }
    },
    "actions": {
        "page": {"type": "fallback_page"},
        "ivr": {"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "${IVR_SECRET}"},
    },
}


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("IVR_SECRET", SECRET)
    path = tmp_path / "portalguard.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, "store": str(tmp_path / "pg.db")}, allow_unicode=True), "utf-8")
    return path


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every load of the config, counted (the real load runs)."""
    seen: list[Path] = []

    def counted(path: Path, *args: Any, **kwargs: Any) -> Any:
        seen.append(path)
        return load(path, *args, **kwargs)

    monkeypatch.setattr(failover.settings.loader, "load", counted)
    return seen


def status(cfg: Path, *args: str) -> str:
    r = CliRunner().invoke(main, ["-c", str(cfg), "status", *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def test_a_second_status_shows_the_same_without_loading_the_config(cfg: Path, loads: list[Path]) -> None:
    first, first_json = status(cfg), status(cfg, "--json")
    assert len(loads) == 1  # the first one loaded and cached; --json came from the cache
    assert "EPARK (epark): UNKNOWN" in first and "action ivr" in first
    assert status(cfg) == first and status(cfg, "--json") == first_json
    assert len(loads) == 1


def test_a_change_to_the_file_or_a_variable_it_names_loads_it_again(
    cfg: Path, loads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    status(cfg)
    cfg.write_text(cfg.read_text("utf-8").replace("name: EPARK", "name: EPARK 渋谷"), "utf-8")
    assert "EPARK 渋谷 (epark)" in status(cfg)
    monkeypatch.setenv("IVR_SECRET", SECRET + "-rotated")
    status(cfg)
    monkeypatch.delenv("IVR_SECRET")  # unset: status needs no secret, but it is another input
    status(cfg)
    assert len(loads) == 4
    monkeypatch.setenv("IVR_SECRET", "qwerty9")  # now invalid: the config is checked as ever, not cached
    r = CliRunner().invoke(main, ["-c", str(cfg), "status"])
    assert r.exit_code == 2 and "actions.ivr.secret" in r.output and "qwerty9" not in r.output
    status_after = CliRunner().invoke(main, ["-c", str(cfg), "status"])
    assert status_after.exit_code == 2


def test_no_secret_reaches_the_cache_and_it_is_private(cfg: Path) -> None:
    status(cfg)
    folder = cache_dir()
    assert folder == cfg.parent / "cache" / "portalguard" / "status"
    assert folder.stat().st_mode & 0o777 == 0o700
    files = sorted(folder.iterdir())
    assert [f.name for f in files if f.suffix != ".json"] == ["key"]
    for f in files:
        assert f.stat().st_mode & 0o777 == 0o600
        assert SECRET.encode() not in f.read_bytes()
    entry = json.loads(next(f for f in files if f.suffix == ".json").read_text("utf-8"))
    assert entry["config"]["portals"]["epark"]["actions"] == ["page", "ivr"]


def test_a_cache_others_may_write_is_not_used(cfg: Path, loads: list[Path]) -> None:
    status(cfg)
    os.chmod(cache_dir(), 0o777)
    status(cfg)
    status(cfg)
    assert len(loads) == 3


def test_a_forged_entry_is_not_used(cfg: Path, loads: list[Path]) -> None:
    status(cfg)
    entry = next(f for f in cache_dir().iterdir() if f.suffix == ".json")
    data = json.loads(entry.read_text("utf-8"))
    data["config"]["store"] = "/elsewhere.db"
    data["key"] = "0" * 64
    entry.write_text(json.dumps(data), "utf-8")
    status(cfg)
    assert len(loads) == 2


def test_the_view_of_a_dental_group_survives_its_json(tmp_path: Path) -> None:
    path = tmp_path / "portalguard.yaml"
    raw = group(store=str(tmp_path / "s.db"), data_key=None)
    path.write_text(yaml.safe_dump({k: v for k, v in raw.items() if v is not None}, allow_unicode=True), "utf-8")
    view = StatusConfig.of(load(path))
    assert StatusConfig.from_json(json.loads(json.dumps(view.to_json()))) == view
    assert {p.clinic for p in view.portals.values()} == {"shibuya", "shinjuku"}
    assert view.portals["epark-shinjuku"].clinic_name == "さくら歯科 新宿院"
