"""Read-only commands work without the secrets' environment variables; commands that act need them.

On a production install the secrets live in the service's root-only EnvironmentFile: the office
manager's shell has none of them, and must still be able to look at status, events and requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from failover.cli import main
from failover.settings.loader import SECRET_PLACEHOLDER, ConfigError, load

SECRETS = {
    "PORTAL_PASSWORD": "s3cret-Portal-Pw",
    "SLACK_URL": "json://127.0.0.1:9/slack-token-abc",
    "IVR_URL": "http://127.0.0.1:9/hook?token=ivr-token-xyz",
    "IVR_SECRET": "ivr-hmac-key-123",
}


def config(tmp_path: Path, **changes: Any) -> Path:
    data: dict[str, Any] = {
        "clinic": {"name": "さくら歯科 渋谷院", "phone": "03-1234-5678"},
        "store": str(tmp_path / "pg.db"),
        "portals": {
            "epark": {
                "endpoints": {
                    "public": {"url": "http://127.0.0.1:9/booking"},
                    "admin": {
                        "url": "http://127.0.0.1:9/login",
                        "login": {"username": "u", "password": "${PORTAL_PASSWORD}", "success_contains": ["ok"]},
                    },
                },
                "book_url": "http://127.0.0.1:9/booking",
                "actions": ["page", "staff", "ivr"],
            }
        },
        "actions": {
            "page": {"type": "fallback_page"},
            "staff": {"type": "notify", "urls": ["${SLACK_URL}"]},
            "ivr": {"type": "webhook", "url": "${IVR_URL}", "secret": "${IVR_SECRET}"},
        },
        **changes,
    }
    path = tmp_path / "portalguard.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*SECRETS, "PORTALGUARD_CONFIG", "PG_STORE"):
        monkeypatch.delenv(name, raising=False)


def cli(path: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["-c", str(path), *args])


READ_ONLY = [
    ["status"],
    ["status", "--json"],
    ["events"],
    ["incident", "report"],
    ["maintenance", "list"],
    ["requests", "list"],
    ["requests", "export", "--csv", "-"],
]


@pytest.mark.usefixtures("no_secrets")
@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_read_only_commands_need_no_secret(tmp_path: Path, args: list[str]) -> None:
    r = cli(config(tmp_path), *args)
    assert r.exit_code == 0, r.output
    assert SECRET_PLACEHOLDER not in r.output


@pytest.mark.usefixtures("no_secrets")
@pytest.mark.parametrize("args", [["run"], ["doctor"], ["drill", "epark"], ["config", "check"]], ids=" ".join)
def test_commands_that_act_or_vouch_need_every_secret(tmp_path: Path, args: list[str]) -> None:
    r = cli(config(tmp_path), *args)
    assert r.exit_code == 2, r.output
    for name in SECRETS:
        assert f"environment variable {name} is not set" in r.output


@pytest.mark.usefixtures("no_secrets")
def test_one_secret_missing_is_enough_to_stop_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        if name != "SLACK_URL":
            monkeypatch.setenv(name, value)
    r = cli(config(tmp_path), "run")
    assert r.exit_code == 2
    assert "actions.staff.urls.0: environment variable SLACK_URL is not set" in r.output
    assert not any(value in r.output for value in SECRETS.values())


@pytest.mark.usefixtures("no_secrets")
@pytest.mark.parametrize("args", [["status"], ["requests", "list"]], ids=" ".join)
def test_a_missing_variable_at_a_non_secret_key_still_fails(tmp_path: Path, args: list[str]) -> None:
    r = cli(config(tmp_path, store="${PG_STORE}"), *args)
    assert r.exit_code == 2, r.output
    assert "store: environment variable PG_STORE is not set" in r.output


def test_unset_secrets_load_as_the_placeholder(tmp_path: Path) -> None:
    settings = load(config(tmp_path), environ={}, secrets_required=False)
    staff, ivr = settings.actions["staff"], settings.actions["ivr"]
    assert [u.get_secret_value() for u in staff.urls] == [SECRET_PLACEHOLDER]  # type: ignore[union-attr]
    assert ivr.url.get_secret_value() == SECRET_PLACEHOLDER  # type: ignore[union-attr]
    login = settings.portals["epark"].endpoints["admin"].login
    assert login is not None and login.password.get_secret_value() == SECRET_PLACEHOLDER
    # What is set is used as always.
    loaded = load(config(tmp_path), environ={"SLACK_URL": SECRETS["SLACK_URL"]}, secrets_required=False)
    assert loaded.actions["staff"].urls[0].get_secret_value() == SECRETS["SLACK_URL"]  # type: ignore[union-attr]


def test_a_url_key_that_is_no_secret_field_is_still_required(tmp_path: Path) -> None:
    # An endpoint's `url` is kept out of error messages like a secret, but it is what is probed:
    # only SecretStr fields may be left unset.
    path = config(tmp_path)
    path.write_text(path.read_text(encoding="utf-8").replace("http://127.0.0.1:9/login", "${ADMIN_URL}"))
    with pytest.raises(ConfigError) as err:
        load(path, environ={}, secrets_required=False)
    assert err.value.messages == [
        f"{path}: portals.epark.endpoints.admin.url: environment variable ADMIN_URL is not set "
        "(set it where portalguard runs, e.g. in the systemd EnvironmentFile)"
    ]
