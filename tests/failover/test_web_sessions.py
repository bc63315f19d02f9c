"""The staff session cookie: signed, idle timeout, flags."""

from __future__ import annotations

from failover.web.sessions import Session, clear_header, cookie_header, decode, encode

KEY = b"k" * 32
HOUR = 3600.0


def test_a_session_round_trips_and_expires_when_idle() -> None:
    value = encode(KEY, Session("aiko", "operator", 100.0, 100.0))
    assert decode(KEY, value, 100.0 + 8 * HOUR, 8 * HOUR) == Session("aiko", "operator", 100.0, 100.0)
    assert decode(KEY, value, 101.0 + 8 * HOUR, 8 * HOUR) is None
    assert "aiko" not in value.split(".")[1]


def test_a_forged_or_foreign_cookie_is_no_session() -> None:
    value = encode(KEY, Session("ben", "viewer", 0.0, 0.0))
    body, mac = value.split(".")
    forged = encode(b"x" * 32, Session("ben", "operator", 0.0, 0.0))
    assert decode(KEY, forged, 0.0, HOUR) is None
    assert decode(KEY, f"{forged.split('.')[0]}.{mac}", 0.0, HOUR) is None
    for junk in (None, "", "a.b", "nodot", f"{body}.{mac}.x", "x" * 2000):
        assert decode(KEY, junk, 0.0, HOUR) is None


def test_a_clock_stepped_back_gives_no_extra_idle_time() -> None:
    value = encode(KEY, Session("aiko", "viewer", 0.0, 10 * HOUR))
    assert decode(KEY, value, 9 * HOUR, HOUR) is not None  # seen "in the future": counts as now


def test_the_cookie_flags() -> None:
    assert cookie_header("v", True, 8 * HOUR) == "pg_staff=v; Path=/; Max-Age=28800; HttpOnly; SameSite=Strict; Secure"
    assert "Secure" not in cookie_header("v", False, HOUR)
    assert clear_header(False) == "pg_staff=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
