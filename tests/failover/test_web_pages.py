"""/book (redirect or fallback page), previews, languages, headers, static files, /healthz, /metrics."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from test_web_support import BASE_CONFIG, BOOK_URL, PORTAL, Web, make_web, two_portals

from failover.web import preview_token
from failover.web.security import CSP

pytestmark = pytest.mark.anyio


@pytest.fixture
def web(tmp_path: Path, clock) -> Web:
    return make_web(tmp_path, clock)


def switch_on(web: Web, clock, on: bool = True) -> None:
    web.store.sync.set_page(PORTAL, on)
    clock.advance(2)  # past any caching of the switch (the contract: effective within ~1 s)


@pytest.mark.parametrize("path", ["/book", f"/book/{PORTAL}"])
async def test_redirects_to_the_portal_while_the_page_is_off(web: Web, path: str) -> None:
    async with web.client() as c:
        r = await c.get(path)
    assert r.status_code == 302
    assert r.headers["location"] == BOOK_URL  # exactly: the fallback_page action compares it
    assert r.headers["cache-control"] == "no-store"  # a cached redirect would outlive the outage


@pytest.mark.parametrize("path", ["/book", f"/book/{PORTAL}"])
async def test_serves_the_fallback_page_while_the_page_is_on(web: Web, clock, path: str) -> None:
    switch_on(web, clock)
    async with web.client() as c:
        r = await c.get(path)
    assert r.status_code == 200
    html = r.text
    assert '<html lang="ja">' in html
    assert "さくら歯科 渋谷院" in html
    assert "ただいまWeb予約がご利用いただけません" in html
    assert 'href="tel:03-1234-5678"' in html
    assert "月〜金 9:30–13:00" in html and "東京都渋谷区道玄坂1-2-3 4F" in html
    for name in ("name", "phone", "email", "date1", "time3", "visit", "reason", "consent"):
        assert f'name="{name}"' in html
    assert f'action="/book/{PORTAL}/request#errors"' in html


async def test_the_switch_takes_effect_both_ways(web: Web, clock) -> None:
    async with web.client() as c:
        assert (await c.get("/book")).status_code == 302
        switch_on(web, clock)
        assert (await c.get("/book")).status_code == 200
        switch_on(web, clock, False)
        assert (await c.get("/book")).status_code == 302


async def test_several_portals_get_a_chooser(tmp_path: Path, clock) -> None:
    web = make_web(tmp_path, clock, portals=two_portals())
    async with web.client() as c:
        r = await c.get("/book")
        assert r.status_code == 200
        assert f'href="/book/{PORTAL}?lang=ja"' in r.text and 'href="/book/other?lang=ja"' in r.text
        assert (await c.get("/book/other")).headers["location"] == "https://other.example.jp/b"


async def test_the_chooser_and_staff_show_portal_names(tmp_path: Path, clock) -> None:
    portals = two_portals()
    portals["other"]["name"] = "ホットペッパー <予約>"
    web = make_web(tmp_path, clock, portals=portals)
    async with web.client() as c:
        r = await c.get("/book")
    assert "ホットペッパー &lt;予約&gt;</a>" in r.text and f">{PORTAL}</a>" in r.text, "default: the id"
    assert web.settings.portal_name("other") == "ホットペッパー <予約>" and web.settings.portal_name(PORTAL) == PORTAL


async def test_unknown_portal_is_404_with_the_phone_number(web: Web) -> None:
    async with web.client() as c:
        r = await c.get("/book/nope")
    assert r.status_code == 404
    assert 'href="tel:03-1234-5678"' in r.text


async def test_preview_shows_the_page_while_off_with_a_drill_banner(web: Web) -> None:
    token = preview_token(web.settings, PORTAL)
    async with web.client() as c:
        r = await c.get(f"/book/{PORTAL}?preview={token}")
    assert r.status_code == 200
    assert "プレビュー（訓練用）" in r.text
    assert f'name="preview" value="{token}"' in r.text
    assert f'href="/book/{PORTAL}?preview={token}&amp;lang=en"' in r.text  # the language switch keeps it


@pytest.mark.parametrize(
    "token",
    [pytest.param("x" * 22, id="forged"), pytest.param("", id="empty"), pytest.param("トークン", id="non-ascii")],
)
async def test_a_wrong_preview_token_is_403(web: Web, token: str) -> None:
    async with web.client() as c:
        r = await c.get(f"/book/{PORTAL}", params={"preview": token})
    assert r.status_code == 403
    assert "プレビュー用のリンクが正しくありません" in r.text


async def test_a_preview_token_is_bound_to_its_portal(tmp_path: Path, clock) -> None:
    web = make_web(tmp_path, clock, portals=two_portals())
    async with web.client() as c:
        r = await c.get("/book/other", params={"preview": preview_token(web.settings, PORTAL)})
    assert r.status_code == 403


async def test_preview_while_on_is_the_normal_page(web: Web, clock) -> None:
    switch_on(web, clock)
    async with web.client() as c:
        r = await c.get(f"/book/{PORTAL}", params={"preview": preview_token(web.settings, PORTAL)})
    assert r.status_code == 200
    assert "プレビュー" not in r.text


@pytest.mark.parametrize(
    ("query", "accept", "lang"),
    [
        pytest.param("", None, "ja", id="default-ja"),
        pytest.param("?lang=en", None, "en", id="query-en"),
        pytest.param("?lang=ja", "en-US,en;q=0.9", "ja", id="query-beats-header"),
        pytest.param("", "en-US,en;q=0.9", "en", id="header-en"),
        pytest.param("", "ja,en;q=0.8", "ja", id="header-ja-first"),
        pytest.param("", "fr,en;q=0.5", "en", id="header-en-over-unlisted-ja"),
        pytest.param("?lang=xx", None, "ja", id="unknown-lang-param"),
    ],
)
async def test_language(web: Web, clock, query: str, accept: str | None, lang: str) -> None:
    switch_on(web, clock)
    headers = {"accept-language": accept} if accept else {}
    async with web.client() as c:
        r = await c.get(f"/book/{PORTAL}{query}", headers=headers)
    assert f'<html lang="{lang}">' in r.text
    if lang == "en":
        assert "Sakura Dental Shibuya" in r.text
        assert "Online booking is temporarily unavailable" in r.text
        assert f'href="/book/{PORTAL}?lang=ja"' in r.text


@pytest.mark.parametrize(
    ("keep_english", "hours", "address"),
    [
        pytest.param(True, "Mon–Fri 9:30–13:00", "1-2-3 Dogenzaka, Shibuya-ku", id="english-given"),
        pytest.param(False, "月〜金 9:30–13:00", "東京都渋谷区道玄坂", id="falls-back-to-japanese"),
    ],
)
async def test_english_page_shows_hours_and_address_in_english_when_given(
    tmp_path: Path, clock, keep_english: bool, hours: str, address: str
) -> None:
    clinic = {k: v for k, v in BASE_CONFIG["clinic"].items() if keep_english or k not in ("hours_en", "address_en")}
    web = make_web(tmp_path, clock, clinic=clinic)
    switch_on(web, clock)
    async with web.client() as c:
        en = (await c.get(f"/book/{PORTAL}?lang=en")).text
        ja = (await c.get(f"/book/{PORTAL}")).text
    assert hours in en and address in en
    assert "月〜金 9:30–13:00" in ja and "東京都渋谷区道玄坂" in ja  # Japanese page: always the Japanese text


async def test_security_headers_on_every_kind_of_response(web: Web, clock) -> None:
    switch_on(web, clock)
    async with web.client() as c:
        responses = [
            await c.get(f"/book/{PORTAL}"),
            await c.get("/book/nope"),
            await c.get("/healthz"),
            await c.get("/metrics"),
            await c.get("/static/app.css"),
            await c.get("/staff"),
            await c.post(f"/book/{PORTAL}/request", content=b"{}", headers={"content-type": "application/json"}),
        ]
    for r in responses:
        assert r.headers["content-security-policy"] == CSP, r.url
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
    assert "unsafe-inline" not in CSP and "script-src" not in CSP  # default-src 'none' forbids script


async def test_the_page_uses_no_external_assets_inline_script_or_style(web: Web, clock) -> None:
    switch_on(web, clock)
    async with web.client() as c:
        html = (await c.get(f"/book/{PORTAL}")).text
    assert "<script" not in html and "<style" not in html and " style=" not in html
    for url in re.findall(r'(?:href|src|action)="([^"]*)"', html):
        assert url.startswith(("/", "tel:", "#")), url


async def test_static_files_are_served_by_the_app_and_cached(web: Web) -> None:
    async with web.client() as c:
        css = await c.get("/static/app.css")
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert css.headers["cache-control"].startswith("public")
        again = await c.get("/static/app.css", headers={"if-none-match": css.headers["etag"]})
        assert again.status_code == 304
        assert (await c.get("/static/icon.svg")).headers["content-type"] == "image/svg+xml"
        assert (await c.get("/static/../app.py")).status_code == 404
        assert (await c.get("/static/nope.css")).status_code == 404


async def test_healthz(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    async with web.client() as c:
        assert (await c.get("/healthz")).status_code == 200
        monkeypatch.setattr(web.store, "writable", _async(False))
        r = await c.get("/healthz")
    assert r.status_code == 503
    assert "store not writable" in r.text
    assert "failover goes on from memory" in r.text and "free disk space" in r.text


def _async(value: Any) -> Any:
    async def answer(*_args: Any) -> Any:
        return value

    return answer


async def test_metrics_count_route_templates_never_raw_paths(web: Web, clock) -> None:
    switch_on(web, clock)
    async with web.client() as c:
        await c.get(f"/book/{PORTAL}")
        await c.get("/book/secret-path-1?name=hanako")
        await c.get("/wp-login.php?x=1")
        await c.post(f"/book/{PORTAL}", data={})  # 405
        r = await c.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert web.counter("portalguard_http_requests_total", route="/book/{portal}", code="200") == 1
    assert web.counter("portalguard_http_requests_total", route="/book/{portal}", code="404") == 1
    assert web.counter("portalguard_http_requests_total", route="unmatched", code="404") == 1
    assert web.counter("portalguard_http_requests_total", route="/book/{portal}", code="405") == 1
    routes = set(re.findall(r'portalguard_http_requests_total\{code="\d+",route="([^"]*)"\}', r.text))
    assert routes == {"/book/{portal}", "unmatched"}
    assert "secret-path" not in r.text and "hanako" not in r.text and "wp-login" not in r.text


async def test_method_not_allowed_is_a_page(web: Web) -> None:
    async with web.client() as c:
        r = await c.get(f"/book/{PORTAL}/request")
    assert r.status_code == 405
    assert 'href="tel:03-1234-5678"' in r.text


async def test_an_unexpected_error_is_a_500_page_with_the_phone_and_no_patient_data_logged(
    web: Web, clock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    detail = "secret detail 山田"  # as if an exception quoted what a patient typed

    async def broken(portal: str) -> None:
        raise RuntimeError(detail)

    monkeypatch.setattr(web.store, "portal", broken)
    async with web.client() as c:
        r = await c.get(f"/book/{PORTAL}")
    assert r.status_code == 500
    assert 'href="tel:03-1234-5678"' in r.text
    assert r.headers["x-frame-options"] == "DENY"
    assert web.counter("portalguard_http_requests_total", route="/book/{portal}", code="500") == 1
    assert "RuntimeError" in caplog.text
    assert "山田" not in caplog.text and "secret detail" not in caplog.text


async def test_fallback_page_action_observes_a_non_ascii_book_url(tmp_path: Path, clock: Any) -> None:
    """The redirect percent-encodes the URL; the action must still recognise it as "off"."""
    import httpx

    from failover.actions.fallback_page import FallbackPage, FallbackPageConfig
    from failover.service import action_context

    portals = {
        PORTAL: {
            "endpoints": {"public": {"url": "https://portal.example.jp/c"}},
            "book_url": "https://portal.example.jp/クリニック/予約",
        }
    }
    web = make_web(tmp_path, clock, portals=portals)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web.app), base_url="http://127.0.0.1:8080") as c:
        deps = action_context(web.settings, PORTAL, web.store, c, None, clock)  # type: ignore[arg-type]
        action = FallbackPage("page", FallbackPageConfig(type="fallback_page"), deps)
        action.url = f"http://127.0.0.1:8080/book/{PORTAL}"
        assert await action.observe() is False
        web.store.sync.set_page(PORTAL, True)
        assert await action.observe() is True
