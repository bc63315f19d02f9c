"""Human durations: ``15s``, ``2m``, ``1h30m``, ``250ms`` and back."""

from __future__ import annotations

import pytest

from watchdog.duration import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15s", 15.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("7d", 7 * 86400.0),
        ("250ms", 0.25),
        ("1.5s", 1.5),
        ("0s", 0.0),
        ("1h30m", 5400.0),
        ("1d2h3m4s5ms", 86400 + 7200 + 180 + 4 + 0.005),
        ("1h 30m", 5400.0),
        ("  2m ", 120.0),
        ("90s", 90.0),
    ],
    ids=lambda v: repr(v) if isinstance(v, str) else None,
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["15", "", "   ", "s", "15x", "15 seconds", "1.s", ".5s", "-5s", "m15", "15S", "1h30", "15s!", "1,5s", "PT15S"],
    ids=lambda v: repr(v),
)
def test_parse_rejects_with_a_hint(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == f'"{text}" is not a duration (use 15s, 2m)'


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (1, "1s"),
        (59, "59s"),
        (60, "1m"),
        (90, "1m30s"),
        (3600, "1h"),
        (5400, "1h30m"),
        (86400, "1d"),
        (86401, "1d1s"),
        (90061, "1d1h1m1s"),
        (15.4, "15s"),
        (59.6, "1m"),
        (0.25, "250ms"),
        (0.001, "1ms"),
        (0.9996, "1s"),
        (0.0004, "0s"),
        (-5, "-5s"),
        (-90, "-1m30s"),
        (-0.5, "-500ms"),
    ],
    ids=lambda v: repr(v),
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0, 0.005, 0.5, 1, 15, 61, 3599, 3601, 86399, 7 * 86400 + 1])
def test_format_then_parse_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)
