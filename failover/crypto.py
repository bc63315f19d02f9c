"""Patient fields sealed at rest: AES-256-GCM with the config's ``data_key`` (rank 0, no I/O).

- A key is written ``pgk1:`` + URL-safe base64 of 32 random bytes (``portalguard keygen``); its *key
  id* is a short fingerprint (an HMAC of a fixed text under the key: it tells keys apart and reveals
  nothing of the key).
- A sealed value is a text ``pg1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>``: the version prefix
  tells sealed values from plaintext ones (a booking request stored before a key was set), the key
  id makes a wrong key a clear error instead of a failed tag.
- Every value gets a fresh random 96-bit nonce, and the *context* (table, column and row identity,
  built with ``context()``) is the associated data: a ciphertext copied to another row or column
  fails to open, as does any changed byte.
- Errors (``SealError``) never contain the key, the plaintext or the ciphertext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os

KEY_PREFIX = "pgk1:"
TOKEN_PREFIX = "pg1:"
KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ID_CHARS = 8
_AAD_HEAD = b"portalguard sealed value v1\x00"
KEYGEN_HINT = "run `portalguard keygen` for a new one"


class SealError(Exception):
    """A sealed value cannot be opened, or a key cannot be used; the message says why (never data)."""


class KeyMismatch(SealError):
    """The value was sealed with another key (its key id differs)."""

    def __init__(self, sealed_with: str, given: str) -> None:
        super().__init__(
            f"the store's patient data was sealed with key {sealed_with}; set the data_key it was written "
            f"with (the data_key given is key {given})"
        )
        self.sealed_with, self.given = sealed_with, given


def _b64decode(text: str) -> bytes:
    # validate: any character outside the alphabet is an error (the default would skip it silently)
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def key_problem(text: str) -> str | None:
    """What is wrong with a key's text (for the config's error message), or None. Never quotes it."""
    text = text.strip()
    if not text.startswith(KEY_PREFIX):
        return f"is not a portalguard data key (it starts with {KEY_PREFIX}); {KEYGEN_HINT}"
    body = text[len(KEY_PREFIX) :]
    try:
        raw = _b64decode(body)
    except (binascii.Error, ValueError):
        return f"is not a portalguard data key (not base64 after {KEY_PREFIX}); {KEYGEN_HINT}"
    if len(raw) != KEY_BYTES:
        return f"is not a portalguard data key ({len(raw)} bytes, not {KEY_BYTES}); {KEYGEN_HINT}"
    return None


def context(table: str, column: str, *row: object) -> str:
    """The associated data binding a value to where it is stored: its table, column and row key."""
    return json.dumps([table, column, *(str(part) for part in row)], ensure_ascii=False, separators=(",", ":"))


def is_sealed(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX)


def sealed_key_id(token: str) -> str | None:
    """The key id a sealed value names, or None for plaintext."""
    if not is_sealed(token):
        return None
    kid, sep, _ = token[len(TOKEN_PREFIX) :].partition(":")
    return kid if sep else None


class DataKey:
    """The key patient fields are sealed with. ``repr`` shows the key id only."""

    __slots__ = ("_aead", "key_id")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != KEY_BYTES:
            raise SealError(f"a data key is {KEY_BYTES} bytes; {KEYGEN_HINT}")
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # loaded when a key is used

        self._aead = AESGCM(raw)
        self.key_id = hmac.new(raw, b"portalguard key id", hashlib.sha256).hexdigest()[:KEY_ID_CHARS]

    @classmethod
    def from_text(cls, text: str) -> DataKey:
        """A key as ``keygen`` prints it; ``SealError`` (without the text) if it is not one."""
        problem = key_problem(text)
        if problem is not None:
            raise SealError(f"data_key {problem}")
        return cls(_b64decode(text.strip()[len(KEY_PREFIX) :]))

    @classmethod
    def generate(cls) -> tuple[str, DataKey]:
        """A new random key: its text (for the env file) and the key."""
        raw = os.urandom(KEY_BYTES)
        return KEY_PREFIX + _b64encode(raw), cls(raw)

    def __repr__(self) -> str:
        return f"DataKey(key id {self.key_id})"

    def seal(self, text: str, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, text.encode("utf-8"), _AAD_HEAD + context.encode("utf-8"))
        return f"{TOKEN_PREFIX}{self.key_id}:{_b64encode(nonce + sealed)}"

    def open(self, token: str, context: str) -> str:
        """The text ``seal(text, context)`` sealed; ``SealError`` if it was sealed with another key,
        for another place (context), or changed."""
        kid = sealed_key_id(token)
        if kid is None:
            raise SealError("the value is not sealed (no pg1: prefix)")
        if kid != self.key_id:
            raise KeyMismatch(kid, self.key_id)
        from cryptography.exceptions import InvalidTag

        body = token[len(TOKEN_PREFIX) + len(kid) + 1 :]
        try:
            raw = _b64decode(body)
        except (binascii.Error, ValueError):
            raise SealError("a sealed value is damaged (not base64)") from None
        if len(raw) < NONCE_BYTES + 16:
            raise SealError("a sealed value is damaged (too short)")
        try:
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _AAD_HEAD + context.encode("utf-8"))
        except InvalidTag:
            raise SealError(
                "a sealed value failed its integrity check: it was changed, or moved from another row or column"
            ) from None
        return plain.decode("utf-8")
