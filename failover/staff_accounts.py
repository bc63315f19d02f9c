"""Staff passwords: the memory-hard hash (``hashlib.scrypt``), its check, the policy, the throttle.

Pure functions of their inputs (no store, no clock): the CLI and the staff login both use them.
A hash is one string ``scrypt$n$r$p$salt$key`` (salt and key in urlsafe base64), so the parameters
can grow later and old hashes still verify with the parameters they were made with.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
N, R, P = 2**14, 8, 1  # ~16 MiB per hash: memory-hard, still well under a second on a small box
KEY_BYTES = 32
SALT_BYTES = 16
MIN_LENGTH = 12
MAX_LENGTH = 1024  # a longer "password" is a denial of service on the KDF, not a password
FIRST_DELAY = 1.0  # seconds after the first wrong password; doubles with each one after
MAX_DELAY = 300.0  # the cap: a known account is slowed down, never locked out for good


class PasswordError(ValueError):
    """The password is refused; the message says what a good one looks like."""


def check_policy(password: str) -> None:
    """Raise ``PasswordError`` for a password too short or too long (the message never echoes it)."""
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"the password is too short: use at least {MIN_LENGTH} characters (a phrase works well)")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"the password is too long: use at most {MAX_LENGTH} characters")


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The encoded hash of ``password`` with a fresh random salt (``salt`` only for tests)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    key = _derive(password, salt, N, R, P)
    return "$".join((SCHEME, str(N), str(R), str(P), _b64(salt), _b64(key)))


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded``; compared in constant time. A malformed hash is
    simply no match (it is still hashed once, so the time does not tell it apart)."""
    parsed = _parse(encoded)
    if parsed is None or len(password) > MAX_LENGTH:
        dummy_verify(password)
        return False
    n, r, p, salt, key = parsed
    return hmac.compare_digest(_derive(password, salt, n, r, p), key)


# A fixed hash to check unknown names against: "no such account" costs the same time as a wrong password.
_DUMMY = "$".join((SCHEME, str(N), str(R), str(P), "A" * 22, "A" * 43))


def dummy_verify(password: str) -> None:
    """Spend the time of one verification, for a name that has no account (no timing oracle)."""
    salt = b"\0" * SALT_BYTES
    hmac.compare_digest(_derive(password[:MAX_LENGTH], salt, N, R, P), _DUMMY.encode())


def login_delay(failures: int) -> float:
    """Seconds to wait before the next try after ``failures`` wrong passwords in a row: 0, then
    1 s, 2 s, 4 s … capped at ``MAX_DELAY`` — slows guessing, but the right password after the
    wait always works, so nobody can lock a known account forever."""
    if failures <= 0:
        return 0.0
    return min(MAX_DELAY, FIRST_DELAY * 2 ** min(failures - 1, 32))


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    maxmem = 128 * r * (n + p + 2) + 1024 * 1024
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=KEY_BYTES)


def _parse(encoded: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        return None
    # Parameters out of any sane range would make one login cost minutes or gigabytes.
    if not (2 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16 and key):
        return None
    return n, r, p, salt, key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
