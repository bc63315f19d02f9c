"""A dental group in one instance: ``clinics:`` with each portal's ``clinic``, each clinic's own page
and phone, ``/book`` listing the group with each clinic's state, the group's ``staff_alerts:`` getting
every clinic's outage once (real Apprise to a local receiver), config errors naming the keys, and
the ``--clinic`` filters of the CLI."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml
from click.testing import CliRunner
from pydantic import ValidationError

from failover.actions.base import Incident
from failover.cli import main as cli
from failover.fakes.receivers import JsonReceiver
from failover.mirror.model import DayListing, Listed
from failover.service import build_actions
from failover.settings import Settings
from failover.settings.model import GROUP_ALERTS
from failover.store import AsyncStore, Store
from tests.failover.notify_support import deliver_all, make_staff
from tests.failover.test_web_support import STAFF_PASSWORD, STAFF_TOKEN, STAFF_USER, csrf_of, make_web

if TYPE_CHECKING:
    from tests.conftest import FakeClock

pytest_plugins = ["tests.failover.receivers_fixtures"]

SHIBUYA = {"name": "さくら歯科 渋谷院", "phone": "03-1234-5678", "hours": "月〜金 9:30–19:00"}
SHINJUKU = {"name": "さくら歯科 新宿院", "phone": "03-2345-6789", "address": "東京都新宿区西新宿1-1-1"}


def portal(n: int, clinic: str | None, **extra: Any) -> dict[str, Any]:
    base = f"https://portal.example.jp/clinic/{n}"
    return {"endpoints": {"public": {"url": base}}, "book_url": f"{base}/book", **extra} | (
        {"clinic": clinic} if clinic else {}
    )


def group(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "clinics": {"shibuya": SHIBUYA, "shinjuku": SHINJUKU},
        "portals": {
            "epark-shibuya": portal(1, "shibuya", name="EPARK 渋谷院"),
            "epark-shinjuku": portal(2, "shinjuku", name="EPARK 新宿院"),
        },
    }
    return raw | changes


def error(raw: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        Settings.model_validate(raw)
    return str(info.value)


# -- the config ---------------------------------------------------------------------------------


def test_each_portal_books_for_its_clinic() -> None:
    s = Settings.model_validate(group())
    assert s.clinic_of("epark-shinjuku").phone == "03-2345-6789"
    assert s.clinic_of("epark-shibuya").name == "さくら歯科 渋谷院"
    assert s.portals_of("shinjuku") == ["epark-shinjuku"] and s.timezone == "Asia/Tokyo"
    assert list(s.group()) == ["shibuya", "shinjuku"] and s.home().name == "さくら歯科 渋谷院"


def test_one_top_level_clinic_works_unchanged() -> None:
    s = Settings.model_validate({"clinic": SHIBUYA, "portals": {"p": portal(1, None)}})
    assert s.clinic_of("p") is s.clinic and s.clinic_id("p") == "clinic" and s.group() == {"clinic": s.clinic}


def test_a_group_of_one_clinic_needs_no_portal_clinic() -> None:
    s = Settings.model_validate({"clinics": {"shibuya": SHIBUYA}, "portals": {"p": portal(1, None)}})
    assert s.clinic_of("p").name == SHIBUYA["name"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"portals": {"p": portal(1, None)}}, "clinic: is required (name, phone, ...)"),
        (group(clinic=SHIBUYA), "clinic: and clinics: are alternatives"),
        (
            group(portals={"a": portal(1, "shibuya"), "b": portal(2, None)}),
            "portals.b.clinic: required with several clinics (one of: shibuya, shinjuku)",
        ),
        (
            group(portals={"a": portal(1, "shibuya"), "b": portal(2, "shinjyuku")}),
            'portals.b.clinic: unknown clinic "shinjyuku" (clinics: shibuya, shinjuku)',
        ),
        (
            group(portals={"a": portal(1, "shibuya")}),
            "clinics.shinjuku: no portal books for this clinic (set portals.<id>.clinic: shinjuku)",
        ),
        (
            {"clinic": SHIBUYA, "portals": {"a": portal(1, "shibuya")}},
            "portals.a.clinic: this config has one clinic (the top-level clinic:)",
        ),
        (
            group(clinics={"shibuya": SHIBUYA, "shinjuku": {**SHINJUKU, "timezone": "Europe/Paris"}}),
            "clinics: all clinics of one portalguard share one time zone (shibuya: Asia/Tokyo, "
            "shinjuku: Europe/Paris); run one portalguard per time zone",
        ),
    ],
    ids=["none", "both", "clinic-missing", "clinic-unknown", "clinic-without-portal", "single-named", "two-zones"],
)
def test_config_errors_name_the_keys(raw: dict[str, Any], message: str) -> None:
    assert message in error(raw)


def test_two_clinics_cannot_share_an_ads_campaign() -> None:
    ads = {
        "type": "google_ads",
        "customer_id": "1234567890",
        "campaign_ids": ["111"],
        "max_daily_budget": 5000,
        "credentials": {"developer_token": "t"},
    }
    raw = group(actions={"ads-a": ads, "ads-b": copy.deepcopy(ads)})
    raw["portals"]["epark-shibuya"]["actions"] = ["ads-a"]
    raw["portals"]["epark-shinjuku"]["actions"] = ["ads-b"]
    found = error(raw)
    assert (
        "campaign 111 (action ads-b) is also switched by portal epark-shibuya (action ads-a) of another clinic"
        in (found)
        and "(shinjuku and shibuya)" in found
    )


def test_the_group_alerts_name_is_reserved() -> None:
    raw = group(staff_alerts={"urls": ["json://127.0.0.1:1/x"]}, actions={GROUP_ALERTS: {"type": "fallback_page"}})
    assert f"actions.{GROUP_ALERTS}: the name is taken by the top-level staff_alerts:" in error(raw)


# -- the pages ----------------------------------------------------------------------------------


def web_group(tmp_path: Path, clock: FakeClock) -> Any:
    raw = group()
    return make_web(tmp_path, clock, clinic=None, clinics=raw["clinics"], portals=raw["portals"])


@pytest.mark.anyio
async def test_each_portals_fallback_page_shows_its_own_clinic(tmp_path: Path, clock: FakeClock) -> None:
    web = web_group(tmp_path, clock)
    for pid in web.settings.portals:
        web.store.sync.set_page(pid, True)
    async with web.client() as client:
        shinjuku = (await client.get("/book/epark-shinjuku")).text
        shibuya = (await client.get("/book/epark-shibuya")).text
    assert "さくら歯科 新宿院" in shinjuku and 'href="tel:03-2345-6789"' in shinjuku and "西新宿" in shinjuku
    assert "渋谷院" not in shinjuku and "03-1234-5678" not in shinjuku
    assert "さくら歯科 渋谷院" in shibuya and 'href="tel:03-1234-5678"' in shibuya and "月〜金" in shibuya


@pytest.mark.anyio
async def test_book_lists_the_groups_clinics_with_each_ones_state(tmp_path: Path, clock: FakeClock) -> None:
    web = web_group(tmp_path, clock)
    web.store.sync.set_page("epark-shinjuku", True)
    async with web.client() as client:
        page = await client.get("/book")
    assert page.status_code == 200
    items = page.text.split("<li>")[1:]
    assert len(items) == 2
    shibuya, shinjuku = items
    assert "さくら歯科 渋谷院" in shibuya and "EPARK 渋谷院" in shibuya and "tel:03-1234-5678" in shibuya
    assert "Web予約を受け付けています" in shibuya and "お電話と受付フォーム" not in shibuya
    assert "さくら歯科 新宿院" in shinjuku and "tel:03-2345-6789" in shinjuku and "お電話と受付フォーム" in shinjuku
    header = page.text.split("<main", 1)[0]
    assert "さくら歯科 渋谷院・さくら歯科 新宿院" in header  # no group_name: the clinics speak for the group


BEARER = {"authorization": f"Bearer {STAFF_TOKEN}"}
BASIC = httpx.BasicAuth(STAFF_USER, STAFF_PASSWORD)  # the config's operator: the token only sees


def seed_group(web: Any, clock: FakeClock) -> None:
    web.store.sync.set_failover("epark-shinjuku", True, "public: timeout")
    web.store.sync.add_request("epark-shibuya", {"name": "渋谷の患者", "phone": "090-0000-0001"})
    web.store.sync.add_request("epark-shinjuku", {"name": "新宿の患者", "phone": "090-0000-0002"})
    day = dt.datetime.fromtimestamp(clock(), ZoneInfo("Asia/Tokyo")).date()
    at = dt.datetime.combine(day, dt.time(10), ZoneInfo("Asia/Tokyo"))
    for pid, name in (("epark-shibuya", "渋谷の予約"), ("epark-shinjuku", "新宿の予約")):
        web.store.sync.apply_mirror_day(pid, DayListing(day, (Listed(f"{pid}-1", at, None, name),)), "ics", clock())


@pytest.mark.anyio
async def test_staff_see_the_whole_group_and_can_narrow_to_one_clinic(tmp_path: Path, clock: FakeClock) -> None:
    web = web_group(tmp_path, clock)
    seed_group(web, clock)
    async with web.client() as client:
        whole = (await client.get("/staff", headers=BEARER)).text
        shinjuku = await client.get("/staff?clinic=shinjuku&status=new", auth=BASIC)  # an operator: with forms
    assert "渋谷の患者" in whole and "新宿の患者" in whole
    assert whole.count("<td>さくら歯科 新宿院</td>") == 1 and whole.count("<td>さくら歯科 渋谷院</td>") == 1
    assert shinjuku.status_code == 200
    page = shinjuku.text
    assert "新宿の患者" in page and "渋谷の患者" not in page
    # The state table still shows every clinic: an outage elsewhere stays in sight.
    assert "<td>さくら歯科 渋谷院</td>" in page and "<td>さくら歯科 新宿院</td>" in page
    assert 'href="/staff?clinic=shinjuku&amp;status=new" aria-current="page">さくら歯科 新宿院</a>' in page
    assert page.count(' aria-current="page"') == 2  # the clinic and the status (never escaped into text)
    assert 'href="/staff?status=new">グループ全体</a>' in page  # the filter keeps the status
    assert '<input type="hidden" name="back_clinic" value="shinjuku">' in page


@pytest.mark.anyio
async def test_a_status_change_returns_to_the_same_clinics_list(tmp_path: Path, clock: FakeClock) -> None:
    web = web_group(tmp_path, clock)
    seed_group(web, clock)
    async with web.client() as client:
        page = (await client.get("/staff?clinic=shinjuku", headers=BEARER)).text
        number = next(r.id for r in web.store.sync.requests() if r.portal == "epark-shinjuku")
        form = {"csrf": csrf_of(page), "status": "contacted", "back_clinic": "shinjuku", "back": ""}
        done = await client.post(f"/staff/requests/{number}/status", data=form, auth=BASIC)
    assert done.status_code == 303 and done.headers["location"] == "/staff?clinic=shinjuku"


@pytest.mark.anyio
async def test_the_appointments_of_one_clinic(tmp_path: Path, clock: FakeClock) -> None:
    web = web_group(tmp_path, clock)
    seed_group(web, clock)
    async with web.client() as client:
        whole = (await client.get("/staff/appointments", headers=BEARER)).text
        one = (await client.get("/staff/appointments?clinic=shibuya", headers=BEARER)).text
    assert "渋谷の予約" in whole and "新宿の予約" in whole
    assert "渋谷の予約" in one and "新宿の予約" not in one
    assert "渋谷の患者" in one and "新宿の患者" not in one  # the day's requests beside them, same clinic
    assert '<input type="hidden" name="clinic" value="shibuya">' in one  # the day picker keeps it


@pytest.mark.anyio
async def test_an_unknown_clinic_is_404_and_one_clinic_has_no_filter(tmp_path: Path, clock: FakeClock) -> None:
    web = web_group(tmp_path, clock)
    async with web.client() as client:
        assert (await client.get("/staff?clinic=ikebukuro", headers=BEARER)).status_code == 404
        assert (await client.get("/staff/appointments?clinic=ikebukuro", headers=BEARER)).status_code == 404
    (tmp_path / "one").mkdir()
    single = make_web(tmp_path / "one", clock)
    async with single.client() as client:
        page = await client.get("/staff?clinic=anything", headers=BEARER)
    assert page.status_code == 200
    assert "グループ全体" not in page.text and '<th scope="col">医院</th>' not in page.text


# -- the group's staff alerts ------------------------------------------------------------------


async def _outage_for_each_clinic(settings: Settings, store: AsyncStore, http: httpx.AsyncClient, clock: FakeClock):
    staff = make_staff(settings, store, clock)
    actions = build_actions(settings, store, http, staff, clock)
    for pid, acts in actions.items():
        row = store.sync.set_failover(pid, True, "public: timeout")
        incident = Incident(pid, row.incident, row.reason, row.since or clock())
        for action in acts.values():
            await action.apply(incident)
            await action.apply(incident)  # idempotent: a second tick queues nothing
            assert await action.observe() is True
    await deliver_all(staff)
    return actions


@pytest.mark.anyio
async def test_the_group_gets_every_clinics_outage_and_a_shared_target_gets_it_once(
    hook: JsonReceiver, open_store: Callable[[], AsyncStore], http: httpx.AsyncClient, clock: FakeClock
) -> None:
    front_shibuya, front_shinjuku, manager = (hook.url(p, scheme="json") for p in ("/shibuya", "/shinjuku", "/om"))
    raw = group(
        actions={
            "staff-shibuya": {"type": "notify", "urls": [front_shibuya, manager], "timeout": "2s"},
            "staff-shinjuku": {"type": "notify", "urls": [front_shinjuku], "timeout": "2s"},
        },
        staff_alerts={"urls": [manager], "timeout": "2s"},
    )
    raw["portals"]["epark-shibuya"]["actions"] = ["staff-shibuya"]
    raw["portals"]["epark-shinjuku"]["actions"] = ["staff-shinjuku"]
    settings = Settings.model_validate(raw)
    assert list(settings.portal_actions("epark-shinjuku")) == ["staff-shinjuku", GROUP_ALERTS]
    await _outage_for_each_clinic(settings, open_store(), http, clock)
    got = sorted((r.path, r.json()["message"].split("\n")[0]) for r in await hook.wait_for(4))
    assert got == [
        ("/om", "さくら歯科 新宿院"),  # the office manager: shinjuku's through the group, shibuya's once
        ("/om", "さくら歯科 渋谷院"),
        ("/shibuya", "さくら歯科 渋谷院"),
        ("/shinjuku", "さくら歯科 新宿院"),
    ]
    assert len(hook.requests) == 4


@pytest.mark.anyio
async def test_a_clinic_without_a_notify_action_still_tells_the_group(
    hook: JsonReceiver, open_store: Callable[[], AsyncStore], http: httpx.AsyncClient, clock: FakeClock
) -> None:
    settings = Settings.model_validate(group(staff_alerts={"urls": [hook.url("/om", scheme="json")]}))
    await _outage_for_each_clinic(settings, open_store(), http, clock)
    got = sorted(r.json()["message"].split("\n")[0] for r in await hook.wait_for(2))
    assert got == ["さくら歯科 新宿院", "さくら歯科 渋谷院"]


# -- the CLI ------------------------------------------------------------------------------------


def test_requests_config_check_and_status_by_clinic(tmp_path: Path) -> None:
    raw = group(store=str(tmp_path / "s.db"), data_key=None)
    path = tmp_path / "portalguard.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in raw.items() if v is not None}, allow_unicode=True), "utf-8")
    store = Store(tmp_path / "s.db")
    try:
        store.add_request("epark-shibuya", {"name": "渋谷 太郎", "phone": "090-0000-0001"})
        store.add_request("epark-shinjuku", {"name": "新宿 花子", "phone": "090-0000-0002"})
    finally:
        store.close()
    runner = CliRunner()
    listed = runner.invoke(cli, ["-c", str(path), "requests", "list", "--clinic", "shinjuku", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [r["portal"] for r in json.loads(listed.output)] == ["epark-shinjuku"]
    wrong = runner.invoke(cli, ["-c", str(path), "requests", "list", "--clinic", "ikebukuro"])
    assert wrong.exit_code == 2 and "unknown clinic 'ikebukuro' (clinics: shibuya, shinjuku)" in wrong.output
    both = runner.invoke(cli, ["-c", str(path), "requests", "list", "--clinic", "shibuya", "--portal", "x"])
    assert both.exit_code == 2 and "give --portal or --clinic, not both" in both.output
    check = runner.invoke(cli, ["-c", str(path), "config", "check"])
    assert check.exit_code == 0, check.output
    assert "clinic shinjuku: さくら歯科 新宿院 (03-2345-6789, Asia/Tokyo); portals epark-shinjuku" in check.output
    status = runner.invoke(cli, ["-c", str(path), "status", "--json"])
    assert status.exit_code == 0, status.output
    assert {p: v["clinic"] for p, v in json.loads(status.output)["portals"].items()} == {
        "epark-shibuya": "shibuya",
        "epark-shinjuku": "shinjuku",
    }
    text = runner.invoke(cli, ["-c", str(path), "status"]).output
    assert "さくら歯科 新宿院 — EPARK 新宿院 (epark-shinjuku):" in text
