"""A portal's ``mirror:`` section through the config loader: defaults, bounds, the source union from
the table, selectors checked when the config loads, and errors that read like every other one.

Every config here gives a ``data_key`` (a mirror needs one): the errors are the mirror's own.
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from failover.crypto import DataKey
from failover.mirror.config import SOURCE_TYPES, MirrorSettings
from failover.mirror.sources import SOURCES
from failover.mirror.sources.admin_csv import AdminCsvSource
from failover.mirror.sources.admin_html import AdminHtmlSource
from failover.mirror.sources.ics import IcsSource
from failover.settings.loader import ConfigError, load

HOST = "https://admin.portal.example.jp"
DATA_KEY = DataKey.generate()[0]
HTML = {
    "type": "admin_html",
    "url": f"{HOST}/reservations?date={{date}}",
    "next": "a.next",
    "row": "table.list tbody tr",
    "fields": {"id": "@data-reservation-id", "time": "td.time", "name": "td.name", "phone": "td.tel"},
}
CSV = {"type": "admin_csv", "url": f"{HOST}/export.csv?from={{from}}&to={{to}}"}
ICS = {"type": "ics", "url": "https://calendar.example.jp/feed.ics", "username": "cal", "password": "feed-pw-0123"}


def config(mirror: dict[str, Any] | None, *, admin: bool = True, login: bool = True) -> dict[str, Any]:
    endpoints: dict[str, Any] = {"public": {"url": "https://portal.example.jp/c/1"}}
    if admin:
        endpoints["admin"] = {"url": f"{HOST}/login"}
        if login:
            endpoints["admin"]["login"] = {"username": "u", "password": "PASSWORD", "success_contains": ["ログアウト"]}
    portal: dict[str, Any] = {"endpoints": endpoints, "book_url": "https://portal.example.jp/c/1/book"}
    if mirror is not None:
        portal["mirror"] = mirror
    clinic = {"name": "さくら歯科", "phone": "03-1234-5678"}
    return {"clinic": clinic, "data_key": DATA_KEY, "portals": {"sakura": portal}}


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "portalguard.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def errors(tmp_path: Path, data: dict[str, Any]) -> list[str]:
    path = write(tmp_path, data)
    with contextlib.chdir(tmp_path), pytest.raises(ConfigError) as info:  # messages show the path as given
        load(Path(path.name), environ={})
    return info.value.messages


def with_source(source: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(source)
    for key, value in changes.items():
        if value is None:
            changed.pop(key, None)
        else:
            changed[key] = value
    return {"source": changed}


@pytest.mark.parametrize("source", [HTML, CSV, ICS], ids=["admin_html", "admin_csv", "ics"])
def test_a_mirror_loads_with_its_defaults(tmp_path: Path, source: dict[str, Any]) -> None:
    settings = load(write(tmp_path, config({"source": source})), environ={})
    mirror = settings.portals["sakura"].mirror
    assert isinstance(mirror, MirrorSettings)
    assert (mirror.every, mirror.days_ahead, mirror.retention) == (600.0, 14, 7 * 86400.0)
    assert type(mirror.source) is SOURCES[source["type"]].config


def test_no_mirror_by_default(tmp_path: Path) -> None:
    assert load(write(tmp_path, config(None)), environ={}).portals["sakura"].mirror is None


def test_the_source_defaults() -> None:
    html = MirrorSettings.model_validate({"source": HTML}).source
    assert isinstance(html, AdminHtmlSource)
    assert (html.endpoint, html.cancelled_contains, html.empty_contains) == (None, ["キャンセル"], ["予約はありません"])
    assert html.day_url(__import__("datetime").date(2026, 12, 2)) == f"{HOST}/reservations?date=2026-12-02"
    csv = MirrorSettings.model_validate({"source": CSV}).source
    assert isinstance(csv, AdminCsvSource) and csv.encoding is None
    assert csv.columns.model_dump() == {
        "id": "予約番号",
        "date": "予約日",
        "time": "予約時間",
        "name": "お名前",
        "phone": "電話番号",
        "menu": "メニュー",
        "status": "状態",
    }
    ics = MirrorSettings.model_validate({"source": ICS}).source
    assert isinstance(ics, IcsSource) and ics.fields.model_dump() == {"name": "SUMMARY", "phone": None, "menu": None}
    assert ics.basic_auth == ("cal", "feed-pw-0123") and "feed-pw-0123" not in repr(ics)


def test_the_union_of_source_types_is_the_table() -> None:
    assert SOURCE_TYPES == tuple(SOURCES) == ("admin_html", "admin_csv", "ics")


P = "portalguard.yaml: portals.sakura.mirror"

CASES: dict[str, tuple[dict[str, Any], str]] = {
    "every-too-short": (
        {"every": "30s", "source": HTML},
        f"{P}.every: must be at least 1m (each sync logs into the portal's admin screen)",
    ),
    "days-ahead-too-far": ({"days_ahead": 100, "source": HTML}, f"{P}.days_ahead: must be at most 62 (got 100)"),
    "days-ahead-zero": ({"days_ahead": 0, "source": HTML}, f"{P}.days_ahead: must be at least 1 (got 0)"),
    "retention-too-short": (
        {"retention": "12h", "source": HTML},
        f"{P}.retention: must be at least 1d (staff look up yesterday's appointments)",
    ),
    "unknown-type": (
        {"source": {"type": "mail"}},
        f'{P}.source: unknown source type "mail" (use admin_html, admin_csv, ics)',
    ),
    "no-type": ({"source": {"url": f"{HOST}/x"}}, f"{P}.source: needs `type:` (admin_html, admin_csv, ics)"),
    "html-url-without-date": (
        with_source(HTML, url=f"{HOST}/reservations"),
        f"{P}.source.url: must contain {{date}} (each day's list is fetched with it replaced by YYYY-MM-DD)",
    ),
    "csv-url-without-to": (
        with_source(CSV, url=f"{HOST}/export.csv?from={{from}}"),
        f"{P}.source.url: must contain {{to}} (the export is fetched with {{from}} and {{to}} replaced by the "
        "first and last day, YYYY-MM-DD)",
    ),
    "bad-row-selector": (
        with_source(HTML, row="table.list tr[[data"),
        f'{P}.source.row: "table.list tr[[data" is not a CSS selector (e.g. "table.list tbody tr", "td.name")',
    ),
    "bad-field-selector": (
        with_source(HTML, fields={"id": "td..no@data-id", "time": "td.time", "name": "td.name"}),
        f'{P}.source.fields.id: "td..no" is not a CSS selector (e.g. "table.list tbody tr", "td.name")',
    ),
    "empty-selector": (
        with_source(HTML, next=" "),
        f"{P}.source.next: must not be empty (a CSS selector, e.g. td.name)",
    ),
    "field-required": (
        with_source(HTML, fields={"id": "@data-id", "time": "td.time"}),
        f"{P}.source.fields.name: is required",
    ),
    "unknown-key": (
        with_source(HTML, nxt="a.next"),
        f'{P}.source.nxt: unknown key (did you mean "next"? allowed: cancelled_contains, empty_contains, endpoint, '
        "fields, next, row, type, url)",
    ),
    "no-empty-text": (with_source(HTML, empty_contains=[]), f"{P}.source.empty_contains: must not be empty"),
    "unknown-encoding": (
        with_source(CSV, encoding="shift-jis-x"),
        f'{P}.source.encoding: "shift-jis-x" is not an encoding Python knows (e.g. cp932, utf-8)',
    ),
    "ics-half-credentials": (
        with_source(ICS, password=None),
        f"{P}.source: username and password go together (set both for HTTP Basic, or neither)",
    ),
    "ics-bad-property": (
        with_source(ICS, fields={"name": "X NAME"}),
        f'{P}.source.fields.name: "X NAME" is not an iCalendar property name (use e.g. SUMMARY, DESCRIPTION, X-PHONE)',
    ),
    "source-on-another-host": (
        with_source(HTML, url="https://elsewhere.example.jp/r?date={date}"),
        f"{P}.source.url: must be on the host of endpoints.admin (or one of its allow_redirect_hosts): "
        "the staff session's cookies go nowhere else",
    ),
    "endpoint-unknown": (
        with_source(HTML, endpoint="admin-2"),
        f"{P}.source.endpoint: admin-2 is not an endpoint (name an endpoint whose login: staff use, or leave "
        "endpoint out for the first admin endpoint with a login)",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_invalid_mirror_sections(tmp_path: Path, case: tuple[dict[str, Any], str]) -> None:
    mirror, line = case
    found = errors(tmp_path, config(mirror))
    assert line in found, found


@pytest.mark.parametrize("source", [HTML, CSV], ids=["admin_html", "admin_csv"])
@pytest.mark.parametrize("login", [False, True], ids=["no-admin", "admin-without-login"])
def test_admin_sources_need_an_admin_login(tmp_path: Path, source: dict[str, Any], login: bool) -> None:
    found = errors(tmp_path, config({"source": source}, admin=login, login=False))
    assert (
        f"{P}: source {source['type']} reads the admin screen through the staff login: add an endpoints.admin "
        "(or admin-<name>) endpoint with login:, or use source type ics"
    ) in found


def test_a_named_endpoint_without_login(tmp_path: Path) -> None:
    data = config(with_source(HTML, endpoint="admin-2"))
    data["portals"]["sakura"]["endpoints"]["admin-2"] = {"url": f"{HOST}/other"}
    assert (
        f"{P}.source.endpoint: admin-2 has no login: (name an endpoint whose login: staff use, or leave "
        in (errors(tmp_path, data)[0])
    )


def test_another_admin_endpoint_and_allowed_hosts(tmp_path: Path) -> None:
    data = config(with_source(HTML, endpoint="admin-staff", url="https://cdn.portal.example.jp/r?date={date}"))
    data["portals"]["sakura"]["endpoints"]["admin-staff"] = {
        **copy.deepcopy(data["portals"]["sakura"]["endpoints"]["admin"]),
        "allow_redirect_hosts": ["cdn.portal.example.jp"],
    }
    mirror = load(write(tmp_path, data), environ={}).portals["sakura"].mirror
    assert mirror is not None and mirror.source.endpoint == "admin-staff"  # type: ignore[union-attr]


def test_an_ics_mirror_needs_no_admin_endpoint(tmp_path: Path) -> None:
    assert load(write(tmp_path, config({"source": ICS}, admin=False)), environ={}).portals["sakura"].mirror


def test_secrets_never_appear_in_errors(tmp_path: Path) -> None:
    found = errors(tmp_path, config({"days_ahead": 0, "source": with_source(ICS, username=None)["source"]}))
    assert found and not any("feed-pw-0123" in line for line in found)


def test_the_example_config_shows_a_mirror_in_a_comment() -> None:
    lines = (Path(__file__).resolve().parents[2] / "config" / "example.yaml").read_text(encoding="utf-8").splitlines()
    start = lines.index("    # mirror:")
    block = []
    for line in lines[start:]:
        if not line.startswith("    # "):
            break
        block.append(line.removeprefix("    # "))
    section = yaml.safe_load("\n".join(block))
    assert set(section) == {"mirror"}
    assert isinstance(MirrorSettings.model_validate(section["mirror"]).source, AdminHtmlSource)
