"""The availability report: a scripted month through the real store, with exact figures, in a zone
without DST and one with it; and the rules of the timeline one by one."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from failover.report.availability import Availability, Change, History, Switch, availability, timeline
from failover.report.history import read_history, runs
from failover.report.period import PeriodError, days, month, this_month
from failover.report.render import View, csv_report, json_report, markdown
from failover.store import Event
from tests.failover.report_script import NOW, PORTAL, Script, march

HOUR = 3600.0


def report_of(tmp_path: Path, zone: str, period_text: str = "2026-03") -> tuple[Availability, Script]:
    s = march(tmp_path / "pg.db", zone)
    period = month(period_text, ZoneInfo(zone))
    now = s.ts(NOW)
    history = read_history(s.store, PORTAL, ["ads"], period.start, now)
    return availability(PORTAL, history, period.start, period.end, now), s


# Per zone: the month's length, downtime, the outage across the DST switch, the longest, the MTTR.
FIGURES = {
    "Asia/Tokyo": (31 * 24 * HOUR, 14_380, 7200, 7200, 4050),
    "America/New_York": ((31 * 24 - 1) * HOUR, 10_780, 3600, 3600, 3150),
}


@pytest.mark.parametrize("zone", FIGURES)
def test_a_scripted_month_gives_exact_figures(tmp_path: Path, zone: str) -> None:
    length, down, dst_outage, longest, mttr = FIGURES[zone]
    r, s = report_of(tmp_path, zone)
    assert r.end - r.start == length
    # Unobserved: the stop inside outage B (00:10:00 → DOWN again at 00:40:20), the kill -9 gap
    # (last heartbeat 12:00:00 → UP at 12:30:10), our own network down (20 min).
    assert r.unobserved == 1820 + 1810 + 1200
    assert r.down == down
    assert r.up == length - 4830 - down == 2_659_190
    assert r.ratio == pytest.approx(2_659_190 / (length - 4830))
    assert [(s.when(o.start), s.when(o.end), o.duration, o.unobserved, o.down) for o in r.outages] == [
        ("2026-03-01 00:00:00", "2026-03-01 01:00:00", 3600, 0, 3600),  # A, cut at the month's start
        ("2026-03-08 01:30:00", "2026-03-08 03:30:00", dst_outage, 0, dst_outage),  # D, across the DST switch
        ("2026-03-10 23:50:00", "2026-03-11 01:00:00", 4200, 1820, 2380),  # B, the stop in its middle
        ("2026-03-31 23:40:00", "2026-04-01 00:00:00", 1200, 0, 1200),  # C, cut at the month's end
    ]
    assert [(o.clipped_start, o.clipped_end, o.ongoing) for o in r.outages] == [
        (True, False, False),
        (False, False, False),
        (False, False, False),
        (False, True, False),
    ]
    assert [o.cause for o in r.outages] == [
        "public: http_status (HTTP 503)",
        "public: timeout",
        "public: http_status (HTTP 503)",
        "public: http_status (HTTP 503)",
    ]
    assert [o.to_failover for o in r.outages] == [75, None, 60, 90]
    assert r.to_failover == 75
    assert [o.requests for o in r.outages] == [1, 0, 2, 0]  # A's request before the month is not in it
    assert r.requests == 3  # the request of Mar 15 came while the portal was up
    assert r.longest == longest
    assert r.mttr == mttr
    assert r.ads == 4200 + 4620 + 1080  # B's ads ran on while the service was stopped


def test_the_next_month_begins_with_the_rest_of_the_outage_and_ends_now(tmp_path: Path) -> None:
    r, s = report_of(tmp_path, "Asia/Tokyo", "2026-04")
    assert s.when(r.end) == NOW  # a month still running ends now
    assert [(s.when(o.start), o.duration, o.clipped_start) for o in r.outages] == [("2026-04-01 00:00:00", 1200, True)]
    assert r.down == 1200 and r.unobserved == 0
    assert r.up == r.end - r.start - 1200
    assert r.ads == 30 * 60


def test_local_dates_both_included(tmp_path: Path) -> None:
    s = march(tmp_path / "pg.db", "Asia/Tokyo")
    period = days("2026-03-10", "2026-03-11", s.zone)
    assert (s.when(period.start), s.when(period.end)) == ("2026-03-10 00:00:00", "2026-03-12 00:00:00")
    history = read_history(s.store, PORTAL, ["ads"], period.start, s.ts(NOW))
    r = availability(PORTAL, history, period.start, period.end, s.ts(NOW))
    assert [(o.duration, o.unobserved, o.clipped_start, o.clipped_end) for o in r.outages] == [
        (4200, 1820, False, False)
    ]
    assert r.unobserved == 1820 and r.down == 2380 and r.requests == 2


def test_history_before_the_first_start_is_unobserved(tmp_path: Path) -> None:
    r, _ = report_of(tmp_path, "Asia/Tokyo", "2026-01")
    assert (r.up, r.down, r.ratio, r.outages) == (0, 0, None, [])
    assert r.unobserved == 31 * 24 * HOUR


# -- the renderings ----------------------------------------------------------------------------------


def test_markdown_json_and_csv_carry_the_same_figures(tmp_path: Path) -> None:
    r, s = report_of(tmp_path, "Asia/Tokyo")
    period = month("2026-03", s.zone)
    view = View(s.zone, names={PORTAL: "EPARK"})
    md = markdown([r], period, view)
    assert "# Availability report: 2026-03 (Asia/Tokyo)" in md
    assert "| Availability | 99.462 % |" in md  # 2659190 / 2673570
    assert "| Time unobserved | 1h20m30s |" in md
    assert "| Outages | 4 |" in md
    assert "| Mean time to recovery | 1h7m30s |" in md
    assert "| Ads ran | 165 min |" in md
    assert "| 1 | 2026-03-01 00:00:00 JST (before the period: cut at its start) | 2026-03-01 01:00:00 JST |" in md
    assert (
        "| 2 | 2026-03-08 01:30:00 JST | 2026-03-08 03:30:00 JST | 2h | 0s | public: timeout | no failover | 0 |" in md
    )
    ja = markdown([r], period, view, "ja")
    assert "| 稼働率 | 99.462 % |" in ja and "フェイルオーバーなし" in ja
    data = json_report([r], period, view)
    row = data["portals"][0]
    assert data["period"] == {
        "label": "2026-03",
        "start": "2026-03-01T00:00:00+09:00",
        "end": "2026-04-01T00:00:00+09:00",
    }
    assert {
        k: row[k] for k in ("observed_s", "unobserved_s", "up_s", "down_s", "outages", "mttr_s", "ads_minutes")
    } == {
        "observed_s": 2_673_570,
        "unobserved_s": 4830,
        "up_s": 2_659_190,
        "down_s": 14_380,
        "outages": 4,
        "mttr_s": 4050,
        "ads_minutes": 165,
    }
    assert row["availability_percent"] == round(2_659_190 / 2_673_570 * 100, 4)
    assert row["outage_list"][2]["start"] == "2026-03-10T23:50:00+09:00"
    lines = csv_report([r], view).splitlines()
    assert lines[0].startswith("portal,name,period_start,period_end,availability_percent,observed_s")
    assert lines[1].startswith("epark,EPARK,2026-03-01T00:00:00+09:00,2026-04-01T00:00:00+09:00,99.4621,2673570,4830,")
    outages = csv_report([r], view, outages=True).splitlines()
    assert len(outages) == 5
    assert outages[3] == (
        "epark,3,2026-03-10T23:50:00+09:00,2026-03-11T01:00:00+09:00,4200,1820,2380,"
        "public: http_status (HTTP 503),60,2,False,False,False"
    )


def test_a_cause_cannot_become_a_spreadsheet_formula() -> None:
    h = History([(0.0, 100.0)], [Change(0, "up"), Change(10, "degraded", "=HYPERLINK(1)"), Change(20, "down")])
    r = availability("p", h, 0, 100, 100)
    assert "'=HYPERLINK(1)" in csv_report([r], View(ZoneInfo("UTC")), outages=True)
    assert r.outages[0].ongoing


# -- the timeline's rules ------------------------------------------------------------------------------


def states(h: History, now: float) -> list[tuple[float, float, str]]:
    return [(s.start, s.end, s.state) for s in timeline(h, now)]


def test_a_blip_is_up_and_a_false_recovery_stays_down() -> None:
    h = History(
        [(0.0, 1000.0)],
        [
            Change(0, "up"),
            Change(100, "degraded"),
            Change(110, "up"),  # a blip
            Change(200, "degraded"),
            Change(230, "down"),
            Change(300, "recovering"),
            Change(310, "down"),  # it never really came back
            Change(400, "recovering"),
            Change(450, "up"),
        ],
    )
    assert states(h, 1000) == [(0, 200, "up"), (200, 400, "down"), (400, 1000, "up")]


def test_an_outage_that_ends_while_unobserved_ends_at_the_last_observation() -> None:
    h = History(
        [(0.0, 500.0), (800.0, 1000.0)],
        [Change(0, "up"), Change(100, "degraded"), Change(150, "down"), Change(810, "up")],
    )
    r = availability("p", h, 0, 1000, 1000)
    assert [(o.start, o.end, o.unobserved) for o in r.outages] == [(100, 500, 0)]
    assert (r.down, r.unobserved) == (400, 310)


def test_a_degraded_still_undecided_at_now_is_not_an_outage_yet() -> None:
    h = History([(0.0, 1000.0)], [Change(0, "up"), Change(990, "degraded")])
    assert availability("p", h, 0, 1000, 1000).outages == []


def test_verdicts_outside_a_run_are_ignored_and_each_run_starts_unknown() -> None:
    h = History([(0.0, 100.0), (200.0, 300.0)], [Change(10, "up"), Change(150, "down"), Change(250, "up")])
    assert states(h, 300) == [(0, 10, "unobserved"), (10, 100, "up"), (100, 250, "unobserved"), (250, 300, "up")]


def test_two_ads_measures_on_at_once_count_once() -> None:
    h = History(
        [(0.0, 100.0)],
        [Change(0, "up")],
        ads=[[Switch(10, True), Switch(50, False)], [Switch(30, True), Switch(70, False)]],
    )
    assert availability("p", h, 0, 100, 100).ads == 60


def test_runs_from_service_events() -> None:
    def ev(ts: float, **detail: object) -> Event:
        return Event(0, ts, None, "service", None, detail)

    service = [ev(0, state="started"), ev(100, state="stopped"), ev(200, state="started"), ev(300, state="started")]
    assert runs(service, heartbeat=395.0, now=400.0) == [(0, 100), (200, 300), (300, 400)]  # running: now
    assert runs(service, heartbeat=350.0, now=400.0) == [(0, 100), (200, 300), (300, 350)]  # killed: its heartbeat
    unclean = [ev(0, state="started"), ev(90, state="stopped", at=60.0, unclean=True)]
    assert runs(unclean, heartbeat=None, now=400.0) == [(0, 60)]


# -- periods ---------------------------------------------------------------------------------------------


def test_periods_and_their_errors() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    march_berlin = month("2026-03", berlin)
    assert march_berlin.end - march_berlin.start == (31 * 24 - 1) * HOUR  # DST began on 29 March
    october = month("2026-10", berlin)
    assert october.end - october.start == (31 * 24 + 1) * HOUR
    december = month("2026-12", berlin)
    assert december.end == month("2027-01", berlin).start
    assert this_month(march_berlin.start, berlin) == "2026-03"
    with pytest.raises(PeriodError, match=r"'2026-13' is not a month: write it as YYYY-MM, e.g. 2026-03"):
        month("2026-13", berlin)
    with pytest.raises(PeriodError, match=r"--to 2026-03-01 is before --from 2026-03-05: give the earlier date"):
        days("2026-03-05", "2026-03-01", berlin)
    with pytest.raises(PeriodError, match=r"--from 'March' is not a date: write it as YYYY-MM-DD"):
        days("March", "2026-03-01", berlin)
