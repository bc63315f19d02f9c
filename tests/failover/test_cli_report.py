"""``portalguard report availability`` on the scripted month (tests/failover/report_script.py): each
format, the period options and their errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from failover.cli import main
from failover.cli.common import App
from tests.failover.report_script import NOW, march

ADS = {
    "type": "google_ads",
    "customer_id": "1234567890",
    "campaign_ids": ["111"],
    "max_daily_budget": 5000,
    "credentials": {"developer_token": "${ADS_TOKEN}"},  # unset: the report is read-only, it needs none
}


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    def portal() -> dict[str, Any]:
        return {"endpoints": {"public": {"url": "http://127.0.0.1:9/"}}, "book_url": "http://127.0.0.1:9/b"}

    data = {
        "clinics": {
            "shibuya": {"name": "さくら歯科 渋谷院", "phone": "03-1234-5678"},
            "shinjuku": {"name": "さくら歯科 新宿院", "phone": "03-1234-5679"},
        },
        "store": str(tmp_path / "pg.db"),
        "actions": {"ads": ADS},
        "portals": {
            "epark": {**portal(), "name": "EPARK 渋谷", "clinic": "shibuya", "actions": ["ads"]},
            "other": {**portal(), "clinic": "shinjuku"},
        },
    }
    path = tmp_path / "portalguard.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    monkeypatch.delenv("PORTALGUARD_CONFIG", raising=False)
    monkeypatch.delenv("ADS_TOKEN", raising=False)
    script = march(tmp_path / "pg.db", "Asia/Tokyo")
    script.store.close()
    now = script.ts(NOW) + 1  # the service running (its heartbeat fresh), no clock published: the wall clock
    monkeypatch.setattr(App, "wall", staticmethod(lambda: now))
    return path


def cli(cfg: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["-c", str(cfg), "report", "availability", *args])


def test_markdown_of_a_month(cfg: Path) -> None:
    r = cli(cfg, "--month", "2026-03", "--portal", "epark")
    assert r.exit_code == 0, r.output
    assert r.output.startswith("# Availability report: 2026-03 (Asia/Tokyo)\n")
    assert "- Period: 2026-03-01 00:00:00 JST – 2026-04-01 00:00:00 JST" in r.output
    assert "## EPARK 渋谷 (epark)" in r.output
    assert "| Availability | 99.462 % |" in r.output
    assert "| Outages | 4 |" in r.output
    assert "| Booking requests during outages | 3 |" in r.output
    assert "| Ads ran | 165 min |" in r.output
    assert (
        "| 4 | 2026-03-31 23:40:00 JST | 2026-04-01 00:00:00 JST (goes on after the period: cut at its end) |"
        in r.output
    )


def test_japanese_markdown_and_the_month_still_running(cfg: Path) -> None:
    r = cli(cfg, "--portal", "epark", "--language", "ja")  # default: this month, April, until now
    assert r.exit_code == 0, r.output
    assert r.output.startswith("# 稼働率レポート: 2026-04 (Asia/Tokyo)\n")
    assert "- 期間: 2026-04-01 00:00:00 JST – 2026-04-05 12:00:01 JST (現在まで)" in r.output
    assert "| 障害回数 | 1 |" in r.output and "期間前から：期間の開始で区切り" in r.output


def test_json_and_csv(cfg: Path) -> None:
    r = cli(cfg, "--month", "2026-03", "--format", "json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    epark, other = data["portals"]
    assert (epark["portal"], epark["down_s"], epark["unobserved_s"], epark["outages"]) == ("epark", 14_380, 4830, 4)
    assert [o["to_failover_s"] for o in epark["outage_list"]] == [75, None, 60, 90]
    assert other["portal"] == "other" and other["outages"] == 0 and other["ads_minutes"] == 0
    rows = list(csv.DictReader(io.StringIO(cli(cfg, "--month", "2026-03", "--format", "csv").output)))
    assert [(row["portal"], row["availability_percent"], row["requests_during_outages"]) for row in rows] == [
        ("epark", "99.4621", "3"),
        ("other", "", "0"),  # no verdict of its own: UNKNOWN all along, unobserved, no figure made up
    ]
    outages = list(csv.DictReader(io.StringIO(cli(cfg, "--month", "2026-03", "--format", "csv", "--outages").output)))
    assert [(o["number"], o["duration_s"], o["unobserved_s"]) for o in outages] == [
        ("1", "3600", "0"),
        ("2", "7200", "0"),
        ("3", "4200", "1820"),
        ("4", "1200", "0"),
    ]


def test_dates_and_a_clinic(cfg: Path) -> None:
    r = cli(cfg, "--from", "2026-03-10", "--to", "2026-03-11", "--clinic", "shibuya", "--format", "json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["period"] == {
        "label": "2026-03-10 – 2026-03-11",
        "start": "2026-03-10T00:00:00+09:00",
        "end": "2026-03-12T00:00:00+09:00",
    }
    assert [p["portal"] for p in data["portals"]] == ["epark"]
    assert data["portals"][0]["down_s"] == 2380


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--month", "2026-3"], "'2026-3' is not a month: write it as YYYY-MM, e.g. 2026-03"),
        (["--from", "2026-03-05", "--to", "2026-03-01"], "--to 2026-03-01 is before --from 2026-03-05"),
        (["--from", "2026-03-05"], "--from and --to go together"),
        (["--month", "2026-03", "--from", "2026-03-05", "--to", "2026-03-06"], "give --month or --from/--to, not both"),
        (["--portal", "nope"], "unknown portal 'nope' (configured: epark, other)"),
        (["--clinic", "nope"], "unknown clinic 'nope' (clinics: shibuya, shinjuku)"),
        (["--outages"], "--outages is for --format csv"),
    ],
)
def test_errors_say_what_to_do(cfg: Path, args: list[str], message: str) -> None:
    r = cli(cfg, *args)
    assert r.exit_code == 2 and message in r.output, r.output
