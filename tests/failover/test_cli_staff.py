"""`portalguard staff add|passwd|remove|list` against a real config file and store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from failover.cli import main, staff_cmd
from failover.staff_accounts import verify_password
from failover.store import Store

GOOD = "a long enough phrase"


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = {
        "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
        "portals": {
            "epark": {"endpoints": {"public": {"url": "http://127.0.0.1:9/"}}, "book_url": "http://127.0.0.1:9/"}
        },
        "store": str(tmp_path / "pg.db"),
    }
    path = tmp_path / "portalguard.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    monkeypatch.delenv("PORTALGUARD_CONFIG", raising=False)
    return path


def staff(cfg: Path, *args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, ["-c", str(cfg), "staff", *args], input=stdin, catch_exceptions=False)


def stored(cfg: Path) -> Store:
    return Store(yaml.safe_load(cfg.read_text(encoding="utf-8"))["store"])


def test_add_list_passwd_remove(cfg: Path) -> None:
    r = staff(cfg, "add", "aiko", "--role", "operator", "--password-stdin", stdin=GOOD + "\n")
    assert r.exit_code == 0 and r.output == "staff account added: aiko (operator)\n"
    store = stored(cfg)
    account = store.staff_account("aiko")
    assert account is not None and verify_password(GOOD, account.password)

    listed = staff(cfg, "list")
    assert listed.exit_code == 0 and "aiko" in listed.output and "operator" in listed.output
    assert "scrypt" not in listed.output and "scrypt" not in staff(cfg, "list", "--json").output

    assert staff(cfg, "passwd", "aiko", "--password-stdin", stdin="another good phrase\n").exit_code == 0
    account = store.staff_account("aiko")
    assert account is not None and verify_password("another good phrase", account.password)

    assert staff(cfg, "remove", "aiko").output == "staff account removed: aiko\n"
    assert store.staff_account("aiko") is None
    ops = {(e.kind, e.detail["op"], e.detail["account"]) for e in store.events(limit=10)}
    assert ops == {("staff_account", o, "aiko") for o in ("add", "passwd", "remove")}
    assert all(GOOD not in str(e.detail) and "scrypt" not in str(e.detail) for e in store.events(limit=10))
    store.close()


def test_a_terminal_is_asked_twice(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(staff_cmd, "_is_terminal", lambda: True)
    r = staff(cfg, "add", "ben", stdin=f"{GOOD}\nsomething else\n{GOOD}\n{GOOD}\n")
    assert r.exit_code == 0, r.output
    assert "do not match" in r.output.lower() or "match" in r.output.lower()
    assert "staff account added: ben (viewer)" in r.output


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (["add", "c", "--password-stdin"], "short\n", 2, "at least 12 characters"),
        (["add", "c"], None, 2, "--password-stdin"),
        (["add", "bad name!", "--password-stdin"], GOOD, 2, "cannot be an account name"),
        (["passwd", "nobody", "--password-stdin"], GOOD, 1, "no staff account 'nobody' (see `portalguard staff list`)"),
        (["remove", "nobody"], None, 1, "no staff account 'nobody'"),
    ],
)
def test_errors_say_what_to_do(cfg: Path, args: list[str], stdin: str | None, code: int, message: str) -> None:
    r = CliRunner().invoke(main, ["-c", str(cfg), "staff", *args], input=stdin)
    assert r.exit_code == code and message in r.output
    assert "short" not in r.output.replace("too short", "")  # the password itself is never echoed


def test_a_taken_name_is_refused(cfg: Path) -> None:
    staff(cfg, "add", "aiko", "--password-stdin", stdin=GOOD)
    r = CliRunner().invoke(main, ["-c", str(cfg), "staff", "add", "aiko", "--password-stdin"], input=GOOD)
    assert r.exit_code == 1 and "exists already" in r.output and "staff passwd aiko" in r.output
    assert "no staff accounts" not in staff(cfg, "list").output
