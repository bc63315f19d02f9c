"""``portalguard drill``: pass/fail table, exit code, the recorded drill and the preview link.

Local receivers stand in for the world: ``site`` for our own web server (the fallback page's
self-check and preview fetch get 200), ``hook`` for the webhook receiver, which can be told to fail.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from failover.cli import main
from failover.fakes.receivers import JsonReceiver
from failover.store import Store
from failover.store_url import is_database_url

pytestmark = pytest.mark.anyio
pytest_plugins = ["tests.failover.receivers_fixtures"]  # hook: the webhook receiver that can be told to fail
PORTAL = "sakura"


@pytest.fixture
async def site() -> AsyncIterator[JsonReceiver]:
    async with JsonReceiver() as receiver:
        yield receiver


def write_config(
    tmp_path: Path, store: str, site: JsonReceiver, hook: JsonReceiver, public_url: str | None = None
) -> Path:
    """``store``: the ``store_location`` fixture's, a SQLite file or a PostgreSQL database."""
    server: dict[str, Any] = {"listen": f"127.0.0.1:{site.port}", "metrics_listen": None}
    if public_url:
        server["public_url"] = public_url
    if is_database_url(store):
        server["secret_file"] = str(tmp_path / "web.key")
    doc = {
        "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
        "store": store,
        "server": server,
        "actions": {
            "page": {"type": "fallback_page"},
            "ivr": {"type": "webhook", "url": hook.url("/ivr"), "secret": "hook-secret-0123456789"},
        },
        "portals": {
            PORTAL: {
                "endpoints": {"public": {"url": "http://127.0.0.1:9/"}},
                "book_url": "http://127.0.0.1:9/",
                "actions": ["page", "ivr"],
            }
        },
    }
    path = tmp_path / "portalguard.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


async def cli(config: Path, *args: str) -> Any:
    # CliRunner runs asyncio.run() inside the command: give it a thread without a running loop.
    return await asyncio.to_thread(CliRunner().invoke, main, ["-c", str(config), *args], catch_exceptions=False)


async def test_a_failing_action_fails_the_drill_with_exit_1(
    tmp_path: Path, store_location: str, site: JsonReceiver, hook: JsonReceiver
) -> None:
    config = write_config(tmp_path, store_location, site, hook)
    hook.answer_next(500)
    r = await cli(config, "drill", PORTAL)
    assert r.exit_code == 1, r.output
    lines = r.output.splitlines()
    assert lines[0].split() == ["action", "result", "took", "detail"]
    rows = {line.split()[0]: line.split()[1] for line in lines[2:-1]}
    assert rows == {"page": "pass", "ivr": "FAIL"}
    assert "the receiver answered HTTP 500" in r.output
    assert lines[-1] == f"drill FAILED for {PORTAL}"

    (event,) = json.loads((await cli(config, "events", "--kind", "drill", "--json")).output)
    assert event["portal"] == PORTAL and event["detail"]["ok"] is False
    results = {a["action"]: a for a in event["detail"]["results"]}
    assert results["ivr"]["ok"] is False and results["page"]["ok"] is True
    assert "preview=…" in results["page"]["detail"], "the preview token was kept in the audit log"

    status = await cli(config, "status")
    assert "  last drill: FAILED at " in status.output and "; last passed: never" in status.output


async def test_status_keeps_the_last_passed_drill_after_a_failed_one(
    tmp_path: Path, store_location: str, site: JsonReceiver, hook: JsonReceiver
) -> None:
    config = write_config(tmp_path, store_location, site, hook)
    assert (await cli(config, "drill", PORTAL)).exit_code == 0
    passed = json.loads((await cli(config, "status", "--json")).output)["portals"][PORTAL]["last_drill"]
    assert passed["ok"] is True and passed["last_ok_at"] == passed["at"]
    assert "  last drill: passed at " in (await cli(config, "status")).output

    hook.answer_next(500)
    assert (await cli(config, "drill", PORTAL)).exit_code == 1
    failed = json.loads((await cli(config, "status", "--json")).output)["portals"][PORTAL]["last_drill"]
    assert failed["ok"] is False and failed["at"] >= passed["at"]
    assert failed["last_ok_at"] == passed["at"]
    assert "; last passed: 20" in (await cli(config, "status")).output  # a date, not "never"


async def test_a_drill_record_from_before_last_ok_at_still_shows_its_pass(
    tmp_path: Path, store_location: str, site: JsonReceiver, hook: JsonReceiver
) -> None:
    config = write_config(tmp_path, store_location, site, hook)
    Store(store_location).set_value(f"drill:{PORTAL}", {"at": 1_800_000_000.0, "ok": True})
    hook.answer_next(500)
    assert (await cli(config, "drill", PORTAL)).exit_code == 1
    doc = json.loads((await cli(config, "status", "--json")).output)["portals"][PORTAL]["last_drill"]
    assert doc["ok"] is False and doc["last_ok_at"] == 1_800_000_000.0


@pytest.mark.parametrize(
    ("public_url", "link"),
    [
        pytest.param("https://book.example.jp/", "https://book.example.jp/book/sakura?preview=", id="public-url"),
        pytest.param(None, "http://127.0.0.1:{port}/book/sakura?preview=", id="listen-without-public-url"),
    ],
)
async def test_the_preview_link_is_one_staff_can_open(
    tmp_path: Path, store_location: str, site: JsonReceiver, hook: JsonReceiver, public_url: str | None, link: str
) -> None:
    r = await cli(write_config(tmp_path, store_location, site, hook, public_url), "drill", PORTAL, "--json")
    assert r.exit_code == 0, r.output
    detail = next(a["detail"] for a in json.loads(r.output)["actions"] if a["action"] == "page")
    assert detail.startswith(f"preview: {link.format(port=site.port)}"), detail
    # Checked on our own loopback address either way (a proxy in front need not be up).
    assert any(req.path == f"/book/{PORTAL}" and req.query.startswith("preview=") for req in site.requests)


async def test_a_drill_during_a_real_failover_is_refused_unless_forced(
    tmp_path: Path, store_location: str, site: JsonReceiver, hook: JsonReceiver
) -> None:
    # It sent a [訓練] message mid-outage and said "patients still see the portal": false.
    config = write_config(tmp_path, store_location, site, hook)
    Store(store_location).set_failover(PORTAL, True, "portal down")
    refused = await cli(config, "drill", PORTAL)
    assert refused.exit_code == 1 and "in failover right now" in refused.output and "--force" in refused.output
    assert hook.requests == [] and site.requests == []
    forced = await cli(config, "drill", PORTAL, "--force")
    assert forced.exit_code == 0, forced.output
    assert hook.requests, "the forced drill rehearsed the webhook"
