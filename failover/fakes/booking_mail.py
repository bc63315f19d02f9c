"""The portal's booking mails (予約通知メール), as the simulator sends them when its appointments change.

A mail is delivered into a Maildir (``new/``, by way of ``tmp/``: what a local delivery agent does),
which an IMAP server (Dovecot in the tests) serves. ISO-2022-JP as Japanese portals still send it,
with CP50220's NEC characters (①, ㈱) written as Japanese mailers write them; UTF-8 on request.
``TEMPLATES`` are the ``mirror.mail.templates`` that read these mails. Imports nothing of the app.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import os
import time
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

SENDER = "yoyaku@portal-simulator.example"
SUBJECTS = {
    "booked": "【予約シミュレータ】ご予約が入りました",
    "changed": "【予約シミュレータ】ご予約が変更されました",
    "cancelled": "【予約シミュレータ】ご予約がキャンセルされました",
}
TEMPLATES: list[dict[str, str]] = [
    {
        "kind": "booked",
        "subject": "ご予約が入りました",
        "body": r"予約番号[:：]\s*(?P<id>\S+)[\s\S]*?日時[:：]\s*(?P<date>\S+)\s+(?P<time>\S+)[\s\S]*?"
        r"お名前[:：]\s*(?P<name>[^\n]+?)\s*様\n[\s\S]*?電話番号[:：]\s*(?P<phone>\S*)\n[\s\S]*?"
        r"メニュー[:：]\s*(?P<menu>[^\n]*)",
    },
    {
        "kind": "changed",
        "subject": "変更されました",
        "body": r"予約番号[:：]\s*(?P<id>\S+)[\s\S]*?日時[:：]\s*(?P<date>\S+)\s+(?P<time>\S+)",
    },
    {"kind": "cancelled", "subject": "キャンセル", "body": r"予約番号[:：]\s*(?P<id>\S+)"},
]


class Booking(Protocol):
    id: str
    start: dt.datetime
    end: dt.datetime
    name: str
    phone: str
    menu: str


def _sjis_to_jis(s1: int, s2: int) -> bytes:
    off = 0xB0 if s1 >= 0xE0 else 0x70
    if s2 >= 0x9F:
        return bytes(((s1 - off) * 2, s2 - 0x7E))
    return bytes(((s1 - off) * 2 - 1, s2 - (0x20 if s2 >= 0x80 else 0x1F)))


def iso2022jp(text: str) -> bytes:
    """CP50220: JIS X 0208 with the NEC rows (through CP932), half-width kana after ESC ( I."""
    data = text.encode("cp932", errors="replace")
    out, mode, i = bytearray(), "ascii", 0
    while i < len(data):
        b = data[i]
        want = "ascii" if b < 0x80 else "kana" if 0xA1 <= b <= 0xDF else "kanji"
        if want != mode:
            out += {"ascii": b"\x1b(B", "kana": b"\x1b(I", "kanji": b"\x1b$B"}[want]
            mode = want
        if want == "kanji":
            out += _sjis_to_jis(b, data[i + 1])
            i += 2
        else:
            out.append(b - 0x80 if want == "kana" else b)
            i += 1
    if mode != "ascii":
        out += b"\x1b(B"
    return bytes(out)


def render(kind: str, a: Booking, *, clinic: str = "さくら歯科", charset: str = "iso-2022-jp") -> bytes:
    """One booking mail of ``kind`` (booked, changed, cancelled) about ``a``."""
    start, end = a.start.astimezone(a.start.tzinfo), a.end.astimezone(a.start.tzinfo)
    when = f"{start:%Y/%m/%d} {start:%H:%M}〜{end:%H:%M}"
    lines = [f"{clinic} 様", "", "予約シミュレータからのお知らせです。", "", f"予約番号：{a.id}"]
    if kind != "cancelled":
        lines += [f"日時：{when}", f"お名前：{a.name} 様", f"電話番号：{a.phone}", f"メニュー：{a.menu}"]
    else:
        lines += [f"キャンセルされたご予約：{when}"]
    lines += ["", "※このメールは送信専用です。", "㈱予約シミュレータ"]
    text = "\r\n".join(lines) + "\r\n"
    encode = iso2022jp if charset == "iso-2022-jp" else (lambda s: s.encode(charset))
    subject = base64.b64encode(encode(SUBJECTS[kind])).decode()
    head = [
        f"From: {SENDER}",
        "To: clinic@example.jp",
        f"Subject: =?{charset.upper()}?B?{subject}?=",
        f"Date: {format_datetime(dt.datetime.now(dt.UTC))}",
        f"Message-ID: {make_msgid(domain='portal-simulator.example')}",
        "MIME-Version: 1.0",
        f"Content-Type: text/plain; charset={charset}",
        "Content-Transfer-Encoding: " + ("7bit" if charset == "iso-2022-jp" else "base64"),
    ]
    body = encode(text) if charset == "iso-2022-jp" else base64.encodebytes(encode(text))
    return "\r\n".join(head).encode() + b"\r\n\r\n" + body


class MaildirOutbox:
    """Delivers each mail into ``maildir`` (its ``new/``), as a local delivery agent does."""

    _names = itertools.count(1)

    def __init__(self, maildir: str | Path, *, charset: str = "iso-2022-jp") -> None:
        self.maildir = Path(maildir)
        self.charset = charset
        self.sent: list[tuple[str, str]] = []  # (kind, appointment id)

    def __call__(self, kind: str, appointment: Booking) -> None:
        raw = render(kind, appointment, charset=self.charset)
        name = f"{time.time():.6f}.{os.getpid()}_{next(self._names)}.portal-simulator"
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(raw)
        tmp.chmod(0o644)
        os.rename(tmp, self.maildir / "new" / name)
        self.sent.append((kind, appointment.id))
