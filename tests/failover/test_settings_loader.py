"""The config file: valid examples load, each invalid example fails with exactly its expected lines.

Invalid configs are files in ``tests/configs/invalid/``: ``NAME.yaml`` and ``NAME.expected`` (the exact
messages, one per line). Add a case by adding the two files.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from failover.settings import Settings
from failover.settings import loader as config_file
from failover.settings.loader import ConfigError, load
from failover.settings.source import config_path

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "tests" / "configs"
EXAMPLE = ROOT / "config" / "example.yaml"

# The environment the invalid cases are loaded with (missing_env_var.yaml relies on what is absent).
CASE_ENV = {
    "PORTAL_USER": "staff-user",
    "BLANK_TOKEN": "",
    "STAFF_PASSWORD": "case-staff-pw-0123456",
    "LISTEN_ADDR": "no-port-here",
}

# Every variable config/example.yaml and tests/configs/valid/*.yaml use, with recognisable fake values.
FULL_ENV = {
    name: f"fake-{name.lower()}-value"
    for name in (
        "PORTAL_USER",
        "PORTAL_PASSWORD",
        "PORTALGUARD_STAFF_PASSWORD",
        "STAFF_TOKEN",
        "ADS_DEV_TOKEN",
        "ADS_CLIENT_ID",
        "ADS_CLIENT_SECRET",
        "ADS_REFRESH_TOKEN",
        "SLACK_URL",
        "MAIL_URL",
        "IVR_WEBHOOK_URL",
        "IVR_SECRET",
    )
}

INVALID = sorted((CONFIGS / "invalid").glob("*.yaml"))
VALID = [*sorted((CONFIGS / "valid").glob("*.yaml")), EXAMPLE]

MINIMAL = """\
clinic: {name: "さくら歯科", phone: "03-1234-5678"}
portals:
  epark-shibuya:
    endpoints:
      public: {url: "https://portal.example.jp/c/1"}
      admin:
        url: "https://admin.portal.example.jp/login"
        login: {username: u, password: "PASSWORD", success_contains: ["ログアウト"]}
    book_url: "https://portal.example.jp/c/1/book"
"""


def write(tmp_path: Path, text: str, name: str = "portalguard.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def messages(path: Path, environ: dict[str, str]) -> list[str]:
    """The messages for ``path`` given as its name from its own directory (they show the path as given)."""
    with contextlib.chdir(path.parent), pytest.raises(ConfigError) as info:
        load(Path(path.name), environ=environ)
    return info.value.messages


# -- the example files ----------------------------------------------------------------------------


def test_there_are_enough_invalid_cases() -> None:
    assert len(INVALID) >= 16
    stems = {p.stem for p in INVALID}
    assert stems == {p.stem for p in (CONFIGS / "invalid").glob("*.expected")}, "each case needs both files"


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_config_fails_with_exactly_the_expected_messages(path: Path) -> None:
    expected = path.with_suffix(".expected").read_text(encoding="utf-8").splitlines()
    assert messages(path, dict(CASE_ENV)) == expected


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_config_loads(path: Path) -> None:
    settings = load(path, environ=dict(FULL_ENV))
    assert settings.portals
    for portal_id in settings.portals:
        assert set(settings.portal_actions(portal_id)) == set(settings.portals[portal_id].actions)


def test_example_needs_its_environment_variables() -> None:
    env = {k: v for k, v in FULL_ENV.items() if k != "ADS_DEV_TOKEN"}
    assert messages(EXAMPLE, env) == [
        "example.yaml: actions.ads.credentials.developer_token: environment variable ADS_DEV_TOKEN is not set "
        "(set it where portalguard runs, e.g. in the systemd EnvironmentFile)"
    ]


def test_full_config_values() -> None:
    s = load(CONFIGS / "valid" / "full.yaml", environ=dict(FULL_ENV))
    p = s.portals["epark-shibuya"]
    assert (p.interval, p.timeout, p.down_after.seconds, p.up_after.seconds) == (60.0, 20.0, 120.0, 90.0)
    assert s.portals["shika_2"].timeout == 2.5 and s.failover.tick == 0.5
    assert p.endpoints["admin"].login is not None
    assert p.endpoints["admin"].login.password.get_secret_value() == "fake-portal_password-value"
    assert s.staff.password is not None and s.staff.password.get_secret_value() == "pa$word-0123456789"  # `$$` -> `$`
    assert s.server.metrics_listen is None
    assert [a.type for a in s.portal_actions("epark-shibuya").values()] == [
        "fallback_page",
        "google_ads",
        "notify",
        "webhook",
    ]


def test_minimal_config_gets_the_documented_defaults() -> None:
    s = load(CONFIGS / "valid" / "minimal.yaml", environ={})
    p = s.portals["epark-shibuya"]
    assert (p.interval, p.timeout, p.trigger, p.min_failover) == (15.0, 10.0, "public", 300.0)
    assert (p.down_after.failures, p.down_after.seconds, p.up_after.successes, p.up_after.seconds) == (
        3,
        30.0,
        4,
        60.0,
    )
    assert (s.store, s.server.listen, s.clinic.timezone, s.actions) == (
        "./portalguard.db",
        "127.0.0.1:8080",
        "Asia/Tokyo",
        {},
    )


# -- where the file is ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "env_value", "expected"),
    [
        ("given.yaml", "from-env.yaml", "given.yaml"),
        (None, "from-env.yaml", "from-env.yaml"),
        (None, None, "portalguard.yaml"),
        (None, "", "portalguard.yaml"),
    ],
    ids=["option-wins", "environment-next", "default-last", "empty-environment-ignored"],
)
def test_config_path_precedence(
    option: str | None, env_value: str | None, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if env_value is None:
        monkeypatch.delenv("PORTALGUARD_CONFIG", raising=False)
    else:
        monkeypatch.setenv("PORTALGUARD_CONFIG", env_value)
    assert config_path(option) == Path(expected)


def test_missing_file_says_how_to_give_one(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert messages(path, {}) == [
        "nope.yaml: no such file (give -c FILE, set PORTALGUARD_CONFIG, or create ./portalguard.yaml; "
        "config/example.yaml is a commented start)"
    ]


def test_environ_defaults_to_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, MINIMAL.replace('"PASSWORD"', '"${PG_TEST_PASSWORD}"'))
    monkeypatch.setenv("PG_TEST_PASSWORD", "from-os-environ")
    login = load(path).portals["epark-shibuya"].endpoints["admin"].login
    assert login is not None and login.password.get_secret_value() == "from-os-environ"


# -- ${VAR} expansion -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "loaded"),
    [
        ("${PW}", "sekret"),
        ("pre-${PW}-post", "pre-sekret-post"),
        ("$$", "$"),
        ("pa$$word", "pa$word"),
        ("$${PW}", "${PW}"),
        ("$$$${PW}", "$${PW}"),
        ("$$${PW}", "$sekret"),
        ("$PW", "$PW"),  # only the braced form expands
        ("a$b", "a$b"),
    ],
    ids=[
        "whole",
        "embedded",
        "dollar",
        "literal-dollar",
        "escaped-ref",
        "two-dollars",
        "dollar-then-ref",
        "unbraced",
        "lone-dollar",
    ],
)
def test_expansion_and_dollar_escapes(tmp_path: Path, written: str, loaded: str) -> None:
    path = write(tmp_path, MINIMAL.replace('"PASSWORD"', json.dumps(written)))
    login = load(path, environ={"PW": "sekret"}).portals["epark-shibuya"].endpoints["admin"].login
    assert login is not None and login.password.get_secret_value() == loaded


def test_expansion_leaves_keys_and_non_strings_alone(tmp_path: Path) -> None:
    path = write(
        tmp_path, MINIMAL.replace("    book_url:", "    down_after: {failures: 5, seconds: 45}\n    book_url:")
    )
    p = load(path, environ={}).portals["epark-shibuya"]
    assert (p.down_after.failures, p.down_after.seconds) == (5, 45.0)


def test_every_missing_variable_is_named_once_with_its_key(tmp_path: Path) -> None:
    text = MINIMAL.replace("username: u", 'username: "${A}"').replace('"PASSWORD"', '"${B}${A}"')
    assert messages(write(tmp_path, text), {}) == [
        "portalguard.yaml: portals.epark-shibuya.endpoints.admin.login.username: environment variable A "
        "is not set (set it where portalguard runs, e.g. in the systemd EnvironmentFile)",
        "portalguard.yaml: portals.epark-shibuya.endpoints.admin.login.password: environment variable B "
        "is not set (set it where portalguard runs, e.g. in the systemd EnvironmentFile)",
        "portalguard.yaml: portals.epark-shibuya.endpoints.admin.login.password: environment variable A "
        "is not set (set it where portalguard runs, e.g. in the systemd EnvironmentFile)",
    ]


# -- secrets never in messages --------------------------------------------------------------------

SENTINEL = "Sentinel-9f3b7c"


@pytest.mark.parametrize(
    ("change", "env", "expected"),
    [
        (
            ('success_contains: ["ログアウト"]', "success_contains: []"),
            {"PORTAL_PASSWORD": SENTINEL},
            "portals.epark-shibuya.endpoints.admin.login.success_contains: must not be empty",
        ),
        (
            ("username: u", "username: ''"),
            {"PORTAL_PASSWORD": SENTINEL},
            "portals.epark-shibuya.endpoints.admin.login.username: must not be empty",
        ),
        (
            ("clinic: {", 'server: {listen: "${PORTAL_PASSWORD}"}\nclinic: {'),
            {"PORTAL_PASSWORD": SENTINEL},
            'server.listen: "${PORTAL_PASSWORD}" is not host:port (use 127.0.0.1:8080)',
        ),
        (
            ('phone: "03-1234-5678"', 'phone: "${PORTAL_PASSWORD}"'),
            {"PORTAL_PASSWORD": SENTINEL},
            "clinic.phone: is not a phone number (use digits and dashes, e.g. 03-1234-5678)",
        ),
        (
            ("    book_url:", "    interval: ${PORTAL_PASSWORD}\n    book_url:"),
            {"PORTAL_PASSWORD": SENTINEL},
            'portals.epark-shibuya.interval: "${PORTAL_PASSWORD}" is not a duration (use 15s, 2m)',
        ),
        (
            ("    book_url:", "    down_after: {failures: '${PORTAL_PASSWORD}'}\n    book_url:"),
            {"PORTAL_PASSWORD": SENTINEL},
            "portals.epark-shibuya.down_after.failures: must be a whole number",
        ),
        (
            ('{url: "https://portal.example.jp/c/1"}', '{url: "ftp://x:${PORTAL_PASSWORD}@h/"}'),
            {"PORTAL_PASSWORD": SENTINEL},
            "portals.epark-shibuya.endpoints.public.url: is not an http(s) URL (use https://host/path)",
        ),
    ],
    ids=["nearby-error", "sibling-error", "in-listen", "in-pattern-field", "in-duration", "in-int", "in-url"],
)
def test_environment_values_never_appear_in_messages(
    tmp_path: Path, change: tuple[str, str], env: dict[str, str], expected: str
) -> None:
    text = MINIMAL.replace('"PASSWORD"', '"${PORTAL_PASSWORD}"').replace(*change)
    got = messages(write(tmp_path, text), env)
    assert got == [f"portalguard.yaml: {expected}"]
    assert SENTINEL not in "\n".join(got)


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("password: 8675309", "8675309"),
        ("password: [hunter2, x]", "hunter2"),
        ("password: {pw: hunter2}", "hunter2"),
    ],
    ids=["int", "list", "mapping"],
)
def test_a_secret_of_the_wrong_type_is_not_echoed(tmp_path: Path, line: str, value: str) -> None:
    got = messages(write(tmp_path, MINIMAL.replace('password: "PASSWORD"', line)), {})
    assert len(got) == 1 and got[0].startswith(
        "portalguard.yaml: portals.epark-shibuya.endpoints.admin.login.password: must be a string"
    )
    assert value not in got[0]


def test_secret_wrong_type_case_echoes_none_of_its_values() -> None:
    got = "\n".join(messages(CONFIGS / "invalid" / "secret_wrong_type.yaml", dict(CASE_ENV)))
    for value in ("8675309", "31337", "4242", "90210"):
        assert value not in got


def test_bad_url_case_does_not_echo_the_url() -> None:
    got = "\n".join(messages(CONFIGS / "invalid" / "bad_url.yaml", dict(CASE_ENV)))
    assert "hunter2" not in got and "portal.example.jp" not in got


# -- the JSON Schema ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict[str, object]:
    doc = Settings.model_json_schema()
    jsonschema.Draft202012Validator.check_schema(doc)
    return json.loads(json.dumps(doc))  # what `portalguard config schema` prints: plain JSON


def expanded(path: Path, env: dict[str, str]) -> object:
    refs = config_file._Refs(env)
    return refs.expand(yaml.safe_load(path.read_text(encoding="utf-8")), ())


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_schema_accepts_the_valid_configs(schema: dict[str, object], path: Path) -> None:
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(expanded(path, dict(FULL_ENV))))
    assert [e.message for e in errors] == []


@pytest.mark.parametrize(
    "case",
    [
        "bad_interval",
        "unknown_key",
        "unknown_key_top_level",
        "missing_book_url",
        "missing_portals",
        "bad_trigger",
        "unknown_action_type",
        "bad_endpoint_name",
        "bad_portal_id",
    ],
)
def test_schema_rejects_what_the_loader_rejects(schema: dict[str, object], case: str) -> None:
    data = expanded(CONFIGS / "invalid" / f"{case}.yaml", dict(CASE_ENV))
    assert not jsonschema.Draft202012Validator(schema).is_valid(data)


def test_schema_defaults_are_valid_yaml_values(schema: dict[str, object]) -> None:
    """Editors insert defaults as they are: a duration default must read "15s", not 15.0."""
    defs = schema["$defs"]
    assert isinstance(defs, dict)
    checked = 0
    for model in [schema, *defs.values()]:
        for name, prop in model.get("properties", {}).items():
            if "default" in prop and prop["default"] is not None:
                validator = jsonschema.Draft202012Validator({**prop, "$defs": defs})
                assert validator.is_valid(prop["default"]), (model.get("title"), name, prop["default"])
                checked += 1
    assert checked > 20
    assert defs["FailoverPortal"]["properties"]["interval"]["default"] == "15s"


@pytest.mark.parametrize("name", ["alias_bomb", "deep_nesting"])
def test_hostile_yaml_is_refused_quickly_by_config_check(name: str) -> None:
    # A 342-byte alias bomb used to run for minutes; deep nesting ended in a RecursionError traceback.
    import subprocess
    import sys

    path = CONFIGS / "invalid" / f"{name}.yaml"
    portalguard = Path(sys.executable).parent / "portalguard"
    done = subprocess.run(
        [str(portalguard), "-c", f"invalid/{path.name}", "config", "check"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=CONFIGS,
    )
    assert done.returncode == 2
    expected = path.with_suffix(".expected").read_text(encoding="utf-8").strip()
    assert done.stderr.strip() == f"portalguard: invalid/{expected}", "the path as given"


# -- issue 14 item 15: messages that help ---------------------------------------------------------


def test_messages_show_the_path_as_given(tmp_path: Path) -> None:
    (tmp_path / "typo").mkdir()
    (tmp_path / "typo" / "a.yaml").write_text(MINIMAL.replace("book_url:", "book_urll:"), encoding="utf-8")
    with contextlib.chdir(tmp_path), pytest.raises(ConfigError) as info:
        load(Path("typo/a.yaml"), environ={})
    assert info.value.messages[0].startswith("typo/a.yaml: portals.epark-shibuya.book_url: is required")


@pytest.mark.parametrize(
    ("text", "first", "line"),
    [
        pytest.param(
            MINIMAL.replace("book_url:", "\tbook_url:"),
            "line 9, column 5: invalid YAML: a character no value can start with (a tab? indent with spaces only)",
            '    \tbook_url: "https://portal.example.jp/c/1/book"',
            id="tab",
        ),
        pytest.param(
            MINIMAL + "failover:\n  tick: 1s: 2s\n",
            'invalid YAML: a second colon in a value: put a value that contains ": " in quotes',
            "  tick: 1s: 2s",
            id="colon",
        ),
        pytest.param(
            MINIMAL.replace('    book_url: "', '   book_url: "'),
            "invalid YAML: the indentation does not line up with the lines above",
            '   book_url: "https://portal.example.jp/c/1/book"',
            id="indentation",
        ),
    ],
)
def test_yaml_syntax_errors_in_words_with_the_line(tmp_path: Path, text: str, first: str, line: str) -> None:
    got = messages(write(tmp_path, text), {})
    assert got[0].startswith("portalguard.yaml: line ") and first in got[0], got
    number = got[0].split("line ", 1)[1].split(",", 1)[0]
    column = int(got[0].split("column ", 1)[1].split(":", 1)[0])
    assert got[1] == f"  {number} | {line}"
    assert got[2] == f"  {' ' * len(number)} | {' ' * (column - 1)}^"


def test_an_ordinary_word_from_the_environment_is_not_masked(tmp_path: Path) -> None:
    """PORTAL_USER=staff at a username (no secret) must not hide the action named `staff`."""
    text = (
        MINIMAL.replace("username: u", 'username: "${PORTAL_USER}"').replace(
            "    book_url:", "    actions: [ads, staff, page, nope]\n    book_url:"
        )
        + "actions:\n  staff: {type: notify, urls: ['json://127.0.0.1:9/']}\n  page: {type: fallback_page}\n"
    )
    got = messages(write(tmp_path, text), {"PORTAL_USER": "staff"})
    assert any("staff" in line and "${PORTAL_USER}" not in line for line in got), got


def test_a_secret_is_masked_only_when_long_enough(tmp_path: Path) -> None:
    long_secret, short = "hunter2-long-pw", "abc12"
    for value, masked in ((long_secret, True), (short, False)):
        text = MINIMAL.replace('"PASSWORD"', '"${PORTAL_PASSWORD}"').replace(
            "    book_url:", f"    actions: [{value}]\n    book_url:"
        )
        got = "\n".join(messages(write(tmp_path, text), {"PORTAL_PASSWORD": value}))
        assert (value not in got) is masked and ("${PORTAL_PASSWORD}" in got) is masked, got


# -- several instances: the site and the ha section -----------------------------------------------


def test_the_site_is_the_host_name_unless_the_file_or_the_environment_says(tmp_path: Path) -> None:
    from failover.settings.model import default_site

    path = write(tmp_path, MINIMAL.replace("PASSWORD", "pw"))
    settings = load(path, environ={})
    assert settings.site == default_site() and settings.site
    assert settings.ha.lease == 10.0 and settings.ha.quorum == "majority"
    named = write(tmp_path, "site: vps-tokyo\nha: {quorum: 2, lease: 6s}\n" + MINIMAL.replace("PASSWORD", "pw"))
    assert load(named, environ={}).site == "vps-tokyo"
    assert (load(named, environ={}).ha.quorum, load(named, environ={}).ha.lease) == (2, 6.0)
    # One config file for every machine: the environment names the site, and wins.
    assert load(named, environ={"PORTALGUARD_SITE": "clinic-shibuya"}).site == "clinic-shibuya"
    with contextlib.chdir(tmp_path), pytest.raises(ConfigError) as info:
        load(Path(named.name), environ={"PORTALGUARD_SITE": "clinic shibuya"})
    assert info.value.messages[0].startswith('portalguard.yaml: site: "clinic shibuya" is not a site name')


def test_a_site_is_stale_after_three_of_the_longest_intervals_by_default(tmp_path: Path) -> None:
    text = MINIMAL.replace("PASSWORD", "pw").replace("    book_url:", "    interval: 20s\n    book_url:")
    settings = load(write(tmp_path, text), environ={})
    assert settings.site_stale_after() == 60.0
    given = load(write(tmp_path, "ha: {site_stale_after: 45s}\n" + text), environ={})
    assert given.site_stale_after() == 45.0
