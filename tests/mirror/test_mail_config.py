"""``portals.P.mirror.mail`` through the config loader: alone or beside a source, regexes compiled
at config time with errors naming the key, and the mailbox password in no message."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from failover.mirror.mail.config import MailSource
from failover.settings.loader import ConfigError
from tests.mirror.mails import SENDER, TEMPLATES
from tests.mirror.test_mirror_config import HTML, config, load, write

PASSWORD = "very-secret-mailbox-pw"
MAIL = {
    "imap": "imaps://clinic%40example.jp:${MAIL_PASSWORD}@imap.example.jp:993/INBOX",
    "from": [SENDER],
    "templates": TEMPLATES,
}
ENV = {"MAIL_PASSWORD": PASSWORD}


def errors(tmp_path: Path, data: dict[str, Any]) -> list[str]:
    path = write(tmp_path, data)
    with contextlib.chdir(tmp_path), pytest.raises(ConfigError) as info:  # messages show the path as given
        load(Path(path.name), environ=ENV)
    return [m.removeprefix("portalguard.yaml: ") for m in info.value.messages]


def mail(**changes: Any) -> dict[str, Any]:
    return {**MAIL, **changes}


def test_mail_alone_or_beside_the_admin_screen(tmp_path: Path) -> None:
    alone = load(write(tmp_path, config({"mail": MAIL}, admin=False)), environ=ENV).portals["sakura"].mirror
    assert alone is not None and alone.source is None and isinstance(alone.mail, MailSource)
    url = alone.mail.url
    assert (url.tls, url.host, url.port, url.user, url.password, url.folder) == (
        True, "imap.example.jp", 993, "clinic@example.jp", PASSWORD, "INBOX"
    )  # fmt: skip
    assert url.where == "imaps://imap.example.jp:993/INBOX"
    assert (alone.mail.every, alone.mail.senders) == (60.0, [SENDER])
    both = load(write(tmp_path, config({"source": HTML, "mail": MAIL})), environ=ENV).portals["sakura"].mirror
    assert both is not None and both.source is not None and both.mail is not None


def test_a_mirror_needs_a_source_or_mail(tmp_path: Path) -> None:
    assert errors(tmp_path, config({"every": "10m"})) == [
        "portals.sakura.mirror: needs a source: (the admin screen: admin_html, admin_csv or ics) or mail: "
        "(the portal's booking mails), or both"
    ]


def test_bad_templates_are_config_errors_naming_the_key(tmp_path: Path) -> None:
    bad = [
        {"kind": "booked", "subject": "ご予約(", "body": r"(?P<id>\S+)"},
        {"kind": "cancelled", "subject": "キャンセル", "body": r"予約番号：\S+"},
        {"kind": "changed", "subject": "変更", "body": r"(?P<id>\S+) (?P<patient>\S+)"},
        {"kind": "moved", "subject": "x", "body": r"(?P<id>\S+)"},
    ]
    found = errors(tmp_path, config({"mail": mail(templates=bad)}, admin=False))
    base = "portals.sakura.mirror.mail.templates"
    assert found[0].startswith(f"{base}.0.subject: is not a regular expression (missing ), unterminated subpattern")
    assert found[1] == rf"{base}.1.body: needs the named group id, the portal's reservation number: (?P<id>\S+)"
    assert found[2] == f"{base}.2.body: has unknown named group(s) patient (use id, date, time, name, phone, menu)"
    assert found[3].startswith(f"{base}.3.kind:")


def test_the_mailbox_url_is_checked_and_its_password_never_shown(tmp_path: Path) -> None:
    for url, message in [
        (f"https://u:{PASSWORD}@imap.example.jp/", "must be imaps://USER:PASSWORD@HOST:993/FOLDER"),
        (f"imaps://imap.example.jp:{PASSWORD}/", "has a port that is not a number"),
        ("imaps://imap.example.jp/INBOX", "needs the mailbox's user and password"),
    ]:
        found = errors(tmp_path, config({"mail": mail(imap=url)}, admin=False))
        assert len(found) == 1 and found[0].startswith("portals.sakura.mirror.mail.imap: " + message), found
        assert PASSWORD not in found[0]
    found = errors(tmp_path, config({"mail": mail(**{"from": ["not an address"]})}, admin=False))
    assert found == [
        'portals.sakura.mirror.mail.from: "not an address" is not a mail address '
        "(write the sender as yoyaku@portal.example.jp)"
    ]
