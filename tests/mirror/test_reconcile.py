"""``failover.mirror.reconcile``: one day's complete listing against what the mirror holds.

The property test plays a model portal (appointments added, changed, cancelled, deleted, moved to
another day) and syncs of some of its days, some failing, in any order, against an in-memory mirror
that applies each good listing as the store does (``held`` = the day's rows and the listed ids'
rows). After every sync:

- each day's non-vanished rows are exactly the portal's last good listing of that day, less the
  appointments a later good listing of another day showed (moved there);
- no row is ever deleted; a vanished row is cancelled;
- a failed or unsynced day's rows are unchanged, except those another day's listing claimed;
- the order in which one sync's days were applied does not matter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failover.mirror.model import DayListing, Listed, Mirrored
from failover.mirror.reconcile import reconcile

JST = ZoneInfo("Asia/Tokyo")
DAY0 = dt.date(2026, 11, 23)
DAYS = [DAY0 + dt.timedelta(days=k) for k in range(4)]
PORTAL, SOURCE = "epark", "admin_html"


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=JST)


def listed(aid: str, day: dt.date, hour: int = 10, **kw: object) -> Listed:
    return Listed(aid, at(day, hour), at(day, hour, 30), kw.pop("name", "山田 花子"), **kw)  # type: ignore[arg-type]


class Mirror:
    """The store's part, in memory: what ``Store.apply_mirror_day`` does with ``reconcile``."""

    def __init__(self) -> None:
        self.rows: dict[str, Mirrored] = {}

    def held(self, listing: DayListing) -> dict[str, Mirrored]:
        ids = {a.id for a in listing.appointments}
        return {k: r for k, r in self.rows.items() if r.day == listing.day or k in ids}

    def apply(self, listing: DayListing, now: float) -> None:
        result = reconcile(PORTAL, self.held(listing), listing, SOURCE, now)
        for row in result.upserts:
            self.rows[row.id] = row
        for aid in result.seen:
            self.rows[aid] = replace(self.rows[aid], synced_at=now)

    def booked(self, day: dt.date) -> dict[str, Mirrored]:
        return {k: r for k, r in self.rows.items() if r.day == day and r.vanished_at is None}


def content(row: Mirrored) -> tuple[object, ...]:
    return (row.day, row.start, row.end, row.name, row.phone, row.menu, row.status, row.cancelled)


def listing_content(day: dt.date, a: Listed) -> tuple[object, ...]:
    end = a.end.timestamp() if a.end else None
    return (day, a.start.timestamp(), end, a.name, a.phone, a.menu, a.status, a.cancelled)


# -- examples -------------------------------------------------------------------------------------


def test_a_first_listing_adds_every_row() -> None:
    listing = DayListing(DAYS[0], (listed("A", DAYS[0]), listed("B", DAYS[0], 11, phone="090-1111-2222")))
    result = reconcile(PORTAL, {}, listing, SOURCE, 100.0)
    assert result.changes.counts == (2, 0, 0) and result.seen == ()
    b = next(r for r in result.upserts if r.id == "B")
    assert (b.day, b.start, b.phone, b.first_seen, b.synced_at) == (
        DAYS[0],
        at(DAYS[0], 11).timestamp(),
        "090-1111-2222",
        100.0,
        100.0,
    )
    assert b.vanished_at is None and not b.cancelled and b.source == SOURCE


def test_unchanged_rows_are_only_seen_changed_ones_updated_cancelled_ones_counted() -> None:
    m = Mirror()
    m.apply(DayListing(DAYS[0], (listed("A", DAYS[0]), listed("B", DAYS[0]), listed("C", DAYS[0]))), 100.0)
    again = DayListing(
        DAYS[0],
        (listed("A", DAYS[0]), listed("B", DAYS[0], 14), listed("C", DAYS[0], status="キャンセル", cancelled=True)),
    )
    result = reconcile(PORTAL, m.held(again), again, SOURCE, 200.0)
    assert result.seen == ("A",)
    assert (result.changes.added, result.changes.updated, result.changes.cancelled) == ([], ["B"], ["C"])
    assert {r.id: r.first_seen for r in result.upserts} == {"B": 100.0, "C": 100.0}


def test_a_row_no_longer_listed_vanishes_once_and_is_kept_a_relisted_one_comes_back() -> None:
    m = Mirror()
    m.apply(DayListing(DAYS[0], (listed("A", DAYS[0]), listed("B", DAYS[0]))), 100.0)
    only_a = DayListing(DAYS[0], (listed("A", DAYS[0]),))
    result = reconcile(PORTAL, m.held(only_a), only_a, SOURCE, 200.0)
    assert result.changes.cancelled == ["B"]
    m.apply(only_a, 200.0)
    assert m.rows["B"].cancelled and m.rows["B"].vanished_at == 200.0 and m.rows["B"].synced_at == 200.0
    # Gone still: nothing to write for it, and its vanishing keeps its first time.
    assert [r.id for r in reconcile(PORTAL, m.held(only_a), only_a, SOURCE, 300.0).upserts] == []
    both = DayListing(DAYS[0], (listed("A", DAYS[0]), listed("B", DAYS[0])))
    result = reconcile(PORTAL, m.held(both), both, SOURCE, 400.0)
    assert result.changes.updated == ["B"]
    (b,) = result.upserts
    assert not b.cancelled and b.vanished_at is None and b.first_seen == 100.0


def test_a_row_cancelled_on_the_portal_then_gone_is_not_counted_as_cancelled_twice() -> None:
    m = Mirror()
    m.apply(DayListing(DAYS[0], (listed("A", DAYS[0], cancelled=True, status="キャンセル"),)), 100.0)
    empty = DayListing(DAYS[0], ())
    result = reconcile(PORTAL, m.held(empty), empty, SOURCE, 200.0)
    assert (result.changes.cancelled, result.changes.updated) == ([], ["A"])
    assert result.upserts[0].vanished_at == 200.0


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_a_move_to_another_day_ends_on_that_day_whichever_day_is_synced_first(order: tuple[int, int]) -> None:
    m = Mirror()
    m.apply(DayListing(DAYS[0], (listed("A", DAYS[0]), listed("B", DAYS[0]))), 100.0)
    listings = [DayListing(DAYS[0], (listed("B", DAYS[0]),)), DayListing(DAYS[1], (listed("A", DAYS[1], 15),))]
    for i in order:
        m.apply(listings[i], 200.0)
    a = m.rows["A"]
    assert (a.day, a.start, a.cancelled, a.vanished_at, a.first_seen) == (
        DAYS[1],
        at(DAYS[1], 15).timestamp(),
        False,
        None,
        100.0,
    )
    assert set(m.booked(DAYS[0])) == {"B"} and set(m.booked(DAYS[1])) == {"A"}


def test_a_move_whose_old_day_failed_to_sync_leaves_the_old_day_alone() -> None:
    m = Mirror()
    m.apply(DayListing(DAYS[0], (listed("A", DAYS[0]), listed("B", DAYS[0]))), 100.0)
    m.apply(DayListing(DAYS[1], (listed("A", DAYS[1]),)), 200.0)  # day 0's listing failed this time
    assert m.rows["A"].day == DAYS[1] and m.rows["B"].synced_at == 100.0


def test_a_naive_time_is_refused() -> None:
    naive = Listed("A", dt.datetime(2026, 11, 23, 10), None, "x")
    with pytest.raises(ValueError, match="appointment A: its start time has no time zone"):
        reconcile(PORTAL, {}, DayListing(DAYS[0], (naive,)), SOURCE, 1.0)


def test_an_id_listed_twice_counts_once_the_last_wins() -> None:
    listing = DayListing(DAYS[0], (listed("A", DAYS[0], 9), listed("A", DAYS[0], 11)))
    result = reconcile(PORTAL, {}, listing, SOURCE, 1.0)
    assert result.changes.added == ["A"] and [r.start for r in result.upserts] == [at(DAYS[0], 11).timestamp()]


# -- the property -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Appt:
    day: dt.date
    hour: int
    name: str
    phone: str = ""
    menu: str = ""
    cancelled: bool = False

    def listed(self, aid: str) -> Listed:
        status = "キャンセル" if self.cancelled else "予約確定"
        return Listed(
            aid,
            at(self.day, self.hour),
            at(self.day, self.hour, 45),
            self.name,
            self.phone,
            self.menu,
            status,
            self.cancelled,
        )


def listing_of(portal: Mapping[str, Appt], day: dt.date) -> DayListing:
    return DayListing(day, tuple(a.listed(k) for k, a in sorted(portal.items()) if a.day == day))


day_index = st.integers(0, len(DAYS) - 1)
pick = st.integers(0, 10_000)  # an existing appointment, modulo how many there are
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), day_index, st.integers(9, 18), st.sampled_from(["山田", "佐藤", "鈴木"])),
        st.tuples(st.just("change"), pick, st.sampled_from(["hour", "name", "phone", "menu"]), st.integers(0, 3)),
        st.tuples(st.just("cancel"), pick),
        st.tuples(st.just("delete"), pick),
        st.tuples(st.just("move"), pick, day_index, st.integers(9, 18)),
        st.tuples(
            st.just("sync"),
            st.permutations(range(len(DAYS))).flatmap(
                lambda order: st.lists(st.booleans(), min_size=len(DAYS), max_size=len(DAYS)).map(
                    lambda oks: [(DAYS[i], ok) for i, ok in zip(order, oks, strict=True)]
                )
            ),
            st.integers(0, len(DAYS)),  # how many of the days (in that order) this sync covers
        ),
    ),
    min_size=1,
    max_size=40,
)


def _mutate(portal: dict[str, Appt], op: tuple, counter: list[int]) -> None:  # type: ignore[type-arg]
    kind = op[0]
    if kind == "add":
        counter[0] += 1
        portal[f"R{counter[0]}"] = Appt(DAYS[op[1]], op[2], op[3])
        return
    if not portal:
        return
    aid = sorted(portal)[op[1] % len(portal)]
    a = portal[aid]
    if kind == "change":
        field, v = op[2], op[3]
        portal[aid] = replace(a, **{field: 9 + v if field == "hour" else f"{field}-{v}"})
    elif kind == "cancel":
        portal[aid] = replace(a, cancelled=True)
    elif kind == "delete":
        del portal[aid]
    elif kind == "move":
        portal[aid] = replace(a, day=DAYS[op[2]], hour=op[3])


@settings(max_examples=200, deadline=None)
@given(operations)
def test_the_mirror_follows_the_portal_s_last_good_listings(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    portal: dict[str, Appt] = {}
    mirror = Mirror()
    last_good: dict[dt.date, tuple[int, DayListing]] = {}
    counter = [0]
    for n, op in enumerate(ops, start=1):
        if op[0] != "sync":
            _mutate(portal, op, counter)
            continue
        now = float(n)
        covered = op[1][: op[2]]
        good = [listing_of(portal, day) for day, ok in covered if ok]
        before = dict(mirror.rows)
        claimed = {a.id for lst in good for a in lst.appointments}

        for listing in good:
            mirror.apply(listing, now)
        for listing in good:
            last_good[listing.day] = (n, listing)

        # The same listings in the reverse order: the same mirror.
        other = Mirror()
        other.rows = dict(before)
        for listing in reversed(good):
            other.apply(listing, now)
        assert other.rows == mirror.rows

        # Nothing is deleted; what vanished is cancelled.
        assert set(before) <= set(mirror.rows)
        assert all(r.cancelled for r in mirror.rows.values() if r.vanished_at is not None)

        # A day not (well) synced keeps its rows, but for those another day's listing claimed.
        good_days = {lst.day for lst in good}
        for aid, row in before.items():
            if row.day not in good_days and aid not in claimed:
                assert mirror.rows[aid] == row

        # Each day shows its last good listing, less what a later good listing showed elsewhere.
        for day, (when, listing) in last_good.items():
            later = {a.id for d, (w, lst) in last_good.items() if d != day and w > when for a in lst.appointments}
            expected = {a.id: listing_content(day, a) for a in listing.appointments if a.id not in later}
            assert {k: content(r) for k, r in mirror.booked(day).items()} == expected, day
        for day in good_days:  # exactly the portal as listed now
            expected = {a.id: listing_content(day, a) for a in listing_of(portal, day).appointments}
            assert {k: content(r) for k, r in mirror.booked(day).items()} == expected
