"""The mail source against a real IMAP server: Debian's Dovecot on 127.0.0.1 with a temporary Maildir
(``failover/fakes/dovecot.py``), a real store with a data key. A mail "arrives" by a local delivery into
``Maildir/new`` (or by real SMTP into it); while portalguard watches in IDLE it is in the mirror
within seconds.

Dovecot missing is a failure, never a skip: CI installs it (``make deps-debian``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import imaplib
import smtplib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry

from failover.crypto import DataKey
from failover.fakes.dovecot import PASSWORD, USER, Dovecot
from failover.fakes.receivers import SmtpReceiver
from failover.fakes.selfsigned import self_signed
from failover.metrics import MirrorMetrics
from failover.mirror.mail.config import MailSource
from failover.mirror.mail.imap import Mailbox
from failover.mirror.mail.watch import MailJob, MailWatch
from failover.mirror.model import DayListing, Listed, MailFailure
from failover.store import AsyncStore
from tests.mirror.mails import (
    BOOKED_SUBJECT,
    CANCELLED_SUBJECT,
    SENDER,
    TEMPLATES,
    booking_body,
    build,
)

pytestmark = [pytest.mark.anyio, pytest.mark.imap]

TZ = ZoneInfo("Asia/Tokyo")
DAY = dt.date(2026, 12, 2)
NAMES = ["山田 太郎", "佐藤 花子", "鈴木 一郎", "高橋 ①子", "田中 ㈱", "伊藤 ｶﾅ"]
ENCODINGS = [
    ("iso-2022-jp", "7bit"),
    ("iso-2022-jp", "base64"),
    ("shift_jis", "base64"),
    ("shift_jis", "quoted-printable"),
    ("utf-8", "quoted-printable"),
    ("utf-8", "base64"),
]


def booked(n: int, *, charset: str = "utf-8", cte: str = "base64", hour: int = 10) -> bytes:
    body = booking_body(f"M{n}", f"2026/12/02 {hour}:00〜{hour}:30", NAMES[n % len(NAMES)], phone=f"090-1111-{n:04d}")
    return build(BOOKED_SUBJECT, body, charset=charset, cte=cte, message_id=f"m{n}")


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot()
    try:
        yield server.start()
    finally:
        server.remove()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncStore]:
    _, key = DataKey.generate()
    s = AsyncStore(tmp_path / "pg.db", data_key=key)
    yield s
    await s.close()


def source(url: str, **overrides: Any) -> MailSource:
    return MailSource.model_validate({"imap": url, "from": [SENDER], "templates": TEMPLATES, **overrides})


def watch(server: Dovecot, store: Any, metrics: MirrorMetrics | None = None, **kw: Any) -> MailWatch:
    cfg = source(server.url(), **kw)
    return MailWatch({"sakura": MailJob("sakura", cfg)}, store, TZ, time.time, metrics)


async def day_ids(store: AsyncStore) -> dict[str, str]:
    rows = await store.appointments("sakura", DAY, DAY + dt.timedelta(days=2))
    return {a.id: ("cancelled" if a.cancelled else "booked") for a in rows}


def flags(server: Dovecot) -> list[bytes]:
    conn = imaplib.IMAP4("127.0.0.1", server.port)
    conn.login(USER, PASSWORD)
    conn.select("INBOX", readonly=True)
    _, data = conn.fetch("1:*", "(FLAGS)")
    conn.logout()
    return [d for d in data if d]


async def test_mails_in_every_encoding_reach_the_mirror_once_and_the_mailbox_is_left_as_it_was(
    dovecot: Dovecot, store: AsyncStore
) -> None:
    metrics = MirrorMetrics(CollectorRegistry())
    for n, (charset, cte) in enumerate(ENCODINGS):
        dovecot.deliver(booked(n, charset=charset, cte=cte, hour=9 + n))
    dovecot.deliver(build(BOOKED_SUBJECT, booking_body("X1", "2026/12/02 10:00", "他人"), sender="news@shop.example"))
    dovecot.deliver(build("【さくら予約】お知らせ 山田様", "メンテナンスのお知らせ", message_id="miss"))
    dovecot.deliver(build(CANCELLED_SUBJECT, "予約番号：M1\n", message_id="cancel-m1", charset="iso-2022-jp"))
    before = sorted(p.name for p in dovecot.files())

    w = watch(dovecot, store, metrics)
    report = await w.check("sakura")
    assert (report.mails, report.unread, report.ignored) == (9, 1, 1)
    assert report.outcomes == {"added": 6, "cancelled": 1}
    rows = {a.id: a for a in await store.appointments("sakura", DAY, DAY)}
    assert sorted(rows) == [f"M{n}" for n in range(6)]
    assert [rows[f"M{n}"].name for n in range(6)] == NAMES
    assert rows["M0"].menu == "検診①" and rows["M0"].source == "mail" and rows["M0"].mail_at is not None
    assert rows["M1"].cancelled and not rows["M2"].cancelled
    unread = await store.unread_mails("sakura")
    assert [(m.subject, m.reason) for _, m in unread] == [("【さくら予約】お知らせ 山田様", "template")]
    assert metrics.mail_unparsed.labels("sakura")._value.get() == 1
    assert metrics.mail_ignored.labels("sakura")._value.get() == 1
    assert metrics.mail_last_success.labels("sakura")._value.get() > 0

    # Read-only: no \Seen, nothing moved or deleted (Dovecot may only move new/ to cur/).
    assert all(b"\\Seen" not in f for f in flags(dovecot)) and len(flags(dovecot)) == 9
    assert sorted(p.name.split(":")[0] for p in dovecot.files()) == before

    again = await w.check("sakura")
    assert again.mails == 0
    state = await store.mail_state("sakura")
    assert state is not None and state.last_uid == 9 and state.unread == 1 and state.last_error is None


async def test_a_changed_uidvalidity_reads_the_folder_again_without_duplicates(
    dovecot: Dovecot, store: AsyncStore
) -> None:
    metrics = MirrorMetrics(CollectorRegistry())
    for n in range(3):
        dovecot.deliver(booked(n))
    dovecot.deliver(build("読めない件名", "本文", message_id="miss"))
    w = watch(dovecot, store, metrics)
    assert (await w.check("sakura")).mails == 4
    first = await store.mail_state("sakura")
    assert first is not None

    # The server renumbers the folder: its UID list and indexes are gone, a new UIDVALIDITY is made.
    dovecot.stop()
    for path in dovecot.maildir.iterdir():
        if path.name.startswith("dovecot"):
            path.unlink()
    await asyncio.sleep(1.1)  # Dovecot's UIDVALIDITY is the time it is made
    dovecot.start()
    report = await w.check("sakura")
    second = await store.mail_state("sakura")
    assert second is not None and second.uidvalidity != first.uidvalidity
    assert report.mails == 4 and report.outcomes == {"unchanged": 3} and report.unread == 0
    assert await day_ids(store) == {"M0": "booked", "M1": "booked", "M2": "booked"}
    assert len(await store.unread_mails("sakura")) == 1
    assert metrics.mail_unparsed.labels("sakura")._value.get() == 1


class CrashingStore:
    """The store, failing every write of mail ``crash_at`` (a crash there: nothing of it committed)."""

    def __init__(self, store: AsyncStore, crash_at: int | None) -> None:
        self.store, self.crash_at = store, crash_at
        self.committed: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def apply_mail(self, portal: str, folder: str, uidvalidity: int, uid: int, effect: Any, now: float) -> Any:
        if uid == self.crash_at:
            raise OSError("disk I/O error")
        applied = await self.store.apply_mail(portal, folder, uidvalidity, uid, effect, now)
        self.committed.append(uid)
        return applied


async def test_a_restart_in_the_middle_of_a_batch_processes_nothing_twice_and_skips_nothing(
    dovecot: Dovecot, store: AsyncStore
) -> None:
    for n in range(5):
        dovecot.deliver(booked(n))
    crashing = CrashingStore(store, crash_at=3)
    with pytest.raises(MailFailure) as failed:
        await watch(dovecot, crashing).check("sakura")
    assert failed.value.kind == "store" and not failed.value.permanent
    state = await store.mail_state("sakura")
    assert state is not None and state.last_uid == 2 and state.last_error_kind == "store"

    restarted = CrashingStore(store, crash_at=None)  # a new process: a new watcher, the same store
    report = await watch(dovecot, restarted).check("sakura")
    assert crashing.committed + restarted.committed == [1, 2, 3, 4, 5]
    assert report.outcomes == {"added": 3}
    assert sorted(await day_ids(store)) == ["M0", "M1", "M2", "M3", "M4"]


class Watched(Mailbox):
    idles: ClassVar[list[float]] = []

    def idle(self, wait: float, stop: Any) -> bool:
        Watched.idles.append(wait)
        return super().idle(wait, stop)


def smtp_send(port: int, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.sendmail(SENDER, ["clinic@clinic.test"], raw)


async def test_idle_a_booking_mail_is_in_the_mirror_within_five_seconds(dovecot: Dovecot, store: AsyncStore) -> None:
    dovecot.deliver(booked(0))
    cfg = source(dovecot.url(), every="1h")  # no polling to help: only IDLE can bring the mail in time
    w = MailWatch({"sakura": MailJob("sakura", cfg)}, store, TZ, time.time, mailbox=Watched)
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop))
    try:
        while "M0" not in await day_ids(store) or not Watched.idles:  # noqa: ASYNC110 (the store has no event)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        # The portal's mail server delivers by SMTP into the clinic's mailbox while we are in IDLE.
        async with SmtpReceiver(deliver=dovecot.deliver) as mx:
            sent = time.monotonic()
            await asyncio.to_thread(smtp_send, mx.port, booked(1, charset="iso-2022-jp", cte="7bit"))
            assert len(mx.messages) == 1
        while "M1" not in await day_ids(store):
            assert time.monotonic() - sent < 5.0, "the mail did not reach the mirror within 5 s"
            await asyncio.sleep(0.05)
        dovecot.deliver(build(CANCELLED_SUBJECT, "予約番号：M1\n", message_id="c1"))
        while (await day_ids(store))["M1"] != "cancelled":
            assert time.monotonic() - sent < 10.0
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_a_mail_booked_after_the_last_admin_listing_survives_until_a_newer_listing(
    dovecot: Dovecot, store: AsyncStore
) -> None:
    start = dt.datetime(2026, 12, 2, 10, 0, tzinfo=TZ)
    listed = DayListing(DAY, (Listed("A1", start, None, "管理 太郎"),))
    before = time.time() - 60
    await store.apply_mirror_day("sakura", listed, "admin_html", before)  # the last sync, a minute ago
    dovecot.deliver(booked(0))
    await watch(dovecot, store).check("sakura")
    # A listing read before the mail arrived (a sync that began before it) does not vanish it...
    await store.apply_mirror_day("sakura", listed, "admin_html", before + 1)
    assert await day_ids(store) == {"A1": "booked", "M0": "booked"}
    # ...a complete listing read after it does: the portal no longer has it.
    await store.apply_mirror_day("sakura", listed, "admin_html", time.time() + 1)
    assert await day_ids(store) == {"A1": "booked", "M0": "cancelled"}
    # And an old mail read again (a re-read folder) does not undo the newer listing.
    state = await store.mail_state("sakura")
    assert state is not None
    await store.open_mail_folder("sakura", "INBOX", (state.uidvalidity or 0) + 1)
    assert (await watch(dovecot, store).check("sakura")).outcomes == {"superseded": 1}
    assert await day_ids(store) == {"A1": "booked", "M0": "cancelled"}


async def test_a_certificate_that_does_not_verify_is_a_permanent_error_naming_the_host(
    tmp_path: Path, store: AsyncStore
) -> None:
    cert = self_signed("imap.test")
    server = Dovecot(cert_pem=cert.cert_pem, key_pem=cert.key_pem)
    try:
        server.start()
        server.deliver(booked(0))
        for url in (server.url(tls=True), server.url()):  # imaps://, and imap:// with STARTTLS
            w = MailWatch({"sakura": MailJob("sakura", source(url))}, store, TZ, time.time)
            with pytest.raises(MailFailure) as failed:
                await w.check("sakura")
            assert failed.value.kind == "tls" and failed.value.permanent
            assert "127.0.0.1" in str(failed.value) and PASSWORD not in str(failed.value)
            assert USER not in str(failed.value)
            await w.run()  # the loop gives up at once on a permanent error: no retry storm
            assert w.permanent["sakura"].kind == "tls"
        (tmp_path / "ca.pem").write_bytes(cert.cert_pem)
        trusted = source(server.url(tls=True), ca_file=str(tmp_path / "ca.pem"))
        w = MailWatch({"sakura": MailJob("sakura", trusted)}, store, TZ, time.time)
        assert (await w.check("sakura")).outcomes == {"added": 1}
        state = await store.mail_state("sakura")
        assert state is not None and state.last_error_kind is None
    finally:
        server.remove()


async def test_a_refused_login_is_permanent_and_a_dead_server_is_retried_without_the_password_anywhere(
    dovecot: Dovecot, store: AsyncStore, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-password-0123"
    w = MailWatch({"sakura": MailJob("sakura", source(dovecot.url(password=wrong)))}, store, TZ, time.time)
    with pytest.raises(MailFailure) as failed:
        await w.check("sakura")
    assert failed.value.kind == "login" and failed.value.permanent and wrong not in str(failed.value)

    url = dovecot.url()
    dovecot.stop()
    w = watch(dovecot, store)
    with pytest.raises(MailFailure) as dead:
        await w.check("sakura")
    assert dead.value.kind == "connect" and not dead.value.permanent
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop))
    await asyncio.sleep(2.5)  # 1 s, then 2 s: two or three attempts
    dovecot.start()
    dovecot.deliver(booked(0))
    deadline = time.monotonic() + 10
    while "M0" not in await day_ids(store):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(task, 5)
    state = await store.mail_state("sakura")
    assert state is not None and state.last_error is None
    assert PASSWORD not in caplog.text and wrong not in caplog.text and url not in caplog.text
    assert "山田" not in caplog.text


async def test_the_simulators_booking_mails_reach_the_mirror(dovecot: Dovecot, store: AsyncStore) -> None:
    from failover.fakes.portal_simulator import PortalSimulator

    sim = PortalSimulator()  # not started: only its book and its mails are used
    outbox = sim.send_mails(str(dovecot.maildir))
    sim.book.add("2026-12-02T10:00", "山田 ①太郎", phone="090-0000-1234", menu="検診", id="S1")
    sim.book.add("2026-12-02T11:00", "佐藤 花子", id="S2")
    sim.book.change("S2", start="2026-12-03T15:00")
    sim.book.cancel("S1")
    assert outbox.sent == [("booked", "S1"), ("booked", "S2"), ("changed", "S2"), ("cancelled", "S1")]
    cfg = MailSource.model_validate(sim.mail_config(dovecot.url()))
    report = await MailWatch({"sakura": MailJob("sakura", cfg)}, store, TZ, time.time).check("sakura")
    assert report.unread == 0 and report.mails == 4
    rows = {a.id: a for a in await store.appointments("sakura", DAY, DAY + dt.timedelta(days=1))}
    assert rows["S1"].cancelled and rows["S1"].name == "山田 ①太郎" and rows["S1"].phone == "090-0000-1234"
    assert rows["S2"].day == DAY + dt.timedelta(days=1) and not rows["S2"].cancelled
