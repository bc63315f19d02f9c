"""``portalguard appointments mail-test`` on saved mails, and ``appointments sync`` / ``status`` with a
mail-only mirror against Dovecot on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from failover.cli import main
from failover.crypto import DataKey
from failover.fakes.dovecot import PASSWORD, Dovecot
from tests.mirror.mails import BOOKED_SUBJECT, SENDER, TEMPLATES, booking_body, build


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTALGUARD_DATA_KEY", DataKey.generate()[0])
    monkeypatch.setenv("MAIL_PASSWORD", PASSWORD)


def write_config(tmp_path: Path, imap: str) -> Path:
    doc: dict[str, Any] = {
        "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
        "store": str(tmp_path / "pg.db"),
        "data_key": "${PORTALGUARD_DATA_KEY}",
        "portals": {
            "sakura": {
                "endpoints": {"public": {"url": "http://127.0.0.1:9/c/1"}},
                "book_url": "http://127.0.0.1:9/c/1/book",
                "mirror": {"mail": {"imap": imap, "from": [SENDER], "templates": TEMPLATES}},
            }
        },
    }
    path = tmp_path / "portalguard.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["-c", str(config), *args])


def test_mail_test_prints_what_the_templates_read_and_fails_when_nothing_matched(tmp_path: Path, env: None) -> None:
    config = write_config(tmp_path, "imaps://clinic:${MAIL_PASSWORD}@127.0.0.1:9/INBOX")
    saved = tmp_path / "booked.eml"
    body = booking_body("R100", "2026/12/02 10:00〜10:30", "山田 太郎", menu="検診①")
    saved.write_bytes(build(BOOKED_SUBJECT, body, charset="iso-2022-jp", cte="7bit"))
    result = run(config, "appointments", "mail-test", "--portal", "sakura", str(saved))
    assert result.exit_code == 0, result.output
    for line in [
        f"from:     {SENDER}",
        f"subject:  {BOOKED_SUBJECT}",
        "template: #1 (kind: booked)",
        "  id: R100",
        "  name: 山田 太郎",
        "  menu: 検診①",
        "appointment: 2026-12-02 10:00 – 10:30",
        "ok: the mirror reads this mail",
    ]:
        assert line in result.output.splitlines(), result.output

    miss = tmp_path / "other.eml"
    miss.write_bytes(build("お問い合わせ", "こんにちは\n予約番号なし", charset="shift_jis", sender="x@other.example"))
    result = run(config, "appointments", "mail-test", "--portal", "sakura", str(miss))
    assert result.exit_code == 1
    assert "NOT in mirror.mail.from" in result.output
    assert "template: none — no template's subject matches" in result.output and "  | こんにちは" in result.output


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot()
    try:
        yield server.start()
    finally:
        server.remove()


@pytest.mark.imap
def test_sync_reads_the_mailbox_and_status_shows_its_last_read(tmp_path: Path, env: None, dovecot: Dovecot) -> None:
    url = dovecot.url().replace(PASSWORD, "${MAIL_PASSWORD}")
    config = write_config(tmp_path, url)
    dovecot.deliver(build(BOOKED_SUBJECT, booking_body("R1", "2026/12/02 10:00", "山田 太郎"), message_id="a"))
    dovecot.deliver(build("読めない 山田様", "本文", message_id="b"))
    result = run(config, "appointments", "sync")
    assert result.exit_code == 0, result.output
    assert "sakura: 2 new mail(s) read: 1 added; 1 unread (check the templates), 0 from other senders" in result.output
    status = run(config, "status")
    assert "mirror mailbox: last read" in status.output
    assert "(from booking e-mails only)" in status.output and "last synced never" not in status.output
    assert "1 mail(s) no template could read" in status.output
    assert "山田" not in status.output and PASSWORD not in status.output
    shown = run(config, "appointments", "2026-12-02")
    assert "山田 太郎" in shown.output
