"""The steady clock: wall time that a clock step does not move, slewed back toward the wall."""

from __future__ import annotations

import itertools
import logging

import pytest

from watchdog.clock import SteadyClock, steady_at, wall_at


class Sources:
    def __init__(self) -> None:
        self.wall_at = 1_800_000_000.0
        self.mono_at = 500.0

    def wall(self) -> float:
        return self.wall_at

    def mono(self) -> float:
        return self.mono_at

    def advance(self, seconds: float) -> None:
        self.wall_at += seconds
        self.mono_at += seconds


@pytest.fixture
def src() -> Sources:
    return Sources()


def test_it_starts_at_wall_time_and_advances_with_it(src: Sources) -> None:
    clock = SteadyClock(src.wall, src.mono)
    assert clock() == pytest.approx(1_800_000_000.0)
    src.advance(30)
    assert clock() == pytest.approx(1_800_000_030.0)


@pytest.mark.parametrize("step", [3600.0, -3600.0], ids=["forward-1h", "backward-1h"])
def test_a_wall_clock_step_does_not_move_durations(src: Sources, step: float) -> None:
    clock = SteadyClock(src.wall, src.mono)
    start = clock()
    src.advance(10)
    src.wall_at += step  # NTP steps the system clock
    src.advance(20)
    # 30 s passed; a 1-hour step changes that by at most the slew (1 % of the 30 s).
    assert clock() - start == pytest.approx(30.0, abs=0.3 + 1e-6)


def test_it_never_goes_backwards_and_converges_on_the_wall_clock(src: Sources) -> None:
    clock = SteadyClock(src.wall, src.mono)
    src.wall_at -= 3600
    readings = []
    for _ in range(400):
        src.advance(1000)
        readings.append(clock())
    assert all(b > a for a, b in itertools.pairwise(readings))
    assert readings[-1] == pytest.approx(src.wall_at, abs=1e-6)  # 3600 s absorbed at 10 s per 1000 s


def test_a_step_is_logged_once_not_every_reading(src: Sources, caplog: pytest.LogCaptureFixture) -> None:
    clock = SteadyClock(src.wall, src.mono)
    src.wall_at += 3600
    with caplog.at_level(logging.WARNING, logger="portalguard.clock"):
        for _ in range(50):
            src.advance(1)
            clock()
    steps = [r for r in caplog.records if "differs" in r.getMessage()]
    assert len(steps) == 1 and "+3600s" in steps[0].getMessage()


@pytest.mark.parametrize("step", [3600.0, -3600.0], ids=["forward-1h", "backward-1h"])
@pytest.mark.parametrize("later", [0.0, 600.0, 7200.0, 500_000.0], ids=["now", "10min", "2h", "after-the-slew"])
def test_steady_at_predicts_the_reading_at_a_wall_time_and_wall_at_inverts_it(
    src: Sources, step: float, later: float
) -> None:
    clock = SteadyClock(src.wall, src.mono)
    src.wall_at += step
    src.advance(1)
    wall_now, steady_now = src.wall(), clock()
    predicted = steady_at(wall_now + later, wall_now, steady_now)
    assert wall_at(predicted, wall_now, steady_now) == pytest.approx(wall_now + later, abs=1e-6)
    src.advance(later)  # no further step: the steady clock slews toward the wall clock meanwhile
    assert clock() == pytest.approx(predicted, abs=1e-3)


def test_with_no_gap_the_conversions_are_the_identity() -> None:
    for ts in (1_799_999_000.0, 1_800_000_000.0, 1_800_090_000.0):
        assert steady_at(ts, 1_800_000_000.0, 1_800_000_000.0) == ts
        assert wall_at(ts, 1_800_000_000.0, 1_800_000_000.0) == ts
