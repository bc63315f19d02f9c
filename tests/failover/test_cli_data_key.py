"""The data key through the CLI and the config: ``portalguard keygen``, the key reaching the store,
the office manager's shell without ``PORTALGUARD_DATA_KEY`` (status works, sealed requests exit 2
naming ``data_key``), and the config's checks (a malformed key, a mirror without a key)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from failover.cli import main
from failover.crypto import DataKey, is_sealed, key_problem
from failover.settings import Settings
from failover.settings.loader import ConfigError, load
from failover.store import Store

KEY_TEXT, KEY = DataKey.generate()
CONFIG: dict[str, Any] = {
    "clinic": {"name": "さくら歯科 渋谷院", "phone": "03-1234-5678"},
    "data_key": "${PORTALGUARD_DATA_KEY}",
    "portals": {
        "epark": {"endpoints": {"public": {"url": "http://127.0.0.1:9/booking"}}, "book_url": "http://127.0.0.1:9/b"}
    },
}


def config(tmp_path: Path, **changes: Any) -> Path:
    data = copy.deepcopy(CONFIG) | {"store": str(tmp_path / "pg.db")} | changes
    path = tmp_path / "portalguard.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def cli(path: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["-c", str(path), *args])


def test_keygen_prints_a_new_key_and_where_it_goes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no config anywhere: keygen needs none
    monkeypatch.delenv("PORTALGUARD_CONFIG", raising=False)
    first, second = CliRunner().invoke(main, ["keygen"]), CliRunner().invoke(main, ["keygen"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output
    key = first.stdout.strip()
    assert first.stdout == key + "\n" and re.fullmatch(r"pgk1:[A-Za-z0-9_-]{43}", key)
    assert key_problem(key) is None and key != second.stdout.strip()
    hint = first.stderr
    assert hint.count("\n") == 1 and f"key {DataKey.from_text(key).key_id}" in hint
    assert "PORTALGUARD_DATA_KEY=" in hint and "data_key: ${PORTALGUARD_DATA_KEY}" in hint and key not in hint


def test_the_cli_opens_the_store_with_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTALGUARD_DATA_KEY", KEY_TEXT)
    path = config(tmp_path)
    s = Store(tmp_path / "pg.db", data_key=KEY)
    s.add_request("epark", {"name": "山田 花子", "phone": "090-1111-2222"})
    s.close()
    r = cli(path, "requests", "list")
    assert r.exit_code == 0, r.output
    assert "山田 花子" in r.output and "090-1111-2222" in r.output


def test_without_the_key_s_variable_status_works_sealed_requests_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PORTALGUARD_DATA_KEY", raising=False)
    path = config(tmp_path)
    s = Store(tmp_path / "pg.db", data_key=KEY)
    s.add_request("epark", {"name": "山田 花子"})
    s.close()
    assert cli(path, "status").exit_code == 0
    assert cli(path, "events").exit_code == 0
    r = cli(path, "requests", "list")
    assert r.exit_code == 2
    assert f"booking requests are sealed (key {KEY.key_id})" in r.output and "set data_key:" in r.output
    assert "山田" not in r.output
    # A command that acts needs the variable, as every secret's.
    r = cli(path, "config", "check")
    assert r.exit_code == 2 and "data_key: environment variable PORTALGUARD_DATA_KEY is not set" in r.output


def test_plaintext_requests_are_sealed_the_first_time_the_cli_has_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = Store(tmp_path / "pg.db")
    s.add_request("epark", {"name": "山田 花子"})
    s.close()
    monkeypatch.setenv("PORTALGUARD_DATA_KEY", KEY_TEXT)
    r = cli(config(tmp_path), "requests", "list")
    assert r.exit_code == 0 and "山田 花子" in r.output
    s = Store(tmp_path / "pg.db")
    try:
        with s.engine.connect() as conn:
            assert is_sealed(conn.exec_driver_sql("SELECT data FROM booking_requests").scalar_one())
    finally:
        s.close()


def test_a_malformed_key_in_the_environment_is_a_config_error_that_does_not_show_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTALGUARD_DATA_KEY", "hunter2-hunter2-hunter2-hunter2")
    with pytest.raises(ConfigError) as info:
        load(config(tmp_path))
    assert info.value.messages == [
        f"{config(tmp_path)}: data_key: is not a portalguard data key (it starts with pgk1:); "
        "run `portalguard keygen` for a new one"
    ]
    r = cli(config(tmp_path), "status")
    assert r.exit_code == 2 and "data_key" in r.output and "hunter2" not in r.output


def test_no_key_at_all_is_fine_without_a_mirror(tmp_path: Path) -> None:
    data = copy.deepcopy(CONFIG) | {"store": str(tmp_path / "pg.db")}
    del data["data_key"]
    settings = Settings.model_validate(data)
    assert settings.data_key is None and settings.sealing_key() is None


def _settings_data(tmp_path: Path, key: str | None) -> dict[str, Any]:
    data = copy.deepcopy(CONFIG) | {"store": str(tmp_path / "pg.db")}
    if key is None:
        del data["data_key"]
    else:
        data["data_key"] = key
    return data


MIRROR_WITHOUT_KEY = (
    "data_key: portals.epark.mirror keeps patient data, which the store seals with the data key: "
    "set data_key: ${PORTALGUARD_DATA_KEY} (run `portalguard keygen` for one)"
)


def test_a_mirror_needs_the_key(tmp_path: Path) -> None:
    """Checked on whatever a portal's ``mirror`` is (the section is another module's): set it by hand."""
    settings = Settings.model_validate(_settings_data(tmp_path, None))
    object.__setattr__(settings.portals["epark"], "mirror", object())
    with pytest.raises(ValueError, match=re.escape(MIRROR_WITHOUT_KEY)):
        settings._mirror_needs_key()
    keyed = Settings.model_validate(_settings_data(tmp_path, KEY_TEXT))
    object.__setattr__(keyed.portals["epark"], "mirror", object())
    keyed._mirror_needs_key()
    assert keyed.sealing_key() is not None and keyed.sealing_key().key_id == KEY.key_id  # type: ignore[union-attr]
