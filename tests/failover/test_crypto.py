"""Patient fields sealed at rest (``failover.crypto``): what is sealed opens only with its key, in its
place, unchanged; every failure says why without the key, the plaintext or the ciphertext."""

from __future__ import annotations

import base64

import pytest

from failover.crypto import (
    KEY_PREFIX,
    TOKEN_PREFIX,
    DataKey,
    KeyMismatch,
    SealError,
    context,
    is_sealed,
    key_problem,
    sealed_key_id,
)

NAME = "山田 花子"
WHERE = context("appointments", "name", "epark", "R-1001")


@pytest.fixture
def key() -> DataKey:
    return DataKey.generate()[1]


def test_round_trip(key: DataKey) -> None:
    token = key.seal(NAME, WHERE)
    assert token.startswith(f"{TOKEN_PREFIX}{key.key_id}:") and is_sealed(token)
    assert NAME not in token and "山田" not in token
    assert key.open(token, WHERE) == NAME
    assert key.open(key.seal("", WHERE), WHERE) == ""


def test_a_key_survives_its_text() -> None:
    text, key = DataKey.generate()
    again = DataKey.from_text(text)
    assert again.key_id == key.key_id
    assert again.open(key.seal(NAME, WHERE), WHERE) == NAME
    assert DataKey.from_text(f"  {text}\n").key_id == key.key_id  # an env file's stray whitespace


def test_every_value_has_its_own_nonce(key: DataKey) -> None:
    tokens = [key.seal(NAME, WHERE) for _ in range(500)]
    assert len(set(tokens)) == 500
    nonces = {base64.urlsafe_b64decode(t.rsplit(":", 1)[1] + "==")[:12] for t in tokens}
    assert len(nonces) == 500


@pytest.mark.parametrize("position", [0, 5, 20, -3, -1])
def test_a_changed_byte_does_not_open(key: DataKey, position: int) -> None:
    token = key.seal(NAME, WHERE)
    head, body = token.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[position] ^= 0x01
    tampered = head + ":" + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(SealError, match="integrity check"):
        key.open(tampered, WHERE)


def test_a_truncated_or_garbled_value_is_a_clear_error(key: DataKey) -> None:
    token = key.seal(NAME, WHERE)
    with pytest.raises(SealError, match="damaged"):
        key.open(token[:30], WHERE)
    with pytest.raises(SealError, match="not sealed"):
        key.open(NAME, WHERE)


@pytest.mark.parametrize(
    "elsewhere",
    [
        context("appointments", "phone", "epark", "R-1001"),  # another column of the same row
        context("appointments", "name", "epark", "R-1002"),  # the same column of another row
        context("appointments", "name", "ebisu", "R-1001"),  # another portal's row of that id
        context("booking_requests", "data", "1"),  # another table
    ],
)
def test_a_value_moved_to_another_row_or_column_does_not_open(key: DataKey, elsewhere: str) -> None:
    with pytest.raises(SealError, match="moved from another row or column"):
        key.open(key.seal(NAME, WHERE), elsewhere)


def test_contexts_cannot_be_confused_by_separators() -> None:
    assert context("t", "c", "a:b", "c") != context("t", "c", "a", "b:c")
    assert context("t", "c", "a,b") != context("t", "c", "a", "b")


def test_a_wrong_key_names_both_key_ids_and_nothing_else() -> None:
    text_a, a = DataKey.generate()
    text_b, b = DataKey.generate()
    token = a.seal(NAME, WHERE)
    with pytest.raises(KeyMismatch) as info:
        b.open(token, WHERE)
    message = str(info.value)
    assert message == (
        f"the store's patient data was sealed with key {a.key_id}; set the data_key it was written with "
        f"(the data_key given is key {b.key_id})"
    )
    for secret in (text_a, text_b, text_a[len(KEY_PREFIX) :], token, NAME):
        assert secret not in message
    assert sealed_key_id(token) == a.key_id and sealed_key_id(NAME) is None


def test_the_key_id_is_a_fingerprint_not_the_key() -> None:
    text, key = DataKey.generate()
    assert len(key.key_id) == 8 and key.key_id not in text
    assert repr(key) == f"DataKey(key id {key.key_id})" and text not in repr(key)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("correct-horse-battery-staple", "it starts with pgk1:"),
        ("pgk1:" + "A" * 22, "16 bytes, not 32"),
        ("pgk1:" + "A" * 60, "45 bytes, not 32"),
        ("pgk1:***", "not base64"),
    ],
)
def test_a_key_of_the_wrong_form_is_refused_without_quoting_it(text: str, problem: str) -> None:
    found = key_problem(text)
    assert found is not None and problem in found and "portalguard keygen" in found
    with pytest.raises(SealError) as info:
        DataKey.from_text(text)
    assert text not in str(info.value) and "data_key" in str(info.value)
    assert key_problem(DataKey.generate()[0]) is None
