"""``portalguard requests list|export|purge`` and the automatic retention."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from test_web_support import PORTAL, make_settings

from failover.cli.requests_cmd import requests_group
from failover.retention import purge_expired_requests
from failover.store import Store

DAY = 86400.0


@pytest.fixture(params=["sealed", "plaintext"])
def obj(tmp_path: Path, clock, request: pytest.FixtureRequest) -> SimpleNamespace:
    """Every command shows the same whether the requests are sealed (a data key) or not."""
    return two_requests(tmp_path, clock, sealed=request.param == "sealed")


@pytest.fixture
def sealed_obj(tmp_path: Path, clock) -> SimpleNamespace:
    return two_requests(tmp_path, clock, sealed=True)


def two_requests(tmp_path: Path, clock, *, sealed: bool) -> SimpleNamespace:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, **({} if sealed else {"data_key": None}))
    store = Store(settings.store, clock, data_key=settings.sealing_key())
    store.add_request(
        PORTAL,
        {
            "name": "山田 花子",
            "phone": "090-1234-5678",
            "phone_digits": "09012345678",
            "email": "hanako@example.jp",
            "preferred": [{"date": "2027-01-20", "time": "morning"}, {"date": "2027-01-21", "time": "any"}],
            "visit": "new",
            "reason": "歯が痛い",
            "consent": True,
            "lang": "ja",
        },
    )
    clock.advance(60)
    store.add_request(PORTAL, {"name": '=HYPERLINK("http://evil")', "phone": "+81 3-1234-5678", "visit": "returning"})
    store.set_request_status(1, "contacted")
    return SimpleNamespace(settings=settings, store=store)


def run(obj: SimpleNamespace, *args: str) -> str:
    result = CliRunner().invoke(requests_group, list(args), obj=obj, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_list_newest_first(obj: SimpleNamespace) -> None:
    out = run(obj, "list").splitlines()
    assert out[0].split() == ["#", "received", "portal", "status", "name", "phone", "visit", "preferred"]
    assert out[2].startswith("2 ") and "returning" in out[2]
    assert out[3].startswith("1 ") and "山田 花子" in out[3] and "2027-01-20 morning, 2027-01-21" in out[3]
    assert "2027-01-15 17:00" in out[3]  # clinic time


def test_list_filters(obj: SimpleNamespace) -> None:
    assert "山田" not in run(obj, "list", "--status", "new")
    assert "no booking requests with status booked" in run(obj, "list", "--status", "booked")
    assert "山田" in run(obj, "list", "--portal", PORTAL)


def test_list_unknown_portal_is_a_usage_error(obj: SimpleNamespace) -> None:
    result = CliRunner().invoke(requests_group, ["list", "--portal", "nope"], obj=obj)
    assert result.exit_code == 2
    assert "unknown portal 'nope' (configured: epark)" in result.output


def test_list_json(obj: SimpleNamespace) -> None:
    rows = json.loads(run(obj, "list", "--json"))
    assert [r["id"] for r in rows] == [2, 1]
    assert rows[1]["status"] == "contacted" and rows[1]["data"]["name"] == "山田 花子"
    assert rows[1]["received"] == "2027-01-15 17:00"


def test_export_csv_is_private_excel_friendly_and_formula_safe(obj: SimpleNamespace, tmp_path: Path) -> None:
    path = tmp_path / "requests.csv"
    run(obj, "export", "--csv", str(path))
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel then reads UTF-8
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [r["id"] for r in rows] == ["2", "1"]
    assert rows[0]["name"] == '\'=HYPERLINK("http://evil")'
    assert rows[0]["phone"] == "'+81 3-1234-5678"
    assert rows[1]["choice1"] == "2027-01-20 morning" and rows[1]["choice2"] == "2027-01-21"
    assert rows[1]["choice3"] == "" and rows[1]["reason"] == "歯が痛い" and rows[1]["status"] == "contacted"


def test_export_tightens_an_existing_file(obj: SimpleNamespace, tmp_path: Path) -> None:
    path = tmp_path / "requests.csv"
    path.write_text("old")
    path.chmod(0o644)
    run(obj, "export", "--csv", str(path), "--status", "new")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "山田" not in path.read_text(encoding="utf-8-sig")


def test_export_to_stdout(obj: SimpleNamespace) -> None:
    assert run(obj, "export", "--csv", "-").splitlines()[0].lstrip("\ufeff").startswith("id,received,portal")


def test_purge_older_than(obj: SimpleNamespace, clock) -> None:
    clock.advance(30 * DAY - 30)  # request 1 is 30 days + 30 s old, request 2 30 days - 30 s
    out = run(obj, "purge", "--older-than", "30d")
    assert out.startswith("deleted 1 booking request(s) older than 30d")
    assert [r.id for r in obj.store.requests()] == [2]


def test_purge_defaults_to_the_retention(obj: SimpleNamespace, clock) -> None:
    clock.advance(89 * DAY)
    assert run(obj, "purge").startswith("deleted 0 booking request(s) older than 90d")


def test_purge_rejects_a_bad_age(obj: SimpleNamespace) -> None:
    result = CliRunner().invoke(requests_group, ["purge", "--older-than", "soon"], obj=obj)
    assert result.exit_code == 2 and "is not a duration" in result.output


def test_purge_expired_follows_booking_retention(obj: SimpleNamespace, clock) -> None:
    assert purge_expired_requests(obj.store, obj.settings, clock() + 89 * DAY) == 0
    assert purge_expired_requests(obj.store, obj.settings, clock() + 90 * DAY + 1) == 2
    assert obj.store.count_requests() == 0


def test_export_writes_every_row_beyond_the_store_default_limit(obj: SimpleNamespace, tmp_path: Path, clock) -> None:
    extra = 10_001  # the store's requests() returns at most 10,000 rows unless told otherwise
    with sqlite3.connect(obj.settings.store) as db:  # bulk: add_request() commits one row at a time
        db.executemany(
            "INSERT INTO booking_requests (portal, created, data) VALUES (?,?,?)",
            [(PORTAL, clock() + n, json.dumps({"name": f"患者 {n}"})) for n in range(extra)],
        )
    path = tmp_path / "requests.csv"
    result = CliRunner().invoke(requests_group, ["export", "--csv", str(path)], obj=obj, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    ids = [r["id"] for r in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))]
    assert len(ids) == extra + 2 and ids[-2:] == ["2", "1"]  # newest first, down to the oldest
    assert f"wrote {extra + 2} booking request(s)" in result.output


def test_control_characters_stored_by_older_versions_stay_on_one_line(obj: SimpleNamespace) -> None:
    # 4 requests printed as 7 lines: CR, LF, NEL and U+2028 in a phone field reached the terminal.
    for phone in ("090\r1234", "090\n1234", "090\x851234", "090\u20281234\x1b[2J"):
        obj.store.add_request(PORTAL, {"name": "x", "phone": phone, "visit": "new", "preferred": []})
    out = run(obj, "list").splitlines()
    assert len(out) == 2 + 6  # header, rule, the two requests of the fixture and these four
    assert any("090\\r1234" in line for line in out) and any("090\\u20281234\\x1b[2J" in line for line in out)


def test_sealed_requests_without_the_key_exit_2_naming_data_key(sealed_obj: SimpleNamespace, clock) -> None:
    obj = sealed_obj
    keyless = SimpleNamespace(settings=obj.settings, store=Store(obj.settings.store, clock))
    try:
        for args in (["list"], ["export", "--csv", "-"]):
            result = CliRunner().invoke(requests_group, args, obj=keyless)
            assert result.exit_code == 2, result.output
            assert "booking requests are sealed" in result.output and "set data_key:" in result.output
            assert "山田" not in result.output
        assert "deleted 0 booking request(s)" in run(keyless, "purge", "--older-than", "30d")  # needs no key
    finally:
        keyless.store.close()


def test_sealed_requests_leave_no_plaintext_in_the_file(sealed_obj: SimpleNamespace) -> None:
    obj = sealed_obj
    obj.store.close()
    raw = b"".join(p.read_bytes() for p in Path(obj.settings.store).parent.glob("portalguard.db*"))
    for text in ("山田 花子", "090-1234-5678", "hanako@example.jp", "歯が痛い"):
        assert text.encode() not in raw
