"""The staff login: form + signed session cookie, the throttle, idle expiry, logout, roles."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from test_web_support import PORTAL, STAFF_TOKEN, Web, csrf_of, make_web, submit, valid_form

from failover.staff_accounts import hash_password

pytestmark = pytest.mark.anyio
GOOD = "a long enough phrase"


@pytest.fixture
def web(tmp_path: Path, clock) -> Web:
    web = make_web(tmp_path, clock)
    web.store.sync.set_page(PORTAL, True)
    web.store.sync.add_staff_account("aiko", "operator", hash_password(GOOD))
    web.store.sync.add_staff_account("ben", "viewer", hash_password(GOOD))
    return web


async def login(c: httpx.AsyncClient, name: str, password: str, next_url: str = "/staff") -> httpx.Response:
    page = await c.get("/staff/login")
    assert page.status_code == 200
    fields = {"csrf": csrf_of(page.text), "username": name, "password": password, "next": next_url}
    return await c.post("/staff/login", data=fields)


async def a_request(web: Web) -> int:
    async with web.client("192.0.2.50") as c:
        assert (await submit(c, valid_form(name="山田 花子"))).status_code == 200
    return web.store.sync.requests()[0].id


async def test_login_sets_a_strict_http_only_cookie_and_lets_in(web: Web) -> None:
    async with web.client() as c:
        r = await login(c, "aiko", GOOD, "/staff?status=new")
        assert r.status_code == 303 and r.headers["location"] == "/staff?status=new"
        cookie = next(v for v in r.headers.get_list("set-cookie") if v.startswith("pg_staff="))
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=28800" in cookie
        assert "Secure" not in cookie and GOOD not in cookie
        page = await c.get("/staff")
        assert page.status_code == 200 and "aiko（operator）でログイン中" in page.text


async def test_the_cookie_is_secure_over_https(web: Web) -> None:
    transport = httpx.ASGITransport(app=web.app, client=("198.51.100.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        r = await login(c, "aiko", GOOD)
    cookie = next(v for v in r.headers.get_list("set-cookie") if v.startswith("pg_staff="))
    assert cookie.endswith("; Secure")


async def test_wrong_passwords_make_the_account_wait_longer_but_never_for_good(web: Web, clock) -> None:
    async with web.client() as c:
        assert (await login(c, "aiko", "wrong password!")).status_code == 401
        r = await login(c, "aiko", GOOD)  # even the right one waits its turn
        assert r.status_code == 429 and r.headers["retry-after"] == "1" and "1 秒待ってから" in r.text
        clock.advance(1)
        assert (await login(c, "aiko", "wrong password!")).status_code == 401
        assert (await login(c, "aiko", GOOD)).headers["retry-after"] == "2"
        clock.advance(2)
        assert (await login(c, "aiko", GOOD)).status_code == 303  # after the wait: in, and reset
    assert web.store.sync.staff_account("aiko").failures == 0  # type: ignore[union-attr]


async def test_an_unknown_name_reads_like_a_wrong_password(web: Web) -> None:
    async with web.client() as c:
        r = await login(c, "nobody", GOOD)
    assert r.status_code == 401 and "アカウント名またはパスワードが違います" in r.text


async def test_login_without_csrf_is_refused(web: Web) -> None:
    async with web.client() as c:
        await c.get("/staff/login")
        r = await c.post("/staff/login", data={"username": "aiko", "password": GOOD})
    assert r.status_code == 403 and "pg_staff" not in r.headers.get("set-cookie", "")


async def test_next_never_leads_to_another_site(web: Web) -> None:
    for evil in ("https://evil.example/staff", "//evil.example/staff", "/book/x", "/staff\\@evil.example"):
        async with web.client() as c:
            assert (await login(c, "aiko", GOOD, evil)).headers["location"] == "/staff"


async def test_an_idle_session_ends_and_use_refreshes_it(web: Web, clock) -> None:
    async with web.client() as c:
        await login(c, "aiko", GOOD)
        clock.advance(7 * 3600)
        assert (await c.get("/staff")).status_code == 200  # used: idle counts from now
        clock.advance(7 * 3600)
        assert (await c.get("/staff")).status_code == 200
        clock.advance(8 * 3600 + 1)
        r = await c.get("/staff")
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/login?next=")


async def test_logout_ends_the_session(web: Web) -> None:
    async with web.client() as c:
        await login(c, "aiko", GOOD)
        page = await c.get("/staff")
        r = await c.post("/staff/logout", data={"csrf": csrf_of(page.text)})
        assert r.status_code == 303 and "pg_staff=;" in r.headers["set-cookie"]
        assert (await c.get("/staff")).status_code == 303


async def test_a_removed_account_is_logged_out(web: Web) -> None:
    async with web.client() as c:
        await login(c, "ben", GOOD)
        web.store.sync.remove_staff_account("ben")
        assert (await c.get("/staff")).status_code == 303


async def test_a_viewer_sees_but_does_not_decide_and_an_operator_decides_on_the_record(web: Web) -> None:
    number = await a_request(web)
    async with web.client() as c:
        await login(c, "ben", GOOD)
        page = await c.get("/staff")
        assert page.status_code == 200 and "山田 花子" in page.text
        r = await c.post(f"/staff/requests/{number}/status", data={"csrf": csrf_of(page.text), "status": "booked"})
        assert r.status_code == 403 and "閲覧専用" in r.text
    assert web.store.sync.request(number).status == "new"  # type: ignore[union-attr]
    async with web.client() as c:
        await login(c, "aiko", GOOD)
        page = await c.get("/staff")
        r = await c.post(f"/staff/requests/{number}/status", data={"csrf": csrf_of(page.text), "status": "booked"})
        assert r.status_code == 303
    (event,) = web.store.sync.events(kinds=["staff_decision"])
    assert event.detail == {"op": "request_status", "id": number, "status": "booked", "by": "aiko"}
    assert "山田" not in str(event.detail)


async def test_a_viewer_is_shown_no_form_it_may_not_send(web: Web) -> None:
    """The server refuses a viewer's change (above); the pages do not offer one either."""
    await a_request(web)
    async with web.client() as c:
        await login(c, "ben", GOOD)
        requests, decide = await c.get("/staff"), await c.get(f"/staff/decide/{PORTAL}")
    for page in (requests, decide):
        assert page.status_code == 200 and "閲覧専用" in page.text
    assert "status-form" not in requests.text and "山田 花子" in requests.text  # sees, cannot change
    assert 'name="kind"' not in decide.text and "dc_next" not in decide.text
    async with web.client() as c:
        await login(c, "aiko", GOOD)
        requests, decide = await c.get("/staff"), await c.get(f"/staff/decide/{PORTAL}")
    assert "status-form" in requests.text and 'name="kind" value="on"' in decide.text
    assert "閲覧専用" not in requests.text + decide.text


async def test_the_token_is_a_viewer_by_default(web: Web) -> None:
    number = await a_request(web)
    bearer = {"authorization": f"Bearer {STAFF_TOKEN}"}
    async with web.client() as c:
        page = await c.get("/staff", headers=bearer)
        assert page.status_code == 200
        form = {"csrf": csrf_of(page.text), "status": "booked"}
        assert (await c.post(f"/staff/requests/{number}/status", data=form, headers=bearer)).status_code == 403


async def test_an_operator_token_and_basic_auth_decide_on_the_record(tmp_path: Path, clock) -> None:
    web = make_web(
        tmp_path,
        clock,
        staff={
            "username": "staff",
            "password": "correct horse battery",
            "token": STAFF_TOKEN,
            "token_role": "operator",
        },
    )
    web.store.sync.set_page(PORTAL, True)
    number = await a_request(web)
    bearer = {"authorization": f"Bearer {STAFF_TOKEN}"}
    async with web.client() as c:
        page = await c.get("/staff", headers=bearer)
        form = {"csrf": csrf_of(page.text), "status": "contacted"}
        assert (await c.post(f"/staff/requests/{number}/status", data=form, headers=bearer)).status_code == 303
        basic = httpx.BasicAuth("staff", "correct horse battery")
        form["status"] = "booked"
        assert (await c.post(f"/staff/requests/{number}/status", data=form, auth=basic)).status_code == 303
    by = [e.detail["by"] for e in web.store.sync.events(kinds=["staff_decision"])]
    assert sorted(by) == ["staff", "token"]


async def test_the_config_account_logs_in_by_the_form_as_an_operator(web: Web) -> None:
    async with web.client() as c:
        assert (await login(c, "staff", "correct horse battery")).status_code == 303
        assert "staff（operator）でログイン中" in (await c.get("/staff")).text


async def test_logins_refusals_and_logouts_are_in_the_audit_log_without_passwords(web: Web, clock) -> None:
    from failover.incident import describe
    from failover.web.history import line

    async with web.client() as c:
        await login(c, "aiko", "wrong password!")
        await login(c, "aiko", GOOD)  # still waiting after the wrong one: refused, throttled
        await login(c, "a long enough phrase typed as a name", GOOD)
    clock.advance(2)
    async with web.client() as c:
        await login(c, "aiko", GOOD)
        page = await c.get("/staff")
        await c.post("/staff/logout", data={"csrf": csrf_of(page.text)})
    events = web.store.sync.events(kinds=["staff_session"])
    assert [(e.detail["op"], e.detail["account"]) for e in events] == [
        ("login_refused", "aiko"),
        ("login_refused", "aiko"),
        ("login_refused", None),  # not an account: what was typed is not kept
        ("login", "aiko"),
        ("logout", "aiko"),
    ]
    assert GOOD not in str([e.detail for e in events]) and "wrong password!" not in str([e.detail for e in events])
    assert describe(events[1]) == "staff login refused: aiko (waiting after wrong passwords)"
    assert describe(events[3]) == "staff login: aiko (web)"
    assert line(events[4], "ja", str) == "ログアウト：aiko" and "登録のない名前" in line(events[2], "ja", str)
