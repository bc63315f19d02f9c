"""Staff message texts: every topic in both languages, time zones, drills, no patient data."""

from __future__ import annotations

import logging

import pytest

from failover.redact import RedactUrls, redact, scrub_urls, url_origin
from failover.staff.messages import DRILL_PREFIX, TOPICS, format_span, render

SINCE = 1_800_000_000.0  # 2027-01-15 08:00 UTC = 17:00 JST

FIELDS = {
    "portal": "epark",
    "clinic": "さくら歯科",
    "tz": "Asia/Tokyo",
    "reason": "public: http_status (HTTP 503)",
    "since": SINCE,
    "now": SINCE + 3 * 3600 + 5 * 60,
    "ended": SINCE + 3 * 3600 + 5 * 60,
    "measures": [
        ("page", {"ja": "代替予約ページ", "en": "fallback page"}),
        ("ads", {"ja": "Google 広告", "en": "Google Ads"}),
    ],
    "fallback_url": "https://book.example.jp/book/epark",
    "staff_url": "https://book.example.jp/staff",
    "action": "ads",
    "error": "google_ads ads: campaign 111 not found",
    "permanent": True,
    "cause": "portal up but failed over 4× within an hour: held on (flapping)",
    "count": 3,
    "numbers": [40, 41, 42],
    "max_active": 86400.0,
    "by": "override",
    "why": "known false alarm",
    "until": SINCE + 7200,
    "endpoint": "admin",
    "config_key": "portals.epark.endpoints.admin.login",
    "held_until": SINCE + 3600,
    "site": "vps-tokyo",
}


@pytest.mark.parametrize("language", ["ja", "en"])
@pytest.mark.parametrize("topic", TOPICS)
def test_every_topic_renders_completely(topic: str, language: str) -> None:
    title, body = render(topic, language, **FIELDS)
    assert title and body
    assert "{" not in title + body and "—" not in title + body  # no unfilled placeholder
    assert "epark" in title + body or topic.startswith(("network", "store"))  # ours, not a portal's


def test_japanese_is_the_default() -> None:
    title, body = render("outage", **FIELDS)
    assert "予約サイト障害" in title and "代替予約ページ" in body


@pytest.mark.parametrize(
    ("tz", "language", "shown"),
    [("Asia/Tokyo", "ja", "2027-01-15 17:00 JST"), ("America/New_York", "en", "2027-01-15 03:00 EST")],
    ids=["tokyo", "new-york"],
)
def test_times_are_shown_in_the_clinic_time_zone(tz: str, language: str, shown: str) -> None:
    _, body = render("outage", language, **{**FIELDS, "tz": tz})
    assert shown in body


def test_outage_says_what_failed_what_was_switched_and_where_patients_go() -> None:
    _, body = render("outage", "en", **FIELDS)
    assert "HTTP 503" in body
    assert "fallback page (page), Google Ads (ads)" in body
    assert "https://book.example.jp/book/epark" in body


def test_outage_without_public_url_says_what_to_set() -> None:
    _, body = render("outage", "en", **{**FIELDS, "fallback_url": None})
    assert "not set: server.public_url" in body


@pytest.mark.parametrize(
    ("topic", "language", "expected"),
    [
        ("reminder", "ja", "3時間5分"),
        ("reminder", "en", "3 h 5 min"),
        ("recovered", "ja", "障害時間：3時間5分"),
        ("recovered", "en", "Outage: 3 h 5 min"),
    ],
)
def test_durations(topic: str, language: str, expected: str) -> None:
    title, body = render(topic, language, **FIELDS)
    assert expected in title + body


def test_booking_request_carries_no_patient_data() -> None:
    patient = {"name": "山田花子", "phone": "090-1111-2222", "symptom": "歯が痛い", "email": "h@example.jp"}
    for language in ("ja", "en"):
        title, body = render(
            "booking_request",
            language,
            portal="epark",
            count=2,
            numbers=[7, 8],
            staff_url="https://b.jp/staff",
            **patient,
        )
        text = title + body
        assert "2" in title and "epark" in text and "https://b.jp/staff" in body
        assert ("No.7、No.8" if language == "ja" else "No. 7, No. 8") in body
        for value in patient.values():
            assert value not in text


@pytest.mark.parametrize("language", ["ja", "en"])
def test_drill_messages_are_marked(language: str) -> None:
    title, body = render("outage", language, drill=True, **FIELDS)
    assert title.startswith(DRILL_PREFIX) and "[訓練/DRILL]" in title
    assert ("訓練" if language == "ja" else "drill") in body.splitlines()[0]


def test_action_failed_says_whether_it_is_retried() -> None:
    _, permanent = render("action_failed", "en", **FIELDS)
    _, transient = render("action_failed", "en", **{**FIELDS, "permanent": False})
    assert "not be retried" in permanent and "actions.ads" in permanent
    assert "retried automatically" in transient


def test_flapping_offers_the_three_decisions_on_the_console() -> None:
    _, body = render("flapping", "ja", **FIELDS)
    for button in ("フォールバックを開始", "誤報として停止", "自動に戻す"):  # the decide page's buttons
        assert f"「{button}」" in body
    assert body.endswith("https://book.example.jp/staff/decide/epark") and "portalguard failover" not in body


@pytest.mark.parametrize("language", ["ja", "en"])
def test_flapping_says_the_hold_and_its_end_in_the_staff_language(language: str) -> None:
    _, body = render("flapping", language, **FIELDS)
    assert "held on" not in body and "(flapping)" not in body, "no English decision text in the message"
    if language == "ja":
        assert "1時間に4回切り替わったため代替受付を続けています" in body and "2027-01-15 18:00 JST ごろ" in body
    else:
        assert (
            "failed over 4× within an hour: the fallback stays on" in body and "at about 2027-01-15 18:00 JST" in body
        )
    _, unknown = render("flapping", language, **{**FIELDS, "held_until": None})
    assert ("未定" if language == "ja" else "not known") in unknown


def test_min_failover_hold_in_words() -> None:
    from failover.staff.messages import cause_in_words

    assert cause_in_words("portal up; held 4m30s more (min_failover)", "ja") == (
        "予約サイトは使えていますが、最低継続時間（min_failover）のため、あと4分代替受付を続けます"
    )


TOPICS_THAT_ASK_FOR_A_DECISION = ("reminder", "flapping", "down_while_suppressed", "ads_max_active")


@pytest.mark.parametrize("language", ["ja", "en"])
@pytest.mark.parametrize("topic", TOPICS_THAT_ASK_FOR_A_DECISION)
def test_a_decision_is_asked_for_on_the_portals_decide_page_not_in_a_terminal(topic: str, language: str) -> None:
    """Staff who get these decide in the browser: the link is the portal's decide page (the CLI
    commands stay in the README for operators)."""
    body = render(topic, language, **FIELDS)[1]
    assert "https://book.example.jp/staff/decide/epark" in body and "portalguard failover" not in body


@pytest.mark.parametrize("language", ["ja", "en"])
def test_our_network_down_links_to_the_overview(language: str) -> None:
    body = render("network_degraded", language, **FIELDS)[1]
    assert "https://book.example.jp/staff/overview" in body and "portalguard failover" not in body


def test_a_portal_id_is_quoted_in_the_decide_link() -> None:
    body = render("flapping", "en", **{**FIELDS, "portal_id": "a b"})[1]
    assert "/staff/decide/a%20b" in body


@pytest.mark.parametrize("language", ["ja", "en"])
def test_down_while_suppressed_says_what_keeps_failover_off(language: str) -> None:
    title, body = render("down_while_suppressed", language, **FIELDS)
    if language == "ja":
        assert "停止中ですが手動で切り替えを止めています" in title + body
        assert "手動の「誤報として停止」（理由：known false alarm、2027-01-15 19:00 JSTまで）" in body
    else:
        assert "kept off by hand" in title and "until 2027-01-15 19:00 JST" in body
    assert "/staff/decide/epark" in body and "HTTP 503" in body
    window = {**FIELDS, "by": "maintenance", "window": 4, "why": "vendor upgrade"}
    _, body = render("down_while_suppressed", language, **window)
    assert ("メンテナンス枠 No.4" if language == "ja" else "maintenance window No. 4") in body
    _, forever = render("down_while_suppressed", language, **{**FIELDS, "until": None})
    assert ("期限なし" if language == "ja" else "no end") in forever


@pytest.mark.parametrize("language", ["ja", "en"])
def test_login_failed_names_the_credentials_to_check(language: str) -> None:
    _, body = render("login_failed", language, **FIELDS)
    if language == "ja":
        assert "スタッフ用ログインに失敗しています。パスワードが変わっていないか確認してください" in body
    else:
        assert "check whether the password was changed" in body
    assert "portals.epark.endpoints.admin.login.username" in body
    assert "portals.epark.endpoints.admin.login.password" in body


def test_network_degraded_says_no_failover_was_done() -> None:
    _, ja = render("network_degraded", "ja", **FIELDS)
    _, en = render("network_degraded", "en", **FIELDS)
    assert "自動の切り替えは行っていません" in ja and "no failover was done" in en


def test_unknown_topic() -> None:
    with pytest.raises(ValueError, match="unknown message topic 'nope'"):
        render("nope", "ja")


@pytest.mark.parametrize(
    ("seconds", "ja", "en"),
    [(30, "1分未満", "under a minute"), (300, "5分", "5 min"), (90000, "1日1時間", "1 d 1 h")],
    ids=["seconds", "minutes", "days"],
)
def test_format_span(seconds: float, ja: str, en: str) -> None:
    assert (format_span(seconds, "ja"), format_span(seconds, "en")) == (ja, en)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://hooks.example.com/services/SECRET?token=SECRET", "https://hooks.example.com"),
        ("mailto://user:SECRET@127.0.0.1:2525?to=a@b.jp", "mailto://127.0.0.1:2525"),
        ("json://[::1]:8080/SECRET", "json://[::1]:8080"),
        ("tgram://123456:SECRET/chat", "tgram://…"),
        ("slack://SECRET/B1/C1", "slack://…"),
        ("ntfy://SECRET", "ntfy://…"),
    ],
    ids=["https", "mailto", "ipv6", "telegram", "slack", "ntfy"],
)
def test_url_origin_hides_tokens(url: str, origin: str) -> None:
    assert url_origin(url) == origin


def test_redact_masks_url_pieces_in_free_text() -> None:
    url = "json://127.0.0.1:8080/hooks/abcdef123456?key=pw"
    text = "POST to http://127.0.0.1:8080/hooks/abcdef123456 failed; token abcdef123456"
    assert redact(text, url) == "POST to http://127.0.0.1:8080 failed; token …"
    assert "s3cr" not in redact("login s3cr failed", "mailto://u:s3cr@h.example.jp")


def test_redact_filter_drops_debug_and_scrubs_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact")
    logger.addFilter(RedactUrls())
    with caplog.at_level(logging.DEBUG, logger="test.redact"):
        logger.debug("payload for https://h.example.jp/SECRET")
        logger.warning("failed %s", "https://h.example.jp/SECRET?x=1")
    assert [r.getMessage() for r in caplog.records] == ["failed https://h.example.jp"]
    assert scrub_urls("a https://h.example.jp/x b") == "a https://h.example.jp b"


@pytest.mark.parametrize(
    ("reason", "lang", "shown"),
    [
        ("override on: 電話が鳴りっぱなし", "ja", "手動で切り替えました（理由：電話が鳴りっぱなし）"),
        ("override on: phones ringing", "en", "switched on by hand (reason: phones ringing)"),
        ("drill (rehearsal)", "ja", "訓練（リハーサル）"),
        ("maintenance window #3 (failover)", "ja", "メンテナンス枠 No.3（代替受付に切り替え）"),
        ("public: http_status (HTTP 503)", "ja", "public: http_status (HTTP 503)"),
    ],
)
def test_the_cause_is_said_in_words(reason: str, lang: str, shown: str) -> None:
    # A manual failover read 「原因：override on: …」 although the portal was up.
    _title, body = render("outage", lang, **{**FIELDS, "reason": reason})
    assert shown in body and "override on:" not in body


def test_a_failing_store_is_told_in_the_words_of_its_kind() -> None:
    _, disk = render("store_failing", "ja", since=0, error="disk I/O error")
    _, database = render("store_failing", "ja", since=0, error="connection refused", database=True)
    assert "ディスクの空き容量不足" in disk and "PostgreSQL" not in disk
    assert "データベース（PostgreSQL）に接続できない" in database and "df -h" not in database
    _, english = render("store_failing", "en", since=0, error="connection refused", database=True)
    assert "cannot be reached or refuses writes" in english and "disk" not in english.lower()


def test_a_stop_in_failover_says_what_stays_on_and_what_goes() -> None:
    title, body = render(
        "stopped_in_failover",
        "ja",
        portal="EPARK",
        since=0,
        staying=[("ads", {"ja": "Google 広告", "en": "Google Ads"})],
        static_page=False,
        fallback_url="https://book.example.jp/book/epark",
    )
    assert title == "【注意】portalguard が停止しました：EPARK は代替受付中です"
    assert (
        "そのまま続くもの：Google 広告 (ads)" in body
        and "止まるもの：代替予約ページ（https://book.example.jp/book/epark）" in body
    )
    assert "予備の静的ページは未設定：server.static_fallback_dir" in body
