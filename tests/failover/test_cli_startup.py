"""The CLI starts light: which libraries a command loads, checked in a fresh process (not timed).

``bench/cli_startup.py`` measures the time; these keep a stray top-level import from undoing it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from failover.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[2]
# Never on the start-up path of --help / status / events: each costs 0.05-0.5 s to import.
HEAVY = ("starlette", "uvicorn", "jinja2", "apprise", "httpx", "google.ads", "grpc", "prometheus_client")


def loaded_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules in sys.modules after running ``code`` in a new interpreter on this tree."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def run_cli(*args: str) -> str:
    # standalone_mode=False: return instead of sys.exit, so the module list can be printed after.
    return f"from failover.cli import main\nmain({list(args)!r}, standalone_mode=False)"


def test_importing_the_cli_loads_no_heavy_library() -> None:
    modules = loaded_after("import failover.cli")
    assert heavy_in(modules) == []
    assert "pydantic" not in modules and "failover.settings" not in modules


def test_help_imports_no_command_and_no_pydantic() -> None:
    modules = loaded_after(run_cli("--help"))
    assert heavy_in(modules) == []
    assert "pydantic" not in modules
    assert not [m for m in modules if m.endswith("_cmd")]


@pytest.mark.parametrize("command", [["status"], ["events"]])
def test_read_only_commands_load_the_config_and_store_only(tmp_path: Path, command: list[str]) -> None:
    config = tmp_path / "portalguard.yaml"
    config.write_text(yaml.safe_dump(_config_with_every_action_kind(tmp_path)), encoding="utf-8")
    modules = loaded_after(run_cli("-c", str(config), *command), env={"SLACK_URL": "json://127.0.0.1:9/"})
    assert "failover.settings" in modules and "failover.store" in modules  # it did load the config
    assert heavy_in(modules) == []


# What validating the config and opening the store through SQLAlchemy load: 0.2-0.25 s each.
CONFIG_AND_STORE = ("sqlalchemy", "alembic", "pydantic", "pydantic_core", "yaml", "failover.settings.model")


def test_status_loads_neither_sqlalchemy_nor_pydantic_once_its_config_is_cached(tmp_path: Path) -> None:
    """The first status validates the config (pydantic) and caches what it shows of it; on a store
    at the newest revision no status imports SQLAlchemy (``ReadOnlyStore``), and the next one, the
    config unchanged, loads neither (``failover/cli/status_config.py``)."""
    config = tmp_path / "portalguard.yaml"
    config.write_text(yaml.safe_dump(_config_with_every_action_kind(tmp_path)), encoding="utf-8")
    env = {"SLACK_URL": "json://127.0.0.1:9/", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    created = loaded_after(run_cli("-c", str(config), "status"), env=env)  # creates the store: SQLAlchemy
    assert "sqlalchemy" in created
    first = loaded_after(run_cli("-c", str(config), "status"), env={**env, "XDG_CACHE_HOME": str(tmp_path / "new")})
    assert "pydantic" in first and "failover.store.readonly" in first
    assert [m for m in first if m.startswith(("sqlalchemy", "alembic"))] == []
    cached = loaded_after(run_cli("-c", str(config), "status", "--json"), env=env)
    assert "failover.store.readonly" in cached and "failover.cli.status_config" in cached
    assert [m for m in cached if m.split(".")[0] in CONFIG_AND_STORE or m in CONFIG_AND_STORE] == []
    assert heavy_in(cached) == []


def _config_with_every_action_kind(tmp_path: Path) -> dict[str, object]:
    return {
        "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
        "store": str(tmp_path / "pg.db"),
        "portals": {
            "epark": {
                "endpoints": {"public": {"url": "http://127.0.0.1:9/booking"}},
                "book_url": "http://127.0.0.1:9/booking",
                "actions": ["page", "ads", "staff", "ivr"],
            }
        },
        "actions": {
            "page": {"type": "fallback_page"},
            "ads": {
                "type": "google_ads",
                "customer_id": "1234567890",
                "campaign_ids": ["111"],
                "max_daily_budget": 5000,
                "credentials": {"developer_token": "t"},
            },
            "staff": {"type": "notify", "urls": ["${SLACK_URL}"]},
            "ivr": {"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "a-webhook-secret-of-16+"},
        },
    }


def test_the_command_table_matches_the_commands() -> None:
    """The listing's help comes from COMMANDS, not the command: the two must say the same."""
    ctx = click.Context(main, info_name="portalguard")
    for name, entry in COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name, name
        assert entry.help == command.get_short_help_str(limit=10**6), f"COMMANDS[{name!r}].help is out of date"
    assert main.list_commands(ctx) == sorted(COMMANDS)
