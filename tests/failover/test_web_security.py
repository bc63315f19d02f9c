"""The app secret, preview and CSRF tokens, the rate limiter and the staff credential check."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr
from test_web_support import make_settings

from failover.settings import StaffAuth
from failover.web import preview_token
from failover.web.security import (
    Csrf,
    RateLimiter,
    SecretError,
    app_secret,
    client_bucket,
    preview_ok,
    secret_path,
    staff_authorized,
)


def test_the_secret_is_created_once_private_and_shared(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    key = app_secret(settings)
    assert len(key) == 32
    assert stat.S_IMODE(os.stat(secret_path(settings)).st_mode) == 0o600
    assert app_secret(settings) == key  # the service and the CLI agree
    assert preview_token(settings, "epark") == preview_token(make_settings(tmp_path), "epark")
    assert not list(tmp_path.glob("*.tmp"))


def test_a_damaged_secret_is_reported(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    secret_path(settings).write_bytes(b"short")
    with pytest.raises(SecretError, match="damaged: delete it"):
        app_secret(settings)


def test_an_unwritable_directory_is_reported(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "missing")
    with pytest.raises(SecretError, match="cannot create the web secret"):
        app_secret(settings)


def test_preview_tokens(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    key, token = app_secret(settings), preview_token(settings, "epark")
    assert preview_ok(key, "epark", token)
    assert not preview_ok(key, "other", token)
    assert not preview_ok(b"x" * 32, "epark", token)
    assert not preview_ok(key, "epark", token[:-1])
    assert not preview_ok(key, "epark", "")


def test_csrf_tokens() -> None:
    csrf = Csrf(b"k" * 32)
    cookie = csrf.new_cookie()
    assert Csrf.cookie_of({"pg_csrf": cookie}) == cookie
    assert Csrf.cookie_of({"pg_csrf": "short"}) is None
    assert Csrf.cookie_of({}) is None
    token = csrf.token(cookie)
    assert csrf.valid(cookie, token)
    assert not csrf.valid(csrf.new_cookie(), token)
    assert not csrf.valid(None, token)
    assert not csrf.valid(cookie, "")
    assert not Csrf(b"j" * 32).valid(cookie, token)  # another key (another installation)
    # A CSRF token is no preview token for a portal named like the cookie: the purposes differ.
    assert not preview_ok(b"k" * 32, cookie, token)


def test_rate_limiter_refills_evenly(clock) -> None:
    limiter = RateLimiter(6, clock)  # one every 10 s
    assert [limiter.allow("a") for _ in range(7)] == [True] * 6 + [False]
    assert limiter.exhausted("a") and not limiter.exhausted("b")
    clock.advance(9.9)
    assert not limiter.allow("a")
    clock.advance(0.2)
    assert limiter.allow("a")
    clock.advance(3600)
    assert [limiter.allow("a") for _ in range(7)] == [True] * 6 + [False]  # never more than the burst


def test_rate_limiter_memory_is_bounded(clock) -> None:
    limiter = RateLimiter(10, clock, max_clients=100)
    for i in range(1000):
        limiter.allow(f"10.0.{i // 256}.{i % 256}")
        clock.advance(0.01)
    assert len(limiter._buckets) <= 101


TOKEN, PASSWORD = "tok-0123456789abcdef", "pässword-0123456789"
BOTH = StaffAuth(token=SecretStr(TOKEN), username="staff", password=SecretStr(PASSWORD))
# A blank secret that slipped past the config check (model_construct skips validation).
BLANK = StaffAuth.model_construct(token=SecretStr(""), username="staff", password=SecretStr(""))
BLANK_USER = StaffAuth.model_construct(token=None, username="", password=SecretStr(""))


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("auth", "header", "ok"),
    [
        pytest.param(BOTH, f"Bearer {TOKEN}", True, id="bearer"),
        pytest.param(BOTH, f"bearer   {TOKEN} ", True, id="bearer-case-space"),
        pytest.param(BOTH, basic("staff", PASSWORD), True, id="basic-utf8"),
        pytest.param(BOTH, basic("staff", f"{PASSWORD}:x"), False, id="basic-extra"),
        pytest.param(BOTH, basic("Staff", PASSWORD), False, id="basic-user-case"),
        pytest.param(BOTH, "Bearer", False, id="bearer-empty"),
        pytest.param(BOTH, "Bearer ", False, id="bearer-blank"),
        pytest.param(BOTH, basic("staff", ""), False, id="basic-empty-password"),
        pytest.param(BOTH, None, False, id="none"),
        pytest.param(StaffAuth(token=SecretStr(TOKEN)), basic("staff", TOKEN), False, id="no-basic-configured"),
        pytest.param(
            StaffAuth(username="u", password=SecretStr(PASSWORD)), f"Bearer {PASSWORD}", False, id="no-token-configured"
        ),
        pytest.param(StaffAuth(), "Bearer ", False, id="nothing-configured"),
        pytest.param(BLANK, "Bearer ", False, id="blank-token-configured-bearer-blank"),
        pytest.param(BLANK, "Bearer", False, id="blank-token-configured-bearer-alone"),
        pytest.param(BLANK, basic("staff", ""), False, id="blank-password-configured"),
        pytest.param(BLANK_USER, basic("", ""), False, id="blank-user-and-password-configured"),
        pytest.param(BLANK_USER, "Basic Og==", False, id="basic-colon-only"),
    ],
)
def test_staff_authorized(auth: StaffAuth, header: str | None, ok: bool) -> None:
    assert staff_authorized(auth, header) is ok


def test_ipv6_clients_are_limited_per_network_not_per_address(clock) -> None:
    limiter = RateLimiter(3, clock)  # /64 by default
    same_64 = [f"2001:db8:1:2::{i:x}" for i in range(1, 300)]
    assert [limiter.allow(a) for a in same_64[:4]] == [True, True, True, False]
    assert not any(limiter.allow(a) for a in same_64[4:])
    assert limiter.allow("2001:db8:1:3::1")  # the next /64 is someone else
    assert limiter.exhausted("2001:db8:1:2:ffff::9")


@pytest.mark.parametrize(
    ("address", "prefix", "bucket"),
    [
        ("198.51.100.7", 64, "198.51.100.7"),
        ("::ffff:198.51.100.7", 64, "198.51.100.7"),
        ("2001:db8::1", 64, "2001:db8::/64"),
        ("2001:db8:0:0:8000::1", 56, "2001:db8::/56"),
        ("2001:db8::1", 128, "2001:db8::1/128"),
        ("unknown", 64, "unknown"),
    ],
)
def test_client_bucket(address: str, prefix: int, bucket: str) -> None:
    assert client_bucket(address, prefix) == bucket
