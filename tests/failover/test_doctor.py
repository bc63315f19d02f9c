"""``portalguard doctor``: exit 0 when every action is ready, 1 when one is not (with the reason)."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from failover.cli import main
from failover.fakes.receivers import JsonReceiver
from failover.store_url import is_database_url

pytestmark = pytest.mark.anyio
pytest_plugins = ["tests.failover.receivers_fixtures"]  # hook: a local JSON receiver
HOOK_SECRET = "hmacK3ySecret-0123456"


@pytest.fixture
def where(tmp_path: Path, store_location: str) -> tuple[Path, str]:
    """The test's directory and its store: a SQLite file, then a PostgreSQL database."""
    return tmp_path, store_location


def write_config(where: tuple[Path, str], actions: dict[str, dict[str, Any]]) -> Path:
    tmp_path, store = where
    doc: dict[str, Any] = {
        "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
        "store": store,
        "actions": actions,
        "portals": {
            "sakura": {
                "endpoints": {"public": {"url": "http://127.0.0.1:9/"}},
                "book_url": "http://127.0.0.1:9/",
                "actions": list(actions),
            }
        },
    }
    if is_database_url(store):
        doc["server"] = {"secret_file": str(tmp_path / "web.key")}
    path = tmp_path / "portalguard.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


async def doctor(config: Path, *args: str) -> Any:
    # CliRunner runs asyncio.run() inside the command: give it a thread without a running loop.
    return await asyncio.to_thread(CliRunner().invoke, main, ["-c", str(config), "doctor", *args])


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def staff(hook: JsonReceiver) -> dict[str, Any]:
    return {"type": "notify", "urls": [hook.url("/staff", scheme="json")]}


async def test_all_ready_exits_0(where: tuple[Path, str], hook: JsonReceiver) -> None:
    config = write_config(
        where, {"staff": staff(hook), "ivr": {"type": "webhook", "url": hook.url("/ivr"), "secret": HOOK_SECRET}}
    )
    r = await doctor(config)
    assert r.exit_code == 0, r.output
    assert "NOT READY" not in r.output and r.output.count(" ready ") == 2
    assert hook.requests == [], "a preflight sent something"


async def test_an_unsigned_webhook_is_not_ready_and_says_to_set_the_secret(
    where: tuple[Path, str], hook: JsonReceiver
) -> None:
    config = write_config(where, {"staff": staff(hook), "ivr": {"type": "webhook", "url": hook.url("/ivr")}})
    r = await doctor(config, "--json")
    assert r.exit_code == 1, r.output
    rows = {row["action"]: row for row in json.loads(r.output)}
    assert rows["staff"]["ready"] is True and rows["ivr"]["ready"] is False
    assert "UNSIGNED" in rows["ivr"]["detail"] and "set `secret:` under actions.ivr" in rows["ivr"]["detail"]
    assert hook.requests == [], "a preflight sent something"


async def test_an_unreachable_webhook_is_not_ready(where: tuple[Path, str], hook: JsonReceiver) -> None:
    url = f"http://127.0.0.1:{closed_port()}/ivr"
    config = write_config(where, {"staff": staff(hook), "ivr": {"type": "webhook", "url": url, "secret": HOOK_SECRET}})
    r = await doctor(config)
    assert r.exit_code == 1, r.output
    (row,) = [line for line in r.output.splitlines() if line.startswith("sakura  ivr")]
    assert "NOT READY" in row and "cannot connect" in row
    assert HOOK_SECRET not in r.output
