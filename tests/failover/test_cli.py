"""The CLI against a real config file and store (no service running: the CLI must work alone)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from failover.cli import main
from failover.store import Store

CONFIG: dict[str, Any] = {
    "clinic": {"name": "さくら歯科 渋谷院", "phone": "03-1234-5678"},
    "portals": {
        "epark": {
            "endpoints": {
                "public": {"url": "http://127.0.0.1:9/booking"},
                "admin": {
                    "url": "http://127.0.0.1:9/login",
                    "login": {"username": "u", "password": "${PORTAL_PASSWORD}", "success_contains": ["ログアウト"]},
                },
            },
            "book_url": "http://127.0.0.1:9/booking",
            "actions": ["page"],
        }
    },
    "actions": {"page": {"type": "fallback_page"}},
}
SECRET = "s3cret-Portal-Pw"


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = {**CONFIG, "store": str(tmp_path / "pg.db")}
    path = tmp_path / "portalguard.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("PORTAL_PASSWORD", SECRET)
    monkeypatch.delenv("PORTALGUARD_CONFIG", raising=False)
    return path


def cli(cfg: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["-c", str(cfg), *args], catch_exceptions=False)


def test_config_check_summarises_without_secrets(cfg: Path) -> None:
    r = cli(cfg, "config", "check")
    assert r.exit_code == 0, r.output
    assert "portal epark: endpoints admin (login), public" in r.output  # safe_dump sorts keys
    assert SECRET not in r.output


def test_config_check_exits_2_with_the_reason(cfg: Path) -> None:
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("book_url:", "book_urll:"), encoding="utf-8")
    r = CliRunner().invoke(main, ["-c", str(cfg), "config", "check"])
    assert r.exit_code == 2
    assert "portals.epark.book_url: is required" in r.output
    assert "portals.epark.book_urll: unknown key" in r.output


def test_config_from_environment_variable(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTALGUARD_CONFIG", str(cfg))
    assert CliRunner().invoke(main, ["config", "check"]).exit_code == 0


def test_config_schema_is_json_schema(cfg: Path) -> None:
    doc = json.loads(cli(cfg, "config", "schema").output)
    assert doc["title"] == "portalguard configuration" and "portals" in doc["properties"]


def test_status_json_shape_before_the_service_ever_ran(cfg: Path) -> None:
    r = cli(cfg, "status", "--json")
    doc = json.loads(r.output)
    p = doc["portals"]["epark"]
    assert doc["service"]["running"] is False
    assert p["verdict"] == "unknown" and p["failover"] is False
    assert p["actions"]["page"] == {"desired": "off", "observed": "unknown", "last_error": None, "attempts": 0}


def test_status_shows_the_portal_name(cfg: Path) -> None:
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("  epark:\n", "  epark:\n    name: EPARK 渋谷\n"), "utf-8")
    assert "EPARK 渋谷 (epark): UNKNOWN" in cli(cfg, "status").output


def test_status_shows_a_flapping_hold_and_its_end(cfg: Path) -> None:
    store = Store(cfg.parent / "pg.db")
    store.set_failover("epark", True, "public: http_status (HTTP 503)")
    now = store.clock()
    store.set_value("flapping_hold:epark", {"count": 4, "until": now + 1800, "since": now - 60})
    store.close()
    out = cli(cfg, "status").output
    assert "FAILOVER ON since" in out and "(held on: switching too often)" in out and "HTTP 503" not in out
    assert "4 failovers within an hour (failover.max_switches_per_hour); ends at" in out
    assert "decide sooner: portalguard failover on|off|auto epark" in out
    assert json.loads(cli(cfg, "status", "--json").output)["portals"]["epark"]["hold"]["count"] == 4


def test_failover_override_round_trip(cfg: Path) -> None:
    r = cli(cfg, "failover", "on", "epark", "--reason", "portal vendor announced outage", "--for", "2h")
    assert r.exit_code == 0 and "forced ON for 2h" in r.output
    doc = json.loads(cli(cfg, "status", "--json").output)
    assert doc["portals"]["epark"]["override"]["mode"] == "on"
    assert "override: on until" in cli(cfg, "status").output
    assert "automatic" in cli(cfg, "failover", "auto", "epark").output
    assert json.loads(cli(cfg, "status", "--json").output)["portals"]["epark"]["override"] is None
    kinds = [e["detail"].get("mode") for e in json.loads(cli(cfg, "events", "--json").output)]
    assert kinds == ["on", "auto"]


def test_failover_needs_a_reason_and_a_known_portal(cfg: Path) -> None:
    r = CliRunner().invoke(main, ["-c", str(cfg), "failover", "on", "epark"])
    assert r.exit_code == 2 and "--reason" in r.output
    r = CliRunner().invoke(main, ["-c", str(cfg), "failover", "on", "nope", "--reason", "x"])
    assert r.exit_code == 2 and "unknown portal 'nope' (configured: epark)" in r.output
    r = CliRunner().invoke(main, ["-c", str(cfg), "failover", "on", "epark", "--reason", "x", "--for", "2"])
    assert r.exit_code == 2 and "is not a duration" in r.output


def test_failover_off_needs_a_bounded_for(cfg: Path) -> None:
    """Protection is never switched off for ever by accident: --for is required, at most 7 days,
    and "never" only with --yes-really. Nothing is stored when refused."""
    run = lambda *a: CliRunner().invoke(main, ["-c", str(cfg), "failover", "off", "epark", "--reason", "x", *a])  # noqa: E731
    r = run()
    assert r.exit_code == 2 and "failover off needs --for DURATION (at most 7d)" in r.output
    r = run("--for", "8d")
    assert r.exit_code == 2 and "longer than 7d" in r.output
    r = run("--for", "never")
    assert r.exit_code == 2 and "--yes-really" in r.output
    assert json.loads(cli(cfg, "status", "--json").output)["portals"]["epark"]["override"] is None
    r = run("--for", "7d")
    assert r.exit_code == 0 and "forced OFF for 7d" in r.output
    r = run("--for", "never", "--yes-really")
    assert r.exit_code == 0 and "forced OFF until `failover auto`" in r.output
    assert json.loads(cli(cfg, "status", "--json").output)["portals"]["epark"]["override"]["expires"] is None


def test_maintenance_add_list_remove(cfg: Path) -> None:
    r = cli(cfg, "maintenance", "add", "epark", "--start", "+1h", "--for", "2h", "--reason", "vendor upgrade")
    assert r.exit_code == 0 and "maintenance #1" in r.output
    listing = json.loads(cli(cfg, "maintenance", "list", "--json").output)
    assert listing[0]["mode"] == "suppress" and listing[0]["end"] - listing[0]["start"] == 7200
    assert "vendor upgrade" in cli(cfg, "maintenance", "list").output
    assert cli(cfg, "maintenance", "remove", "1").exit_code == 0
    assert "no maintenance windows" in cli(cfg, "maintenance", "list").output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--start", "+1h"], "exactly one of --end and --for", id="no-end"),
        pytest.param(["--start", "yesterday", "--for", "1h"], "is not a time", id="bad-start"),
        pytest.param(["--start", "+2h", "--end", "+1h"], None, id="end-relative-to-start-ok"),
        pytest.param(["--start", "2001-01-01T00:00", "--for", "1h"], "entirely in the past", id="past"),
    ],
)
def test_maintenance_add_bad_input(cfg: Path, args: list[str], message: str | None) -> None:
    r = CliRunner().invoke(main, ["-c", str(cfg), "maintenance", "add", "epark", *args])
    if message is None:
        assert r.exit_code == 0, r.output
    else:
        assert r.exit_code == 2 and message in r.output


def test_incident_report_from_the_event_log(cfg: Path) -> None:
    t = [1_800_000_000.0]
    store = Store(str(cfg.parent / "pg.db"), clock=lambda: t[0])

    def at(offset: float) -> Store:
        t[0] = 1_800_000_000.0 + offset
        return store

    at(0).add_event(
        "verdict",
        "epark",
        **{"from": "up", "to": "degraded", "first_failure": t[0], "reason": "public: http_status (HTTP 503)"},
    )
    at(30).add_event("verdict", "epark", **{"from": "degraded", "to": "down"})
    at(31).add_event(
        "failover", "epark", to="on", cause="portal down", reason="public: http_status (HTTP 503)", incident=1
    )
    at(32).add_event("action", "epark", "page", op="on", ok=True, attempt=1, ms=12)
    at(33).add_event("notify", "epark", topic="outage", sent=True, targets=2)
    at(3600).add_event("failover", "epark", to="off", cause="portal up", reason="portal up", incident=1)
    at(3601).add_event("notify", "epark", topic="recovered", sent=True, targets=2)
    r = cli(cfg, "incident", "report", "--portal", "epark")
    assert r.exit_code == 0
    assert "# Incident report: epark (incident #1)" in r.output
    assert "- Outage duration: 1h" in r.output
    assert "- Detection to failover: 31s" in r.output
    assert "- Notifications sent: 2" in r.output
    assert "action page on: ok (attempt 1, 12 ms)" in r.output


def test_incident_report_without_outage(cfg: Path) -> None:
    assert "no outage on record" in cli(cfg, "incident", "report").output


def test_every_command_explains_itself(cfg: Path) -> None:
    for path in (
        ["run"],
        ["status"],
        ["failover", "on"],
        ["maintenance", "add"],
        ["events"],
        ["incident", "report"],
        ["doctor"],
        ["probe"],
        ["config", "check"],
        ["requests", "list"],
    ):
        r = CliRunner().invoke(main, [*path, "--help"])
        assert r.exit_code == 0 and len(r.output.splitlines()) > 3, path


@pytest.mark.parametrize("args", [["status", "--json"], ["config", "check"], ["maintenance", "list"]], ids=str)
def test_config_option_also_after_the_command(cfg: Path, args: list[str]) -> None:
    r = CliRunner().invoke(main, [*args, "-c", str(cfg)])
    assert r.exit_code == 0, r.output


def test_run_on_a_taken_port_exits_2_naming_the_key(cfg: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        text = cfg.read_text(encoding="utf-8") + f"server: {{listen: '127.0.0.1:{port}', metrics_listen: null}}\n"
        cfg.write_text(text, encoding="utf-8")
        r = CliRunner().invoke(main, ["-c", str(cfg), "run"])
    assert r.exit_code == 2
    assert f"server.listen: cannot listen on 127.0.0.1:{port}" in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["maintenance", "add", "epark", "--start", "now", "--for", "99999999999d"], "ten years", id="for"),
        pytest.param(
            ["maintenance", "add", "epark", "--start", "9999-01-01T00:00", "--for", "1h"], "ten years", id="start"
        ),
        pytest.param(["failover", "on", "epark", "--reason", "x", "--for", "20000d"], "ten years", id="override"),
        pytest.param(["maintenance", "remove", "99999999999999999999999"], "not in the range", id="huge-id"),
    ],
)
def test_absurd_values_are_refused_not_stored(cfg: Path, args: list[str], message: str) -> None:
    r = CliRunner().invoke(main, ["-c", str(cfg), *args])
    assert r.exit_code == 2 and message in r.output, r.output
    assert cli(cfg, "status").exit_code == 0
