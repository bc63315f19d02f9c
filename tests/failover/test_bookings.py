"""Booking requests told to staff in batches (failover/staff/bookings.py): the requests of a minute
make one message with their count, a flood pages staff at most once a minute per portal, and a
request stored but not yet told (a crash) is told after the restart. The clock is a fake one."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from test_web_support import PORTAL, make_web, submit, valid_form

from failover.fakes.receivers import JsonReceiver
from failover.staff import StaffAlerts, StaffDirectory, Target
from failover.staff.bookings import BookingAnnouncer, batch_claim
from failover.store import AsyncStore
from failover.store_url import is_database_url
from tests.failover.notify_support import deliver_all

if TYPE_CHECKING:  # importing tests.conftest at run time would load it twice (and its loopback guard)
    from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio
PATIENT = {"name": "山田 花子", "phone": "090-1234-5678", "reason": "歯が痛い"}


def directory(url: str = "json://127.0.0.1:9/staff", language: str = "ja") -> StaffDirectory:
    target = Target("staff", 0, url, language, 5.0)
    return StaffDirectory(
        actions={"staff": (target,)},
        portals={PORTAL: ("staff",), "other": ("staff",)},
        clinic="さくら歯科",
        timezone="Asia/Tokyo",
        staff_url="https://book.example.jp/staff",
        public_url=None,
    )


@pytest.fixture
async def store(store_location: str, clock: FakeClock):  # type: ignore[no-untyped-def]
    s = AsyncStore(store_location, clock)  # a SQLite file, then a PostgreSQL database
    yield s
    await s.close()


def announcer(store: AsyncStore, clock: FakeClock, **kw: str) -> BookingAnnouncer:
    return BookingAnnouncer(StaffAlerts(directory(**kw), store, clock), store, clock)


async def post(store: AsyncStore, bookings: BookingAnnouncer, portal: str = PORTAL, **data: object) -> int:
    number = await store.add_request(portal, {**PATIENT, **data})
    await bookings.arrived(portal, number)
    return number


def messages(store: AsyncStore) -> list[tuple[str, str]]:
    return [(r.title, r.body) for r in store.sync.outbox()]


async def test_seven_requests_within_a_minute_make_one_message_with_seven(store: AsyncStore, clock: FakeClock) -> None:
    bookings = announcer(store, clock)
    numbers = []
    for _ in range(7):
        numbers.append(await post(store, bookings))
        assert await bookings.flush_due() == 0  # the minute is not over
        clock.advance(8)  # the 7th arrives 48 s after the 1st
    clock.advance(60 - 7 * 8)
    assert await bookings.flush_due() == 1
    assert await bookings.flush_due() == 0
    [(title, body)] = messages(store)
    assert title == f"【予約依頼】新しい予約リクエストが7件あります（{PORTAL}）"
    assert "受付番号：" + "、".join(f"No.{n}" for n in numbers) in body
    assert "https://book.example.jp/staff" in body
    assert "山田" not in title + body and "090" not in title + body and "歯が痛い" not in body


async def test_a_request_61_s_later_makes_a_second_message(store: AsyncStore, clock: FakeClock) -> None:
    bookings = announcer(store, clock)
    first = await post(store, bookings)
    clock.advance(60)
    assert await bookings.flush_due() == 1
    clock.advance(1)
    second = await post(store, bookings)  # 61 s after the first
    assert await bookings.flush_due() == 0
    clock.advance(59.9)
    assert await bookings.flush_due() == 0
    clock.advance(0.1)
    assert await bookings.flush_due() == 1
    bodies = [body for _, body in messages(store)]
    assert len(bodies) == 2
    assert f"No.{first}" in bodies[0] and f"No.{second}" not in bodies[0]
    assert "1件" in messages(store)[1][0] and f"No.{second}" in bodies[1]


async def test_a_flood_pages_staff_at_most_once_a_minute_per_portal_and_counts_everything(
    store: AsyncStore, clock: FakeClock
) -> None:
    bookings = announcer(store, clock)
    start = clock()
    for i in range(300):  # 300 requests over 150 s, the outbox's pass every second between them
        await post(store, bookings)
        if i % 2:
            clock.advance(1)
            await bookings.flush_due()
    await post(store, bookings, portal="other")  # another portal's request has its own minute
    for _ in range(120):
        clock.advance(1)
        await bookings.flush_due()
    rows = store.sync.outbox()
    ours = [r for r in rows if r.portal == PORTAL]
    assert len(ours) == 3  # at 60, 120 and 180 s, not 300 messages
    assert [r.created - start for r in ours] == [60, 120, 180]
    counts = [int(re.search(r"(\d+)件", r.title).group(1)) for r in ours]  # type: ignore[union-attr]
    assert sum(counts) == 300 and counts[0] == 120
    assert "No.1 … No.120" in ours[0].body  # a long batch names its first and last number
    assert [r.title for r in rows if r.portal == "other"] == ["【予約依頼】新しい予約リクエストが1件あります（other）"]


async def test_a_request_stored_but_not_told_before_a_crash_is_told_after_the_restart(
    store: AsyncStore, clock: FakeClock
) -> None:
    before = announcer(store, clock)
    told = await post(store, before)
    clock.advance(60)
    assert await before.flush_due() == 1
    lost = await post(store, before)  # stored and confirmed; then kill -9: the memory is gone

    after = announcer(store, clock)  # the restarted service
    assert await after.sweep() == 1  # at start: the one never queued, not the one already told
    clock.advance(30)
    assert await after.flush_due() == 0  # its minute counts from when it was stored
    clock.advance(30)
    assert await after.flush_due() == 1
    assert await after.sweep() == 0
    assert [f"No.{told}" in b for _, b in messages(store)] == [True, False]
    assert f"No.{lost}" in messages(store)[1][1]


async def test_a_crash_between_queueing_a_batch_and_marking_its_requests_queues_it_once(
    store: AsyncStore, clock: FakeClock
) -> None:
    bookings = announcer(store, clock)
    numbers = [await post(store, bookings) for _ in range(2)]
    # The batch's message was queued, then the process died before each request's claim was taken.
    await bookings.staff.enqueue(batch_claim(numbers), "booking_request", PORTAL, count=2, numbers=numbers)
    clock.advance(60)
    after = announcer(store, clock)
    assert await after.sweep() == 2
    await after.flush_due()
    assert len(messages(store)) == 1  # the same batch: its claim refuses a second message
    assert await announcer(store, clock).sweep() == 0  # and its requests are marked told now


async def test_drill_requests_get_their_own_message_marked_as_a_drill(store: AsyncStore, clock: FakeClock) -> None:
    bookings = announcer(store, clock, language="en")
    await post(store, bookings)
    await post(store, bookings, drill=True)
    clock.advance(60)
    assert await bookings.flush_due() == 2
    titles = sorted(title for title, _ in messages(store))
    assert titles == [
        f"[Booking requests] 1 new booking request ({PORTAL})",
        f"[訓練/DRILL] [Booking requests] 1 new booking request ({PORTAL})",
    ]


async def test_at_shutdown_the_waiting_requests_are_queued_at_once(store: AsyncStore, clock: FakeClock) -> None:
    bookings = announcer(store, clock)
    await post(store, bookings)
    await post(store, bookings)
    assert await bookings.flush_due(everything=True) == 1
    assert "2件" in messages(store)[0][0]


async def test_the_web_app_posting_several_requests_pages_staff_once_with_the_count(
    tmp_path: Path, store_location: str, clock: FakeClock
) -> None:
    async with JsonReceiver() as receiver:
        announcers: list[BookingAnnouncer] = []

        async def notify(portal: str, number: int) -> None:  # what the service hands the web app
            await announcers[0].arrived(portal, number)

        where: dict[str, object] = {"store": store_location}
        if is_database_url(store_location):
            where["server"] = {"secret_file": str(tmp_path / "web.key")}
        web = make_web(tmp_path, clock, notify=notify, **where)
        staff = StaffAlerts(directory(receiver.url("/staff", scheme="json")), web.store, clock)
        bookings = BookingAnnouncer(staff, web.store, clock)
        announcers.append(bookings)
        web.store.sync.set_page(PORTAL, True)
        async with web.client() as c:
            for _ in range(4):
                assert (await submit(c, valid_form())).status_code == 200
                clock.advance(5)
        await asyncio.gather(*web.app.state.announcements)
        assert bookings.waiting() == 4 and not receiver.requests
        clock.advance(60)
        await bookings.flush_due()
        await deliver_all(staff)
        [message] = [r.json() for r in await receiver.wait_for(1)]
        assert message["title"] == f"【予約依頼】新しい予約リクエストが4件あります（{PORTAL}）"
        assert "No.1、No.2、No.3、No.4" in message["message"]
        assert "山田" not in str(message) and "090" not in str(message)
        staff.close()
        await web.store.close()


async def test_messages_name_the_portal_by_its_name_and_link_it_by_its_id(store: AsyncStore, clock: FakeClock) -> None:
    from dataclasses import replace

    alerts = StaffAlerts(replace(directory(), names={PORTAL: "EPARK 渋谷"}), store, clock)
    await alerts.enqueue("c1", "reminder", PORTAL, since=clock() - 3600)
    ((title, body),) = messages(store)
    assert "EPARK 渋谷" in title and "「EPARK 渋谷」" in body
    assert f"/staff/decide/{PORTAL}" in body, "links take the id"


async def test_requests_another_leader_told_meanwhile_are_not_told_again(store: AsyncStore, clock: FakeClock) -> None:
    # Several instances: site A holds two requests waiting, loses the lease; site B's sweep tells both
    # (and a third); A leads again and flushes what it held: nothing is told twice.
    a, b = announcer(store, clock), announcer(store, clock)
    first, second = await post(store, a), await post(store, a)
    third = await store.add_request(PORTAL, PATIENT)
    assert await b.sweep() == 3
    clock.advance(60)
    assert await b.flush_due() == 1
    assert await a.flush_due() == 0 and a.waiting() == 0
    [(_, body)] = messages(store)
    assert all(f"No.{n}" in body for n in (first, second, third))
