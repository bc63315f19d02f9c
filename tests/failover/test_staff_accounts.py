"""Staff password hashing, verification, policy and the login delay."""

from __future__ import annotations

import pytest

from failover.staff_accounts import (
    MAX_DELAY,
    PasswordError,
    check_policy,
    dummy_verify,
    hash_password,
    login_delay,
    verify_password,
)


def test_a_hash_verifies_its_password_only() -> None:
    encoded = hash_password("correct horse battery")
    assert encoded.startswith("scrypt$16384$8$1$")
    assert "correct" not in encoded
    assert verify_password("correct horse battery", encoded)
    assert not verify_password("correct horse batterY", encoded)


def test_each_hash_has_its_own_salt() -> None:
    assert hash_password("correct horse battery") != hash_password("correct horse battery")


def test_the_parameters_are_read_from_the_hash() -> None:
    # A hash made with other (cheaper) parameters still verifies: they can change without a reset.
    import failover.staff_accounts as accounts

    encoded = hash_password("correct horse battery").replace("scrypt$16384$", "scrypt$1024$", 1)
    assert not verify_password("correct horse battery", encoded)  # other n: another key
    key = accounts._derive("correct horse battery", b"s" * 16, 1024, 8, 1)
    cheap = f"scrypt$1024$8$1${accounts._b64(b's' * 16)}${accounts._b64(key)}"
    assert verify_password("correct horse battery", cheap)


@pytest.mark.parametrize("broken", ["", "plain", "scrypt$x$8$1$AA$AA", "scrypt$16384$8$1$AA$", "bcrypt$1$2$3$4$5"])
def test_a_malformed_hash_is_no_match(broken: str) -> None:
    assert not verify_password("correct horse battery", broken)


def test_dummy_verify_spends_a_hash() -> None:
    dummy_verify("anything at all")  # runs the KDF once; no exception, no result


def test_policy_says_what_a_good_password_is_without_echoing_it() -> None:
    with pytest.raises(PasswordError, match="at least 12 characters") as err:
        check_policy("short-pw")
    assert "short-pw" not in str(err.value)
    with pytest.raises(PasswordError, match="at most 1024"):
        check_policy("x" * 1025)
    check_policy("twelve chars")


def test_the_login_delay_doubles_and_caps() -> None:
    assert [login_delay(n) for n in range(5)] == [0.0, 1.0, 2.0, 4.0, 8.0]
    assert login_delay(9) == 256.0 and login_delay(10) == MAX_DELAY == login_delay(10_000)
