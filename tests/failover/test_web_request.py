"""POST /book/{portal}/request: stored before the confirmation, and every bad input a clear 4xx."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from markupsafe import escape
from test_web_support import (
    PORTAL,
    SCRIPT,
    Web,
    csrf_of,
    field_errors,
    make_web,
    open_form,
    submit,
    valid_form,
)

from failover.store import StoreError
from failover.web import preview_token

pytestmark = pytest.mark.anyio
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def web(tmp_path: Path, clock) -> Web:
    web = make_web(tmp_path, clock)
    web.store.sync.set_page(PORTAL, True)
    return web


async def settle() -> None:
    for _ in range(5):  # let background announcements run
        await asyncio.sleep(0)


async def test_a_request_is_stored_counted_announced_and_confirmed(web: Web) -> None:
    async with web.client() as c:
        r = await submit(c, valid_form())
    assert r.status_code == 200
    rows = web.store.sync.requests()
    assert len(rows) == 1
    row = rows[0]
    assert f'<strong id="request-number">{row.id}</strong>' in r.text
    assert 'href="tel:03-1234-5678"' in r.text
    assert row.portal == PORTAL and row.status == "new"
    assert row.data == {
        "name": "山田 花子",
        "phone": "090-1234-5678",
        "phone_digits": "09012345678",
        "email": "hanako@example.jp",
        "preferred": [{"date": "2027-01-20", "time": "morning"}],
        "visit": "new",
        "reason": "左下の奥歯が痛みます",
        "consent": True,
        "lang": "ja",
    }
    assert web.counter("portalguard_booking_requests_total", portal=PORTAL) == 1
    await settle()
    assert web.notified == [(PORTAL, row.id)]
    assert r.headers["cache-control"] == "no-store"
    await web.store.flush()
    # Its time outlives it, for the availability report: the number only, never the patient's data.
    assert [e.detail for e in web.store.sync.events(PORTAL, kinds=("request",))] == [{"number": row.id}]


async def test_the_request_is_accepted_even_after_the_switch_went_off(web: Web, clock) -> None:
    async with web.client() as c:
        token = await open_form(c)
        web.store.sync.set_page(PORTAL, False)  # the portal recovered while the patient was typing
        clock.advance(5)
        r = await c.post(f"/book/{PORTAL}/request", data={"csrf": token, **valid_form()}, follow_redirects=True)
    assert r.status_code == 200
    assert web.store.sync.count_requests() == 1


async def test_english_confirmation(web: Web) -> None:
    async with web.client() as c:
        r = await submit(c, valid_form(lang="en"))
    assert "We have received your request" in r.text
    assert web.store.sync.requests()[0].data["lang"] == "en"


async def test_a_failing_announcement_does_not_touch_the_patient(
    tmp_path: Path, clock, caplog: pytest.LogCaptureFixture
) -> None:
    async def failing(portal: str, number: int) -> None:
        raise ConnectionError("slack down for 山田 花子")

    web = make_web(tmp_path, clock, notify=failing)
    web.store.sync.set_page(PORTAL, True)
    async with web.client() as c:
        r = await submit(c, valid_form())
    await settle()
    assert r.status_code == 200
    assert "staff not told of booking request 1" in caplog.text
    assert "山田" not in caplog.text and "090" not in caplog.text


async def test_a_slow_announcement_does_not_delay_the_confirmation(tmp_path: Path, clock) -> None:
    release = asyncio.Event()

    async def slow(portal: str, number: int) -> None:
        await release.wait()

    web = make_web(tmp_path, clock, notify=slow)
    web.store.sync.set_page(PORTAL, True)
    async with web.client() as c:
        r = await asyncio.wait_for(submit(c, valid_form()), timeout=5)
    assert r.status_code == 200
    assert len(web.app.state.announcements) == 1  # still running, tracked
    release.set()
    await settle()
    assert not web.app.state.announcements


async def test_a_stored_request_redirects_to_a_get_confirmation_without_patient_data(web: Web) -> None:
    """Post/Redirect/Get: reloading the confirmation is a GET of the number, never a second post."""
    async with web.client() as c:
        token = await open_form(c)
        r = await c.post(f"/book/{PORTAL}/request", data={"csrf": token, **valid_form()})
        assert r.status_code == 303
        location = r.headers["location"]
        (row,) = web.store.sync.requests()
        assert location.startswith(f"/book/{PORTAL}/done/{row.id}?")
        for typed in ("山田", "090", "hanako", "2027", "奥歯", "morning"):
            assert typed not in location and escape(typed) not in location
        for _ in range(3):  # reloads
            page = await c.get(location)
            assert page.status_code == 200 and f'<strong id="request-number">{row.id}</strong>' in page.text
        assert (await c.get(location.replace(f"/done/{row.id}", f"/done/{row.id + 1}"))).status_code == 404
        assert (await c.get(f"/book/{PORTAL}/done/{row.id}")).status_code == 404, "unsigned: not confirmed"
    assert web.store.sync.count_requests() == 1


async def test_a_form_sent_again_shows_the_first_confirmation_stores_and_tells_nothing(web: Web) -> None:
    """Each rendered form submits at most once: back and Send again, or a double tap, replays the
    same form token; it gets the first request's confirmation, nothing stored, nobody notified."""
    async with web.client() as c:
        token = await open_form(c)
        first = await c.post(f"/book/{PORTAL}/request", data={"csrf": token, **valid_form()})
        await settle()
        again = await c.post(f"/book/{PORTAL}/request", data={"csrf": token, **valid_form(name="別人")})
        assert again.status_code == 303 and again.headers["location"] == first.headers["location"]
        fresh = await submit(c, valid_form())  # a new form is a new request
    await settle()
    first_row, second_row = sorted(web.store.sync.requests(), key=lambda row: row.id)
    assert first_row.data["name"] == "山田 花子" and f">{second_row.id}</strong>" in fresh.text
    assert web.counter("portalguard_booking_requests_total", portal=PORTAL) == 2
    assert web.notified == [(PORTAL, first_row.id), (PORTAL, second_row.id)]


async def test_two_forms_get_different_tokens_and_a_forged_one_is_refused(web: Web) -> None:
    async with web.client() as c:
        one, two = await open_form(c), await open_form(c)
        assert one != two
        _, _, mac = one.partition(".")
        r = await c.post(f"/book/{PORTAL}/request", data={"csrf": f"{'A' * 22}.{mac}", **valid_form()})
    assert r.status_code == 403 and web.store.sync.count_requests() == 0


async def test_store_failure_is_503_with_the_phone_number(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    async def full_disk(portal: str, data: dict, form: str) -> tuple[int, bool]:
        raise StoreError("disk full")

    monkeypatch.setattr(web.store, "add_form_request", full_disk)
    async with web.client() as c:
        r = await submit(c, valid_form())
    assert r.status_code == 503
    assert "保存できませんでした" in r.text and 'href="tel:03-1234-5678"' in r.text
    assert web.counter("portalguard_booking_requests_total", portal=PORTAL) == 0
    assert web.notified == []


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        pytest.param({"name": ""}, {"name": "お名前を入力してください"}, id="missing-name"),
        pytest.param({"name": "あ" * 101}, {"name": "お名前は100文字以内で入力してください"}, id="long-name"),
        pytest.param({"phone": ""}, {"phone": "電話番号を入力してください"}, id="missing-phone"),
        pytest.param(
            {"phone": "12345"},
            {"phone": "電話番号の形式が正しくありません（例：090-1234-5678、03-1234-5678）"},
            id="bad-phone",
        ),
        pytest.param(
            {"email": "hanako@"},
            {"email": "メールアドレスの形式が正しくありません（例：hanako@example.jp）"},
            id="bad-email",
        ),
        pytest.param({"consent": None}, {"consent": "ご連絡への同意がないと、ご予約を確定できません"}, id="no-consent"),
        pytest.param({"visit": None}, {"visit": "初診か再診かを選んでください"}, id="no-visit"),
        pytest.param({"date1": "2020-01-01"}, {"date1": "本日以降の日付を選んでください"}, id="past-date"),
        pytest.param(
            {"date2": "", "time2": "evening"}, {"date2": "時間帯を選んだ場合は日付も選んでください"}, id="time-no-date"
        ),
        pytest.param({"reason": "x" * 501}, {"reason": "500文字以内で入力してください"}, id="long-reason"),
    ],
)
async def test_invalid_input_is_422_with_messages_next_to_fields_and_values_kept(
    web: Web, changes: dict, errors: dict
) -> None:
    async with web.client() as c:
        r = await submit(c, valid_form(**changes))
    assert r.status_code == 422
    assert field_errors(r.text) == errors
    for name in errors:
        assert f'id="f-{name}"' in r.text and 'aria-invalid="true"' in r.text
    assert 'value="hanako@example.jp"' in r.text or "email" in errors  # what was typed stays
    assert ">左下の奥歯が痛みます</textarea>" in r.text or "reason" in errors
    assert web.store.sync.count_requests() == 0


async def test_english_error_messages(web: Web) -> None:
    async with web.client() as c:
        r = await submit(c, valid_form(phone="abc", lang="en"))
    assert r.status_code == 422
    assert field_errors(r.text) == {"phone": "This is not a Japanese phone number (e.g. 090-1234-5678 or 03-1234-5678)"}


@pytest.mark.parametrize("where", ["name", "reason", "email", "phone"])
async def test_script_payloads_are_rendered_as_text(web: Web, where: str) -> None:
    async with web.client() as c:
        r = await submit(c, valid_form(**{where: SCRIPT, "consent": None}))
        assert r.status_code == 422
    assert SCRIPT not in r.text
    assert str(escape(SCRIPT)) in r.text  # &lt;script&gt;…


async def test_attribute_breaking_payload_is_escaped(web: Web) -> None:
    payload = '"><img src=x onerror=alert(1)>'
    async with web.client() as c:
        r = await submit(c, valid_form(name=payload, consent=None))
    assert "<img" not in r.text
    assert 'value="&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"' in r.text


async def test_oversized_body_is_413(web: Web) -> None:
    limit = web.settings.booking.max_body_bytes
    async with web.client() as c:
        token = await open_form(c)
        r = await c.post(f"/book/{PORTAL}/request", data={"csrf": token, **valid_form(reason="x" * limit)})
    assert r.status_code == 413
    assert "送信内容が大きすぎます" in r.text
    assert web.store.sync.count_requests() == 0


async def test_oversized_streamed_body_without_length_is_413(web: Web) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"reason=" + b"x" * 1000 + b"&"

    async with web.client() as c:
        token = await open_form(c)
        r = await c.post(f"/book/{PORTAL}/request?csrf={token}", content=chunks(), headers=FORM)
    assert r.status_code == 413


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("application/json", id="json"),
        pytest.param("multipart/form-data; boundary=x", id="multipart"),
        pytest.param("text/plain", id="text"),
        pytest.param("application/x-www-form-urlencoded; charset=shift_jis", id="other-charset"),
        pytest.param("application/x-www-form-urlencoded; foo=bar; charset=latin-1", id="other-charset-later"),
        pytest.param("application/x-www-form-urlencoded-x", id="longer-type"),
        pytest.param(None, id="none"),
    ],
)
async def test_wrong_content_type_is_415(web: Web, content_type: str | None) -> None:
    body = urlencode(valid_form()).encode()
    headers = {"content-type": content_type} if content_type else {}
    async with web.client() as c:
        await open_form(c)
        r = await c.post(f"/book/{PORTAL}/request", content=body, headers=headers)
    assert r.status_code == 415
    assert web.store.sync.count_requests() == 0


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("application/x-www-form-urlencoded; foo=bar", id="other-parameter"),
        pytest.param("application/x-www-form-urlencoded; foo=bar; charset=UTF-8", id="charset-not-first"),
        pytest.param('Application/X-WWW-Form-Urlencoded ; Charset="utf-8"', id="case-and-quotes"),
        pytest.param("application/x-www-form-urlencoded;charset=utf8", id="utf8-alias"),
    ],
)
async def test_a_form_with_harmless_content_type_parameters_is_accepted(web: Web, content_type: str) -> None:
    async with web.client() as c:
        token = await open_form(c)
        body = urlencode({"csrf": token, **valid_form()}).encode()
        headers = {"content-type": content_type}
        r = await c.post(f"/book/{PORTAL}/request", content=body, headers=headers, follow_redirects=True)
    assert r.status_code == 200, r.text
    assert web.store.sync.count_requests() == 1


@pytest.mark.parametrize(
    "body",
    [pytest.param(b"name=\xff\xfe", id="not-utf8"), pytest.param(b"&".join([b"a=1"] * 60), id="too-many-fields")],
)
async def test_unreadable_body_is_400(web: Web, body: bytes) -> None:
    async with web.client() as c:
        r = await c.post(f"/book/{PORTAL}/request", content=body, headers=FORM)
    assert r.status_code == 400


async def test_unknown_portal_is_404(web: Web) -> None:
    async with web.client() as c:
        token = await open_form(c)
        r = await c.post("/book/nope/request", data={"csrf": token, **valid_form()})
    assert r.status_code == 404


@pytest.mark.parametrize("case", ["no-token", "wrong-token", "no-cookie", "other-cookie"])
async def test_csrf_mismatch_is_403_keeps_the_values_and_stores_nothing(web: Web, case: str) -> None:
    async with web.client() as c, web.client() as other:
        token = await open_form(c)
        other_token = await open_form(other)
        form = valid_form()
        if case == "wrong-token":
            form["csrf"] = "A" * 22
        elif case == "no-cookie":
            c.cookies.clear()
            form["csrf"] = token
        elif case == "other-cookie":
            form["csrf"] = other_token
        r = await c.post(f"/book/{PORTAL}/request", data=form)
        assert r.status_code == 403
        assert "ページの有効期限が切れました" in r.text
        assert 'value="山田 花子"' in r.text
        assert web.store.sync.count_requests() == 0
        # The page carries a fresh token: pressing Send again works.
        retry = await c.post(f"/book/{PORTAL}/request", data={**form, "csrf": csrf_of(r.text)}, follow_redirects=True)
    assert retry.status_code == 200
    assert web.store.sync.count_requests() == 1


async def test_honeypot_pretends_success_and_stores_nothing(web: Web) -> None:
    async with web.client() as c:
        r = await submit(c, valid_form(homepage="http://spam.example"))
    await settle()
    assert r.status_code == 200
    assert "ご予約のご希望を受け付けました" in r.text
    assert "request-number" not in r.text
    assert web.store.sync.count_requests() == 0
    assert web.notified == []
    assert web.counter("portalguard_booking_requests_total", portal=PORTAL) == 0


async def test_rate_limit_per_ip_is_429_and_recovers(tmp_path: Path, clock) -> None:
    web = make_web(tmp_path, clock, booking={"rate_limit_per_minute": 3})
    web.store.sync.set_page(PORTAL, True)
    async with web.client("198.51.100.1") as c, web.client("198.51.100.2") as neighbour:
        codes = [(await submit(c, valid_form())).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = await submit(c, valid_form())
        assert limited.headers["retry-after"] == "60"
        assert 'href="tel:03-1234-5678"' in limited.text
        assert (await submit(neighbour, valid_form())).status_code == 200
        clock.advance(20)  # one token back (3 per minute)
        assert (await submit(c, valid_form())).status_code == 200
    assert web.store.sync.count_requests() == 5


async def test_preview_submission_is_marked_as_a_drill(tmp_path: Path, clock) -> None:
    web = make_web(tmp_path, clock)  # the switch is off: only the preview shows the page
    token = preview_token(web.settings, PORTAL)
    async with web.client() as c:
        csrf = await open_form(c, f"/book/{PORTAL}?preview={token}")
        r = await c.post(
            f"/book/{PORTAL}/request", data={"csrf": csrf, "preview": token, **valid_form()}, follow_redirects=True
        )
        csrf = await open_form(c, f"/book/{PORTAL}?preview={token}")  # each rendered form sends once
        forged = await c.post(
            f"/book/{PORTAL}/request", data={"csrf": csrf, "preview": "x", **valid_form()}, follow_redirects=True
        )
    assert r.status_code == 200 and "プレビュー（訓練用）" in r.text
    drill, real = sorted(web.store.sync.requests(), key=lambda row: row.id)
    assert drill.data["drill"] is True
    assert forged.status_code == 200 and "drill" not in real.data


async def test_one_ipv6_network_is_one_client_for_the_rate_limit(tmp_path: Path, clock) -> None:
    # 300 posts from one /64 (a fresh address each) were all stored, and staff got 301 messages.
    web = make_web(tmp_path, clock, booking={"rate_limit_per_minute": 3})
    web.store.sync.set_page(PORTAL, True)
    codes = []
    for i in range(1, 21):
        async with web.client(f"2001:db8:aa:bb::{i:x}") as c:
            codes.append((await submit(c, valid_form())).status_code)
    await settle()
    assert codes == [200] * 3 + [429] * 17
    assert web.store.sync.count_requests() == 3 and len(web.notified) == 3


async def test_an_expired_form_while_the_portal_is_up_gets_no_new_form(tmp_path: Path, clock) -> None:
    # The 403 page used to carry a fresh token: re-posting it stored a request and paged staff while
    # the portal was up. Now it offers the portal's link and the phone, and nothing to post.
    web = make_web(tmp_path, clock)
    web.store.sync.set_page(PORTAL, True)
    async with web.client() as c:
        await open_form(c)
        web.store.sync.set_page(PORTAL, False)  # the portal is back
        r = await c.post(f"/book/{PORTAL}/request", data={**valid_form(), "csrf": "A" * 22})
    await settle()
    assert r.status_code == 403
    assert "Web予約が再開しました" in r.text and 'href="tel:03-1234-5678"' in r.text
    assert f'href="{web.settings.portals[PORTAL].book_url}"' in r.text
    assert "<form" not in r.text and 'name="csrf"' not in r.text
    assert web.store.sync.count_requests() == 0 and web.notified == []


async def test_a_client_dropping_mid_body_is_no_server_error(
    tmp_path: Path, clock, caplog: pytest.LogCaptureFixture
) -> None:
    web = make_web(tmp_path, clock)
    web.store.sync.set_page(PORTAL, True)
    sent: list[dict[str, object]] = []
    chunks = [
        {"type": "http.request", "body": b"name=%E5%B1%B1", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, object]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/book/{PORTAL}/request",
        "raw_path": f"/book/{PORTAL}/request".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/x-www-form-urlencoded"), (b"content-length", b"200")],
        "client": ("198.51.100.9", 50000),
        "server": ("127.0.0.1", 8080),
    }
    with caplog.at_level(logging.WARNING, logger="portalguard"):
        await web.app(scope, receive, send)  # type: ignore[arg-type]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert web.counter("portalguard_http_requests_total", route="/book/{portal}/request", code="500") == 0
    assert web.counter("portalguard_http_requests_total", route="/book/{portal}/request", code="499") == 1
    assert web.store.sync.count_requests() == 0
