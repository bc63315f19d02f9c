"""/staff: a token or basic auth from the config (constant-time check), disabled without one, CSRF on
every change."""

from __future__ import annotations

import base64
import copy
import re
from pathlib import Path

import httpx
import pytest
from markupsafe import escape
from pydantic import SecretStr
from test_web_support import (
    PORTAL,
    SCRIPT,
    STAFF_PASSWORD,
    STAFF_TOKEN,
    STAFF_USER,
    Web,
    csrf_of,
    make_web,
    submit,
    valid_form,
)

from failover.settings import StaffAuth
from failover.web import create_app, security

pytestmark = pytest.mark.anyio
BASIC = httpx.BasicAuth(STAFF_USER, STAFF_PASSWORD)
BEARER = {"authorization": f"Bearer {STAFF_TOKEN}"}


@pytest.fixture
def web(tmp_path: Path, clock) -> Web:
    web = make_web(tmp_path, clock)
    web.store.sync.set_page(PORTAL, True)
    return web


async def add_requests(web: Web, *names: str) -> list[int]:
    async with web.client("192.0.2.50") as c:
        for name in names:
            assert (await submit(c, valid_form(name=name))).status_code == 200
    return [r.id for r in web.store.sync.requests()]


async def test_staff_sees_requests_newest_first_and_the_failover_state(web: Web) -> None:
    web.store.sync.set_failover(PORTAL, True, "public: http_status (HTTP 503)")
    await add_requests(web, "最初の患者", "二番目の患者")
    async with web.client() as c:
        r = await c.get("/staff", auth=BASIC)
    assert r.status_code == 200
    assert r.text.index("二番目の患者") < r.text.index("最初の患者")
    assert "フェイルオーバー中" in r.text and "臨時ページ表示中" in r.text
    assert 'href="tel:09012345678"' in r.text
    assert r.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_staff_sees_a_flapping_hold_and_its_end_in_its_language(web: Web, lang: str) -> None:
    web.store.sync.set_failover(PORTAL, True, "public: http_status (HTTP 503)")
    web.store.sync.set_value(
        f"flapping_hold:{PORTAL}", {"count": 4, "until": 1_800_003_600.0, "since": 1_800_000_000.0}
    )
    async with web.client() as c:
        r = await c.get(f"/staff?lang={lang}", auth=BASIC)
    assert r.status_code == 200
    if lang == "ja":
        assert "切り替えが頻発（1時間に4回）のため代替受付を継続中" in r.text and "2027-01-15 18:00" in r.text
        assert "flapping" not in r.text and "held on" not in r.text
    else:
        assert "held in failover: switching too often (4× within an hour)" in r.text and "2027-01-15 18:00" in r.text


async def test_staff_shows_the_portal_name(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    from test_web_support import BASE_CONFIG

    portals = copy.deepcopy(BASE_CONFIG["portals"])
    portals[PORTAL]["name"] = "EPARK 渋谷"
    web = make_web(tmp_path, clock, portals=portals)
    web.store.sync.set_page(PORTAL, True)
    await add_requests(web, "最初の患者")
    async with web.client() as c:
        r = await c.get("/staff", auth=BASIC)
    assert r.text.count("EPARK 渋谷") == 2, "the state table and the request"


async def test_bearer_token_works_too(web: Web) -> None:
    async with web.client() as c:
        assert (await c.get("/staff", headers=BEARER)).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"authorization": "Bearer wrong"}, id="wrong-token"),
        pytest.param({"authorization": "Basic " + "c3RhZmY6d3Jvbmc="}, id="wrong-password"),  # staff:wrong
        pytest.param({"authorization": "Basic %%%"}, id="garbage"),
        pytest.param({"authorization": "Basic " + "5bGx55SwOuODkeOCuQ=="}, id="non-ascii"),  # 山田:パス
        pytest.param({"authorization": f"Token {STAFF_TOKEN}"}, id="unknown-scheme"),
    ],
)
async def test_staff_requires_credentials(web: Web, headers: dict[str, str]) -> None:
    await add_requests(web, "見えてはいけない名前")
    async with web.client() as c:
        r = await c.get("/staff", headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Basic ")
    assert "見えてはいけない名前" not in r.text


async def test_a_browser_without_credentials_is_sent_to_the_login_form(web: Web) -> None:
    await add_requests(web, "見えてはいけない名前")
    async with web.client() as c:
        r = await c.get("/staff?status=new")
    assert r.status_code == 303 and r.headers["location"] == "/staff/login?next=%2Fstaff%3Fstatus%3Dnew"
    assert "見えてはいけない名前" not in r.text


async def test_credentials_are_compared_in_constant_time(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = security.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    async with web.client() as c:
        await c.get("/staff", auth=httpx.BasicAuth("nobody", STAFF_PASSWORD))
        await c.get("/staff", headers=BEARER)
    assert (b"nobody", STAFF_USER.encode()) in calls
    assert (STAFF_PASSWORD.encode(), STAFF_PASSWORD.encode()) in calls  # checked although the user was wrong
    assert (STAFF_TOKEN.encode(), STAFF_TOKEN.encode()) in calls


async def test_staff_is_disabled_without_credentials(tmp_path: Path, clock) -> None:
    web = make_web(tmp_path, clock, staff={})
    async with web.client() as c:
        for r in (
            await c.get("/staff"),
            await c.get("/staff", auth=BASIC),
            await c.post("/staff/requests/1/status", data={"status": "booked"}, auth=BASIC),
        ):
            assert r.status_code == 404
            assert "スタッフ画面は無効です" in r.text


async def test_token_only_config_asks_for_a_bearer_token(tmp_path: Path, clock) -> None:
    web = make_web(tmp_path, clock, staff={"token": STAFF_TOKEN})
    async with web.client() as c:
        r = await c.get("/staff", auth=BASIC)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer ")
        assert (await c.get("/staff", headers=BEARER)).status_code == 200


async def test_guessing_is_stopped_after_ten_failures(web: Web, clock) -> None:
    async with web.client() as c:
        codes = [(await c.get("/staff", auth=httpx.BasicAuth(STAFF_USER, f"guess{i}"))).status_code for i in range(11)]
        assert codes == [401] * 10 + [429]
        clock.advance(60)
        assert (await c.get("/staff", auth=BASIC)).status_code == 200


async def test_the_right_password_works_during_a_lockout_and_guesses_stay_slow(web: Web, clock, monkeypatch) -> None:
    # An attacker on the clinic's network (the same address as staff) used to lock staff out.
    import asyncio

    from failover.web.app import LOCKED_OUT_DELAY, LOCKED_OUT_QUEUE

    app_state = _app_state(web)
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)
        clock.advance(seconds)
        await asyncio.sleep(0)

    app_state.sleep = fake_sleep
    async with web.client() as c:
        for i in range(10):
            await c.get("/staff", auth=httpx.BasicAuth(STAFF_USER, f"guess{i}"))
        wrong = await c.get("/staff", auth=httpx.BasicAuth(STAFF_USER, "guess-more"))
        assert wrong.status_code == 429 and delays == [LOCKED_OUT_DELAY]  # answered only after the delay
        assert (await c.get("/staff", auth=BASIC)).status_code == 200  # staff still get in, at once
        assert delays == [LOCKED_OUT_DELAY]
        flood = await asyncio.gather(
            *(c.get("/staff", auth=httpx.BasicAuth(STAFF_USER, f"x{i}")) for i in range(LOCKED_OUT_QUEUE + 5))
        )
    codes = [r.status_code for r in flood]
    assert set(codes) <= {401, 429} and 429 in codes
    # Checked one at a time, each wrong one delayed; a plain 401 again only once a delay let the
    # failure budget refill (one per LOCKED_OUT_DELAY): guessing never outruns that rate.
    assert codes.count(401) <= len(delays) - 1


def _app_state(web: Web):  # the Web object behind the Starlette app (its handlers' owner)
    for route in web.app.routes:
        owner = getattr(getattr(route, "endpoint", None), "__self__", None)
        if owner is not None and hasattr(owner, "sleep"):
            return owner
    raise AssertionError("no web handler object found")


async def staff_form(c: httpx.AsyncClient, query: str = "") -> str:
    page = await c.get(f"/staff{query}", auth=BASIC)
    assert page.status_code == 200
    return csrf_of(page.text)


async def test_staff_changes_a_status(web: Web) -> None:
    [number] = await add_requests(web, "患者")
    async with web.client() as c:
        token = await staff_form(c)
        r = await c.post(
            f"/staff/requests/{number}/status",
            data={"csrf": token, "status": "contacted", "lang": "en", "back": "new"},
            auth=BASIC,
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/staff?lang=en&status=new"
        assert web.store.sync.request(number).status == "contacted"
        page = await c.get("/staff?status=contacted&lang=en", auth=BASIC)
    assert "患者" in page.text and "contacted" in page.text


async def test_status_filter(web: Web) -> None:
    first, _ = sorted(await add_requests(web, "一人目", "二人目"))
    web.store.sync.set_request_status(first, "booked")
    async with web.client() as c:
        r = await c.get("/staff?status=new", auth=BASIC)
    assert "二人目" in r.text and "一人目" not in r.text


@pytest.mark.parametrize(
    ("form", "auth", "code"),
    [
        pytest.param({"status": "booked"}, BASIC, 403, id="no-csrf"),
        pytest.param({"status": "booked", "csrf": "B" * 22}, BASIC, 403, id="wrong-csrf"),
        pytest.param({"status": "booked", "csrf": None}, None, 401, id="no-auth"),
        pytest.param({"status": "deleted", "csrf": None}, BASIC, 422, id="unknown-status"),
    ],
)
async def test_bad_status_changes_change_nothing(web: Web, form: dict, auth: httpx.Auth | None, code: int) -> None:
    [number] = await add_requests(web, "患者")
    async with web.client() as c:
        token = await staff_form(c)
        data = {k: (token if v is None else v) for k, v in form.items()}
        r = await c.post(f"/staff/requests/{number}/status", data=data, auth=auth)
    assert r.status_code == code
    assert web.store.sync.request(number).status == "new"


@pytest.mark.parametrize("number", ["999", "9" * 30])
async def test_status_of_an_unknown_request_is_404(web: Web, number: str) -> None:
    await add_requests(web, "患者")
    async with web.client() as c:
        token = await staff_form(c)
        r = await c.post(f"/staff/requests/{number}/status", data={"csrf": token, "status": "booked"}, auth=BASIC)
    assert r.status_code == 404


async def test_staff_post_needs_a_form_body(web: Web) -> None:
    [number] = await add_requests(web, "患者")
    async with web.client() as c:
        r = await c.post(f"/staff/requests/{number}/status", json={"status": "booked"}, auth=BASIC)
    assert r.status_code == 415


async def test_staff_page_escapes_what_patients_typed(web: Web) -> None:
    web.store.sync.add_request(PORTAL, {"name": SCRIPT, "phone": '"><b>x', "reason": SCRIPT, "visit": "<i>"})
    async with web.client() as c:
        r = await c.get("/staff", auth=BASIC)
    assert r.status_code == 200
    assert SCRIPT not in r.text and "<b>x" not in r.text and "<i>" not in r.text
    assert r.text.count(str(escape(SCRIPT))) == 2


async def test_drill_requests_are_marked(web: Web) -> None:
    web.store.sync.add_request(PORTAL, {**valid_form(), "drill": True})
    async with web.client() as c:
        r = await c.get("/staff", auth=BASIC)
    assert re.search(r'<span class="badge optional">訓練</span>', r.text)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Authorization": "Bearer "}, id="bearer-blank"),
        pytest.param({"Authorization": "Bearer"}, id="bearer-alone"),
        pytest.param({"Authorization": "Basic " + base64.b64encode(b"staff:").decode()}, id="basic-empty-password"),
        pytest.param({"Authorization": "Basic " + base64.b64encode(b":").decode()}, id="basic-empty-both"),
    ],
)
async def test_blank_credentials_never_open_staff_even_if_a_blank_secret_slipped_through(
    tmp_path: Path, clock, headers: dict[str, str]
) -> None:
    web = make_web(tmp_path, clock)
    # What a variable set but blank would give if the config check were bypassed.
    blank = StaffAuth.model_construct(token=SecretStr(""), username="staff", password=SecretStr(""))
    settings = web.settings.model_copy(update={"staff": blank})

    async def ignore(_portal: str, _number: int) -> None:
        return None

    web.app = create_app(settings, web.store, web.metrics, web.registry, ignore, clock)
    async with web.client() as c:
        r = await c.get("/staff", headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"]  # the login is asked for, nothing shown


async def test_requests_from_the_form_are_sealed_on_disk_and_shown_as_typed(web: Web, tmp_path: Path) -> None:
    await add_requests(web, "Hanako Yamada")
    async with web.client() as c:
        r = await c.get("/staff", auth=BASIC)
    assert r.status_code == 200 and "Hanako Yamada" in r.text
    await web.store.close()
    raw = _store_files(tmp_path)
    assert b"Hanako Yamada" not in raw and b"09012345678" not in raw and b"090-1234-5678" not in raw


def _store_files(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.glob("portalguard.db*"))


async def test_sealed_requests_without_the_key_are_a_503_and_a_log_line_naming_data_key(
    web: Web, tmp_path: Path, clock, caplog: pytest.LogCaptureFixture
) -> None:
    await add_requests(web, "Hanako Yamada")
    await web.store.close()
    keyless = make_web(tmp_path, clock, data_key=None)
    try:
        async with keyless.client() as c:
            r = await c.get("/staff", auth=BASIC)
        assert r.status_code == 503 and "Hanako" not in r.text
        assert any("booking requests are sealed" in m and "data_key" in m for m in caplog.messages)
    finally:
        await keyless.store.close()
