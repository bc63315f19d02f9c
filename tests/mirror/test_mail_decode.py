"""Japanese booking mails as they really are, decoded (no server): ISO-2022-JP with the NEC special
characters, Shift_JIS/CP932 and UTF-8, in base64, quoted-printable and 7bit, plain or HTML, with
MIME-encoded subjects; then what the templates read from them, and why a mail is not read."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from failover.mirror.mail.config import MailSource
from failover.mirror.mail.decode import decode_text, iso2022jp_to_text, parse_mail
from failover.mirror.mail.templates import read
from failover.mirror.model import MailBooking, UnreadMail
from tests.mirror.mails import (
    BOOKED_SUBJECT,
    CANCELLED_SUBJECT,
    CHANGED_SUBJECT,
    SENDER,
    TEMPLATES,
    booking_body,
    build,
    cp50220,
)

TZ = ZoneInfo("Asia/Tokyo")
RECEIVED = dt.datetime(2026, 12, 1, 18, 0, 5, tzinfo=TZ).timestamp()
SPECIAL = "検診①②㈱ Ⅲ ｶﾞｯｺｳ"  # NEC row 13 (①②㈱Ⅲ) and half-width kana: what iso2022_jp rejects


def cfg(**overrides: object) -> MailSource:
    data = {"imap": "imaps://clinic%40example.jp:pw@imap.example.jp/INBOX", "from": [SENDER], "templates": TEMPLATES}
    return MailSource.model_validate({**data, **overrides})


def test_the_plain_codec_rejects_what_japanese_mailers_send_and_ours_reads_it() -> None:
    data = cp50220(SPECIAL)
    with pytest.raises(UnicodeDecodeError):
        data.decode("iso2022_jp")
    assert iso2022jp_to_text(data) == SPECIAL
    assert decode_text(data, "ISO-2022-JP") == SPECIAL
    assert decode_text(SPECIAL.encode("cp932"), "Shift_JIS") == SPECIAL
    assert decode_text("①".encode(), "no-such-charset") == "①"  # unknown: UTF-8, never an error
    assert decode_text(b"\xff\xfe", "utf-8") == "\ufffd\ufffd"  # undecodable bytes never refuse a mail


@pytest.mark.parametrize(
    ("charset", "cte"),
    [
        ("iso-2022-jp", "7bit"),
        ("iso-2022-jp", "base64"),
        ("shift_jis", "base64"),
        ("shift_jis", "quoted-printable"),
        ("utf-8", "quoted-printable"),
        ("utf-8", "base64"),
    ],
)
def test_every_encoding_reads_to_the_same_text_and_booking(charset: str, cte: str) -> None:
    body = booking_body("R100", "2026/12/02 10:00〜10:30", "山田 太郎", menu=SPECIAL)
    mail = parse_mail(build(BOOKED_SUBJECT + "①", body, charset=charset, cte=cte))
    assert mail.subject == BOOKED_SUBJECT + "①"
    assert mail.senders == (SENDER,)
    assert "㈱ポータル予約" in mail.body and "\r" not in mail.body
    effect = read(cfg(), mail, RECEIVED, TZ).effect
    assert effect == MailBooking(
        kind="booked",
        id="R100",
        received=RECEIVED,
        day=dt.date(2026, 12, 2),
        start=dt.datetime(2026, 12, 2, 10, 0, tzinfo=TZ),
        end=dt.datetime(2026, 12, 2, 10, 30, tzinfo=TZ),
        name="山田 太郎",
        phone="090-0000-1234",
        menu=SPECIAL,
    )


def test_html_only_is_reduced_to_text_and_plain_is_preferred_over_html() -> None:
    html = (
        "<html><head><style>p{color:red}</style></head><body><p>予約番号：R7</p><div>日時：12月2日(水) 9:00</div>"
        "<p>お名前：佐藤 花子 様<br>電話番号：090-0000-5678<br>メニュー：クリーニング</p></body></html>"
    )
    mail = parse_mail(build(BOOKED_SUBJECT, html, html=True))
    assert mail.body.splitlines()[:2] == ["予約番号：R7", "日時：12月2日(水) 9:00"]
    assert "color" not in mail.body
    effect = read(cfg(), mail, RECEIVED, TZ).effect
    assert isinstance(effect, MailBooking) and effect.name == "佐藤 花子" and effect.day == dt.date(2026, 12, 2)
    both = parse_mail(build(BOOKED_SUBJECT, booking_body("R8", "2026/12/02 11:00", "鈴木"), with_html_alternative=True))
    assert "予約番号：R8" in both.body and "HTML" not in both.body


def test_changed_and_cancelled_mails_say_only_what_they_say() -> None:
    changed = read(cfg(), parse_mail(build(CHANGED_SUBJECT, "予約番号：R1\n日時：2026-12-03 15:00\n")), RECEIVED, TZ)
    assert isinstance(changed.effect, MailBooking)
    assert (changed.effect.kind, changed.effect.day, changed.effect.name) == ("changed", dt.date(2026, 12, 3), None)
    cancelled = read(cfg(), parse_mail(build(CANCELLED_SUBJECT, "予約番号：R1\n")), RECEIVED, TZ)
    assert cancelled.effect == MailBooking(kind="cancelled", id="R1", received=RECEIVED)


def test_a_mail_no_template_reads_is_unread_with_its_reason_and_another_senders_is_nothing() -> None:
    miss = parse_mail(build("お問い合わせ 山田様", "本文"))
    reading = read(cfg(), miss, RECEIVED, TZ)
    assert reading.effect == UnreadMail(miss.key, RECEIVED, "お問い合わせ 山田様", "template")
    no_id = read(cfg(), parse_mail(build(CANCELLED_SUBJECT, "番号なし")), RECEIVED, TZ)
    assert isinstance(no_id.effect, UnreadMail) and no_id.effect.reason == "body"
    bad_date = read(cfg(), parse_mail(build(BOOKED_SUBJECT, booking_body("R9", "あした 10:00", "山田"))), RECEIVED, TZ)
    assert isinstance(bad_date.effect, UnreadMail) and bad_date.effect.reason == "date"
    other = parse_mail(build(BOOKED_SUBJECT, booking_body("R9", "2026/12/02 10:00", "山田"), sender="spam@example.com"))
    assert read(cfg(), other, RECEIVED, TZ).effect is None
    assert read(cfg(), other, RECEIVED, TZ).kind == "booked"  # mail-test still shows what it would read


def test_a_mail_is_one_mail_by_its_message_id() -> None:
    a = parse_mail(build("x", "y", message_id="same"))
    b = parse_mail(build("x", "z", message_id="same", charset="shift_jis"))
    assert a.key == b.key and len(a.key) == 32
