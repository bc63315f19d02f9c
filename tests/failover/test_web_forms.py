"""The booking form's validation (pure) and the page's words in both languages."""

from __future__ import annotations

from datetime import date

import pytest

from failover.web import forms
from failover.web.i18n import STRINGS, choose_lang, format_time

TODAY = date(2027, 1, 15)


def form(**changes: str) -> dict[str, str]:
    base = {"name": "山田 花子", "phone": "090-1234-5678", "visit": "returning", "consent": "yes"}
    return base | changes


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        pytest.param("090-1234-5678", "09012345678", id="mobile"),
        pytest.param("09012345678", "09012345678", id="mobile-compact"),
        pytest.param("０９０－１２３４－５６７８", "09012345678", id="full-width"),
        pytest.param("090ー1234ー5678", "09012345678", id="long-vowel-mark-as-hyphen"),
        pytest.param("03-1234-5678", "0312345678", id="tokyo"),
        pytest.param("(03) 1234 5678", "0312345678", id="parentheses"),
        pytest.param("0466-12-3456", "0466123456", id="four-digit-area"),
        pytest.param("050-1234-5678", "05012345678", id="ip-phone"),
        pytest.param("0120-123-456", "0120123456", id="toll-free"),
        pytest.param("+81 90-1234-5678", "09012345678", id="plus81-mobile"),
        pytest.param("+81-3-1234-5678", "0312345678", id="plus81-landline"),
        pytest.param("+81 (0)90 1234 5678", "09012345678", id="plus81-trunk-zero"),
        pytest.param("+819012345678", "09012345678", id="plus81-compact"),
    ],
)
def test_japanese_phone_numbers(text: str, digits: str) -> None:
    assert forms.normalize_phone(text) == digits


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("090-1234-567", id="mobile-too-short"),
        pytest.param("090-1234-56789", id="mobile-too-long"),
        pytest.param("03-1234-56789", id="landline-too-long"),
        pytest.param("1234567890", id="no-trunk-zero"),
        pytest.param("00-1234-5678", id="international-prefix"),
        pytest.param("+1 415 555 0100", id="not-japan"),
        pytest.param("090-abcd-5678", id="letters"),
        pytest.param("٠٩٠١٢٣٤٥٦٧٨", id="arabic-indic-digits"),
        pytest.param("", id="empty"),
    ],
)
def test_not_japanese_phone_numbers(text: str) -> None:
    assert forms.normalize_phone(text) is None


def test_a_valid_form_is_normalized() -> None:
    result = forms.validate(
        form(
            name="  山田 花子 ",
            email="hanako@example.jp",
            date1="2027-01-15",
            time1="evening",
            date3="2027-02-01",
            reason="痛い\r\n歯",
        ),
        TODAY,
    )
    assert result.ok
    assert result.data == {
        "name": "山田 花子",
        "phone": "090-1234-5678",
        "phone_digits": "09012345678",
        "email": "hanako@example.jp",
        "preferred": [{"date": "2027-01-15", "time": "evening"}, {"date": "2027-02-01", "time": "any"}],
        "visit": "returning",
        "reason": "痛い\n歯",
        "consent": True,
    }


@pytest.mark.parametrize(
    ("changes", "field", "key"),
    [
        pytest.param({"name": "   "}, "name", "err_name_required", id="blank-name"),
        pytest.param({"name": "山田\n花子"}, "name", "err_text_invalid", id="newline-in-name"),
        pytest.param({"name": "山田\x00"}, "name", "err_text_invalid", id="nul-in-name"),
        pytest.param({"name": "山田\u202e"}, "name", "err_text_invalid", id="bidi-override"),
        pytest.param({"name": "\u200b\u200c\u200d\ufeff"}, "name", "err_name_required", id="zero-width-only-name"),
        pytest.param({"name": "\u3000\u200b "}, "name", "err_name_required", id="ideographic-space-name"),
        *[
            pytest.param({"phone": f"090-1234{c}5678"}, "phone", "err_phone_invalid", id=f"phone-{name}")
            for name, c in [
                *[("cr", "\r"), ("lf", "\n"), ("vt", "\x0b"), ("fs", "\x1c"), ("nel", "\x85")],
                *[("line-separator", "\u2028"), ("tab", "\t"), ("letter", "x"), ("slash", "/")],
            ]
        ],
        pytest.param({"email": "a@b"}, "email", "err_email_invalid", id="email-without-dot"),
        pytest.param({"email": "a b@example.jp"}, "email", "err_email_invalid", id="email-space"),
        pytest.param({"email": "x" * 250 + "@ex.jp"}, "email", "err_email_invalid", id="email-long"),
        pytest.param({"visit": "maybe"}, "visit", "err_visit_required", id="visit-unknown"),
        pytest.param({"consent": "on"}, "consent", "err_consent_required", id="consent-not-yes"),
        pytest.param({"date1": "2027-02-30"}, "date1", "err_date_invalid", id="impossible-date"),
        pytest.param({"date1": "15/01/2027"}, "date1", "err_date_invalid", id="date-format"),
        pytest.param({"date2": "2027-01-14"}, "date2", "err_date_past", id="yesterday"),
        pytest.param({"date3": "2027-07-15"}, "date3", "err_date_far", id="too-far"),
        pytest.param({"time1": "midnight", "date1": "2027-01-16"}, "time1", "err_time_invalid", id="time-unknown"),
        pytest.param({"time2": "morning"}, "date2", "err_date_missing", id="time-without-date"),
        pytest.param({"reason": "あ" * 501}, "reason", "err_reason_long", id="reason-long"),
        pytest.param({"reason": "ok\x1b[31m"}, "reason", "err_text_invalid", id="escape-sequence"),
    ],
)
def test_invalid_fields(changes: dict[str, str], field: str, key: str) -> None:
    result = forms.validate(form(**changes), TODAY)
    assert not result.ok and result.data is None
    assert list(result.errors) == [field]
    assert result.errors[field].key == key
    assert result.values[field] == forms._normalized(changes.get(field, ""))


def test_text_is_normalized_before_it_is_stored() -> None:
    result = forms.validate(form(name="\u200bＹａｍａｄａ　花子\ufeff", phone="　０９０－１２３４－５６７８　"), TODAY)
    assert result.ok and result.data is not None
    assert result.data["name"] == "Yamada 花子"  # NFKC: full-width letters and spaces become plain ones
    assert result.data["phone"] == "090-1234-5678"


def test_the_date_window_matches_the_inputs() -> None:
    low, high = forms.date_bounds(TODAY)
    assert forms.validate(form(date1=low, date2=high), TODAY).ok
    assert low == "2027-01-15" and high == "2027-07-14"


def test_honeypot() -> None:
    assert forms.honeypot_filled({"homepage": "x"})
    assert not forms.honeypot_filled({"homepage": "  "})
    assert not forms.honeypot_filled({})


def test_every_string_exists_in_both_languages() -> None:
    assert set(STRINGS["ja"]) == set(STRINGS["en"])


def test_every_error_key_has_words() -> None:
    keys = {"err_" + k for k in ("name_required", "name_long", "phone_required", "phone_invalid", "email_invalid")}
    keys |= {"err_date_invalid", "err_date_past", "err_date_far", "err_date_missing", "err_time_invalid"}
    keys |= {"err_visit_required", "err_reason_long", "err_consent_required", "err_text_invalid"}
    assert keys <= set(STRINGS["ja"])
    assert {f"time_{t}" for t in forms.TIMES} | {f"visit_{v}" for v in forms.VISITS} <= set(STRINGS["ja"])


@pytest.mark.parametrize(
    ("query", "header", "lang"),
    [
        pytest.param(None, None, "ja", id="nothing"),
        pytest.param("en", "ja", "en", id="query"),
        pytest.param(None, "en-GB;q=0.8, ja;q=0.9", "ja", id="q-values"),
        pytest.param(None, "en-GB;q=0.9, ja;q=0.8", "en", id="q-values-en"),
        pytest.param(None, "en;q=bad, ja;q=0.1", "ja", id="bad-q"),
        pytest.param(None, "*", "ja", id="star"),
        pytest.param(None, ",,;;", "ja", id="garbage"),
    ],
)
def test_choose_lang(query: str | None, header: str | None, lang: str) -> None:
    assert choose_lang(query, header) == lang


def test_format_time_uses_the_clinic_zone() -> None:
    assert format_time(1_800_000_000.0, "Asia/Tokyo") == "2027-01-15 17:00"
    assert format_time(None, "Asia/Tokyo") == "-"
