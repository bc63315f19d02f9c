"""``portalguard probe``: one round against the portal simulator; exit 0 all up, 1 failing, 2 config."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from failover.cli import main
from failover.fakes.portal_simulator import CANARY_PATH, PortalSimulator
from watchdog.metrics import canary_label

pytestmark = pytest.mark.anyio


def write_config(tmp_path: Path, sim: PortalSimulator) -> Path:
    doc: dict[str, Any] = {
        "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
        "canaries": [sim.control_url + CANARY_PATH],
        "store": str(tmp_path / "pg.db"),
        "portals": {
            "sakura": {
                "endpoints": sim.endpoints_config(),
                "timeout": "2s",
                "book_url": sim.url("public"),
            }
        },
    }
    if sim.cert_pem is not None:  # trust the simulator's self-signed certificate
        ca_file = tmp_path / "sim-ca.pem"
        ca_file.write_bytes(sim.cert_pem)
        doc["probe"] = {"ca_file": str(ca_file)}
    path = tmp_path / "portalguard.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


async def probe(config: Path, *args: str) -> Any:
    # CliRunner runs asyncio.run() inside the command: give it a thread without a running loop.
    return await asyncio.to_thread(CliRunner().invoke, main, ["-c", str(config), "probe", *args])


async def test_all_up_exits_0_with_a_table(tmp_path: Path) -> None:
    async with PortalSimulator() as sim:
        r = await probe(write_config(tmp_path, sim))
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split() == ["portal", "endpoint", "ok", "status", "ms", "tls_days", "failure", "detail"]
    assert sum(" ok " in line for line in lines[2:]) == 3  # public, admin (login), canary


@pytest.mark.parametrize(
    ("mode", "endpoint", "kind"),
    [
        pytest.param("maintenance", "public", "maintenance", id="maintenance"),
        pytest.param("error500", "public", "http_status", id="error500"),
        pytest.param("login_rejected", "admin", "login", id="login"),
    ],
)
async def test_something_failing_exits_1_naming_the_kind(tmp_path: Path, mode: str, endpoint: str, kind: str) -> None:
    async with PortalSimulator() as sim:
        sim.set_mode(mode, endpoints=(endpoint,))
        r = await probe(write_config(tmp_path, sim), "--json")
    assert r.exit_code == 1, r.output
    rows = {row["endpoint"]: row for row in json.loads(r.output)}
    assert rows[endpoint]["ok"] is False and rows[endpoint]["failure"] == kind


async def test_only_one_portal_and_unknown_portal(tmp_path: Path) -> None:
    async with PortalSimulator() as sim:
        config = write_config(tmp_path, sim)
        r = await probe(config, "--portal", "nope")
    assert r.exit_code == 2 and "unknown portal 'nope'" in r.output


async def test_config_error_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("clinic: {name: x}\n", encoding="utf-8")
    r = await probe(bad)
    assert r.exit_code == 2 and "bad.yaml: clinic.phone: is required" in r.output


async def test_tls_days_left_for_https_endpoints_only(tmp_path: Path) -> None:
    async with PortalSimulator(tls=True, tls_days=10) as sim:
        config = write_config(tmp_path, sim)
        as_json, as_table = await probe(config, "--json"), await probe(config)
    assert as_json.exit_code == 0, as_json.output
    days = {row["endpoint"]: row["tls_days_left"] for row in json.loads(as_json.output)}
    # Issued seconds ago for 10 days: 9 whole days left. The canary (the control port) is plain http.
    assert days == {"public": 9, "admin": 9, canary_label(sim.control_url + CANARY_PATH): None}
    header, _, *lines = as_table.output.splitlines()
    start = header.index("tls_days")
    assert [line[start : start + len("tls_days")].strip() for line in lines] == ["9", "9", ""]


async def test_a_refused_login_names_the_credentials_to_check(tmp_path: Path) -> None:
    async with PortalSimulator() as sim:
        sim.set_mode("login_rejected", endpoints=("admin",))
        config = write_config(tmp_path, sim)
        as_json, as_table = await probe(config, "--json"), await probe(config)
    rows = {row["endpoint"]: row for row in json.loads(as_json.output)}
    key = "portals.sakura.endpoints.admin.login"
    assert rows["admin"]["check"] == f"{key}.username and {key}.password (was the password changed?)"
    assert "check" not in rows["public"]
    assert f"sakura/admin: the staff login failed: check {key}.username and {key}.password" in as_table.output
