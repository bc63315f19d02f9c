"""Booking mails as Japanese portals send them, built byte by byte: ISO-2022-JP (CP50220, with the NEC
special characters), Shift_JIS/CP932 and UTF-8; 7bit, base64 and quoted-printable; plain or HTML."""

from __future__ import annotations

import base64
import datetime as dt
import quopri
from email.utils import format_datetime

SENDER = "yoyaku@portal.example.jp"


def _sjis_to_jis(s1: int, s2: int) -> bytes:
    off = 0xB0 if s1 >= 0xE0 else 0x70
    if s2 >= 0x9F:
        return bytes(((s1 - off) * 2, s2 - 0x7E))
    return bytes(((s1 - off) * 2 - 1, s2 - (0x20 if s2 >= 0x80 else 0x1F)))


def cp50220(text: str) -> bytes:
    """``text`` as a Japanese mailer writes ISO-2022-JP: JIS X 0208 with the NEC rows (from CP932)."""
    data = text.encode("cp932")
    out, mode, i = bytearray(), "ascii", 0
    while i < len(data):
        b = data[i]
        if b < 0x80:
            if mode != "ascii":
                out += b"\x1b(B"
                mode = "ascii"
            out.append(b)
            i += 1
        elif 0xA1 <= b <= 0xDF:  # half-width kana: CP50220 writes them as ESC ( I
            if mode != "kana":
                out += b"\x1b(I"
                mode = "kana"
            out.append(b - 0x80)
            i += 1
        else:
            if mode != "kanji":
                out += b"\x1b$B"
                mode = "kanji"
            out += _sjis_to_jis(b, data[i + 1])
            i += 2
    if mode != "ascii":
        out += b"\x1b(B"
    return bytes(out)


def _charset_bytes(text: str, charset: str) -> bytes:
    if charset == "iso-2022-jp":
        return cp50220(text)
    if charset == "shift_jis":
        return text.encode("cp932")
    return text.encode(charset)


def encoded_subject(subject: str, charset: str) -> str:
    return f"=?{charset.upper()}?B?{base64.b64encode(_charset_bytes(subject, charset)).decode()}?="


def build(
    subject: str,
    body: str,
    *,
    charset: str = "utf-8",
    cte: str = "base64",
    html: bool = False,
    sender: str = SENDER,
    message_id: str | None = None,
    date: dt.datetime | None = None,
    with_html_alternative: bool = False,
) -> bytes:
    data = _charset_bytes(body.replace("\n", "\r\n"), charset)
    if cte == "base64":
        payload = base64.encodebytes(data)
    elif cte == "quoted-printable":
        payload = quopri.encodestring(data)
    else:
        payload = data + b"\r\n"
    date = date or dt.datetime(2026, 12, 1, 18, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    head = [
        f"From: =?UTF-8?B?{base64.b64encode('予約システム'.encode()).decode()}?= <{sender}>",
        "To: clinic@example.jp",
        f"Subject: {encoded_subject(subject, charset)}",
        f"Date: {format_datetime(date)}",
        f"Message-ID: <{message_id or abs(hash((subject, body, sender)))}@portal.example.jp>",
        "MIME-Version: 1.0",
    ]
    kind = "html" if html else "plain"
    part = f"Content-Type: text/{kind}; charset={charset}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n".encode()
    if with_html_alternative:
        other = b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n<p>HTML</p>\r\n"
        head.append('Content-Type: multipart/alternative; boundary="b1"')
        return "\r\n".join(head).encode() + b"\r\n\r\n--b1\r\n" + other + b"--b1\r\n" + part + payload + b"--b1--\r\n"
    return "\r\n".join(head).encode() + b"\r\n" + part + payload


BOOKED_SUBJECT = "【さくら予約】ご予約が入りました"
CHANGED_SUBJECT = "【さくら予約】ご予約が変更されました"
CANCELLED_SUBJECT = "【さくら予約】ご予約がキャンセルされました"


def booking_body(rid: str, when: str, name: str, *, phone: str = "090-0000-1234", menu: str = "検診①") -> str:
    return (
        f"さくら歯科 様\n\n以下のご予約を承りました。\n\n予約番号：{rid}\n日時：{when}\n"
        f"お名前：{name} 様\n電話番号：{phone}\nメニュー：{menu}\n\n㈱ポータル予約\n"
    )


TEMPLATES = [
    {
        "kind": "booked",
        "subject": "ご予約が入りました",
        "body": r"予約番号[:：]\s*(?P<id>\S+)[\s\S]*?日時[:：]\s*(?P<date>\S+)\s+(?P<time>\S+)[\s\S]*?"
        r"お名前[:：]\s*(?P<name>[^\n]+?)\s*様?\n[\s\S]*?電話番号[:：]\s*(?P<phone>\S+)[\s\S]*?メニュー[:：]\s*(?P<menu>[^\n]+)",
    },
    {
        "kind": "changed",
        "subject": "変更",
        "body": r"予約番号[:：]\s*(?P<id>\S+)[\s\S]*?日時[:：]\s*(?P<date>\S+)\s+(?P<time>\S+)",
    },
    {"kind": "cancelled", "subject": "キャンセル", "body": r"予約番号[:：]\s*(?P<id>\S+)"},
]
