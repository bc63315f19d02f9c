"""A raw mail into what the templates read: sender, subject, date and the body as text (pure).

MIME is the stdlib ``email`` package's (``policy.default``); only the character sets are decoded here,
because Japanese mail is not what the codecs expect:

- **ISO-2022-JP** as Japanese mailers write it is CP50220: JIS X 0208 plus the NEC special characters
  (①, Ⅰ, ㈱ in row 13) and the IBM extensions, which Python's ``iso2022_jp`` rejects. Each JIS
  character is turned into its Shift_JIS bytes and the whole decoded as **CP932**, where those
  characters are (half-width kana after ``ESC ( I`` or SO likewise).
- **Shift_JIS** is read as CP932 (its superset, as Windows and every Japanese mailer write it);
  **EUC-JP** as ``euc_jis_2004``-compatible ``euc_jp``; anything else by its own codec, and a charset
  nobody knows as UTF-8. Bytes that do not decode become U+FFFD: a mail is never refused for one.
- Headers are decoded the same way (RFC 2047 words are split by ``email.header``, then decoded here).
- The body is the first ``text/plain`` part that is no attachment; without one, the first
  ``text/html`` reduced to text (selectolax, one line per block).
"""

from __future__ import annotations

import codecs
import datetime as dt
import email
import hashlib
import re
from dataclasses import dataclass
from email import policy
from email.header import decode_header
from email.message import EmailMessage, Message
from email.utils import getaddresses, parsedate_to_datetime

ESC = 0x1B
SO, SI = 0x0E, 0x0F


@dataclass(frozen=True, slots=True)
class Mail:
    senders: tuple[str, ...]  # the From addresses, lower-cased
    subject: str
    date: dt.datetime | None  # the Date header (aware), None if missing or unreadable
    body: str  # text, lines separated by "\n"
    key: str  # what makes the mail one mail, across a re-read of its folder: a hash of its Message-ID (or bytes)


def iso2022jp_to_text(data: bytes) -> str:
    """ISO-2022-JP (CP50220/CP50221-compatible) decoded through CP932."""
    out = bytearray()
    mode = "ascii"  # ascii | kanji | kana
    shifted = False  # SO .. SI: half-width kana
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b == ESC and i + 2 < n:
            seq = data[i + 1 : i + 3]
            if seq in (b"$B", b"$@"):
                mode, i = "kanji", i + 3
                continue
            if seq in (b"(B", b"(J", b"(H"):
                mode, i = "ascii", i + 3
                continue
            if seq == b"(I":
                mode, i = "kana", i + 3
                continue
            if seq == b"&@" and data[i + 3 : i + 6] == b"\x1b$B":  # JIS X 0208-1990 announcer
                mode, i = "kanji", i + 6
                continue
            if data[i + 1 : i + 4] == b"$(D" or data[i + 1 : i + 4] == b"$(Q" or data[i + 1 : i + 4] == b"$(O":
                mode, i = "kanji", i + 4  # JIS X 0212 / 0213: read as 0208 (the best CP932 can do)
                continue
        if b == SO:
            shifted, i = True, i + 1
            continue
        if b == SI:
            shifted, i = False, i + 1
            continue
        if b in (0x0A, 0x0D):  # a line break ends a shift in every real mailer
            out.append(b)
            i += 1
            continue
        if shifted or mode == "kana":
            out.append(b | 0x80 if 0x21 <= b <= 0x5F else b)
            i += 1
        elif mode == "kanji" and 0x21 <= b <= 0x7E and i + 1 < n:
            out += _jis_to_sjis(b, data[i + 1])
            i += 2
        else:
            out.append(b)
            i += 1
    return out.decode("cp932", errors="replace")


def _jis_to_sjis(c1: int, c2: int) -> bytes:
    if c1 % 2:
        s2 = c2 + 0x1F
        if s2 >= 0x7F:
            s2 += 1
    else:
        s2 = c2 + 0x7E
    s1 = ((c1 + 1) >> 1) + 0x70
    if s1 >= 0xA0:
        s1 += 0x40
    return bytes((s1, s2))


_CHARSET_ALIASES = {
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "ms_kanji": "cp932",
    "cp932": "cp932",
    "euc-jp": "euc_jp",
    "x-euc-jp": "euc_jp",
}


def decode_text(data: bytes, charset: str | None) -> str:
    """``data`` in ``charset`` (a mail's own name for it) as text; never raises."""
    name = (charset or "").strip().strip('"').lower()
    if name.startswith("iso-2022-jp") or name in ("iso2022jp", "csiso2022jp", "cp50220", "cp50221", "cp50222"):
        return iso2022jp_to_text(data)
    if not name and b"\x1b$" in data:  # unlabelled JIS, as old mailers send it
        return iso2022jp_to_text(data)
    codec = _CHARSET_ALIASES.get(name, name or "utf-8")
    try:
        codecs.lookup(codec)
    except LookupError:
        codec = "utf-8"
    return data.decode(codec, errors="replace")


def decode_header_text(raw: str) -> str:
    """A header's raw value (RFC 2047 encoded words and all) as text."""
    parts: list[str] = []
    try:
        pieces = decode_header(raw)
    except Exception:  # a malformed encoded word: the raw text is better than nothing
        return " ".join(raw.split())
    for value, charset in pieces:
        if isinstance(value, bytes):
            parts.append(decode_text(value, charset) if charset else value.decode("ascii", errors="replace"))
        else:
            parts.append(value)
    text = "".join(parts)
    return " ".join(text.split())


def _raw_header(msg: Message, name: str) -> str | None:
    for key, value in msg.raw_items():
        if key.lower() == name:
            return str(value)
    return None


def html_to_text(html: str) -> str:
    """An HTML mail's text: one line per block (br, p, div, tr, li), scripts and styles dropped."""
    from selectolax.lexbor import LexborHTMLParser

    marked = _BLOCK_END.sub(lambda m: m.group(0) + "\n", _BR.sub("\n", html))
    tree = LexborHTMLParser(marked)
    for node in tree.css("script, style, head"):
        node.decompose()
    root = tree.body or tree.root
    if root is None:
        return ""
    text = root.text(separator="")
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


# A line break where the mail's HTML breaks lines: after <br> and after each block's end tag.
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_BLOCK_END = re.compile(r"</(?:p|div|tr|li|h[1-6]|table|blockquote)\s*>", re.IGNORECASE)


_NEWLINES = re.compile(r"\r\n?")


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return _NEWLINES.sub("\n", decode_text(payload, part.get_content_charset()))


def body_text(msg: Message) -> str:
    html: Message | None = None
    for part in msg.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        kind = part.get_content_type()
        if kind == "text/plain":
            return _part_text(part)
        if kind == "text/html" and html is None:
            html = part
    return html_to_text(_part_text(html)) if html is not None else ""


def parse_mail(raw: bytes) -> Mail:
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    sender_raw = _raw_header(msg, "from") or ""
    senders = tuple(addr.lower() for _, addr in getaddresses([decode_header_text(sender_raw)]) if addr)
    subject = decode_header_text(_raw_header(msg, "subject") or "")
    date: dt.datetime | None = None
    if (date_raw := _raw_header(msg, "date")) is not None:
        try:
            date = parsedate_to_datetime(date_raw.strip())
        except (TypeError, ValueError, IndexError):
            date = None
        if date is not None and date.tzinfo is None:
            date = date.replace(tzinfo=dt.UTC)
    message_id = (_raw_header(msg, "message-id") or "").strip()
    key = hashlib.sha256(message_id.encode() if message_id else raw).hexdigest()[:32]
    return Mail(senders, subject, date, body_text(msg), key)
