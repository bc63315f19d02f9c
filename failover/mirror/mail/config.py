"""``portals.P.mirror.mail``: the clinic's mailbox, who may send booking mails, and the templates.

Everything is checked here, at config time: the mailbox URL (its password is a secret: no message
shows it), the senders, and each template's regular expressions, compiled once (a bad one is an error
naming its key).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from pydantic import AfterValidator, Field, PrivateAttr, SecretStr, field_validator

from watchdog.config_types import Duration, StrictModel, at_least

MAIL_KINDS = ("booked", "changed", "cancelled")
FIELDS = ("id", "date", "time", "name", "phone", "menu")  # the named groups a body may have


@dataclass(frozen=True, slots=True)
class ImapUrl:
    tls: bool  # imaps:// (TLS from the start); imap:// is plain, upgraded with STARTTLS when offered
    host: str
    port: int
    user: str
    password: str
    folder: str

    @property
    def where(self) -> str:
        """What logs and errors may say: scheme, host, port and folder (no user, no password)."""
        return f"{'imaps' if self.tls else 'imap'}://{self.host}:{self.port}/{self.folder}"


def parse_imap_url(text: str) -> ImapUrl:
    """``imaps://USER:PASSWORD@HOST[:PORT][/FOLDER]`` (USER and PASSWORD %-encoded: ``%40`` for @).

    Raises ``ValueError`` whose message never repeats the URL (it holds the password)."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("imap", "imaps"):
        raise ValueError(
            "must be imaps://USER:PASSWORD@HOST:993/FOLDER (or imap:// for plain IMAP with STARTTLS when offered)"
        )
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has a port that is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError("names no host (imaps://USER:PASSWORD@HOST:993/INBOX)")
    if not parts.username or parts.password is None:
        raise ValueError(
            "needs the mailbox's user and password: imaps://USER:${MAIL_PASSWORD}@HOST:993/INBOX "
            "(an @ in the user is written %40)"
        )
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return ImapUrl(
        tls=parts.scheme == "imaps",
        host=parts.hostname,
        port=port or (993 if parts.scheme == "imaps" else 143),
        user=unquote(parts.username),
        password=unquote(parts.password),
        folder=folder,
    )


def _valid_imap_url(value: SecretStr) -> SecretStr:
    parse_imap_url(value.get_secret_value())
    return value


def _compile(pattern: str, what: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as err:
        raise ValueError(f"is not a regular expression ({err.msg} at position {err.pos}); {what}") from None


class MailTemplate(StrictModel):
    kind: Literal["booked", "changed", "cancelled"] = Field(description="What a mail of this template says.")
    subject: str = Field(min_length=1, description="A regular expression searched in the decoded subject.")
    body: str = Field(
        min_length=1,
        description="A regular expression searched in the body text, with named groups: id (required), "
        "date, time, name, phone, menu.",
    )
    _subject: re.Pattern[str] = PrivateAttr()
    _body: re.Pattern[str] = PrivateAttr()

    @field_validator("subject")
    @classmethod
    def _subject_compiles(cls, value: str) -> str:
        _compile(value, "the first template whose subject matches decides the kind")
        return value

    @field_validator("body")
    @classmethod
    def _body_compiles(cls, value: str) -> str:
        pattern = _compile(value, "named groups read the fields: (?P<id>\\S+)")
        groups = set(pattern.groupindex)
        if "id" not in groups:
            raise ValueError("needs the named group id, the portal's reservation number: (?P<id>\\S+)")
        unknown = sorted(groups - set(FIELDS))
        if unknown:
            raise ValueError(f"has unknown named group(s) {', '.join(unknown)} (use {', '.join(FIELDS)})")
        return value

    def model_post_init(self, context: object) -> None:
        self._subject = re.compile(self.subject)
        self._body = re.compile(self.body)

    @property
    def subject_re(self) -> re.Pattern[str]:
        return self._subject

    @property
    def body_re(self) -> re.Pattern[str]:
        return self._body


def _addresses(values: list[str]) -> list[str]:
    out = []
    for value in values:
        address = value.strip().lower()
        if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", address):
            raise ValueError(f'"{value}" is not a mail address (write the sender as yoyaku@portal.example.jp)')
        out.append(address)
    return out


class MailSource(StrictModel):
    imap: Annotated[SecretStr, AfterValidator(_valid_imap_url)] = Field(
        description="imaps://USER:${MAIL_PASSWORD}@HOST:993/FOLDER (imap:// is plain IMAP, STARTTLS when offered)."
    )
    every: Annotated[Duration, at_least(10.0, "each check logs into the mailbox")] = Field(
        60.0, description="Polling interval when the server offers no IDLE (IDLE is used when offered)."
    )
    senders: Annotated[list[str], AfterValidator(_addresses)] = Field(
        alias="from", min_length=1, description="Only mails from these addresses are read."
    )
    templates: list[MailTemplate] = Field(
        min_length=1, description="The first whose subject matches decides the kind of a mail."
    )
    ca_file: str | None = Field(None, description="A CA bundle for a mail server with a private certificate.")

    @property
    def url(self) -> ImapUrl:
        return parse_imap_url(self.imap.get_secret_value())
