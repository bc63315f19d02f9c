"""The staff accounts table: add once per name, read back, change, throttle state, remove."""

from __future__ import annotations

from pathlib import Path

import pytest

from failover.store import Store, StoreError


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_an_account_is_added_once_and_read_back(tmp_path: Path) -> None:
    clock = Clock()
    with_store = Store(tmp_path / "s.db", clock)
    try:
        assert with_store.add_staff_account("aiko", "operator", "scrypt$x")
        assert not with_store.add_staff_account("aiko", "viewer", "scrypt$y")  # the name is taken
        account = with_store.staff_account("aiko")
        assert account is not None
        assert (account.role, account.password, account.created) == ("operator", "scrypt$x", 1_000.0)
        assert with_store.staff_account("nobody") is None
    finally:
        with_store.close()


def test_password_change_lifts_the_throttle_and_remove_deletes(tmp_path: Path) -> None:
    clock = Clock()
    store = Store(tmp_path / "s.db", clock)
    try:
        store.add_staff_account("ben", "viewer", "h1")
        store.add_staff_account("aiko", "viewer", "h0")
        assert store.record_staff_login("ben", 3, 2_000.0)
        assert store.staff_account("ben").failures == 3  # type: ignore[union-attr]
        clock.now = 1_500.0
        assert store.set_staff_password("ben", "h2")
        ben = store.staff_account("ben")
        assert ben is not None and (ben.password, ben.failures, ben.next_login, ben.updated) == ("h2", 0, 0.0, 1_500.0)
        assert store.set_staff_role("ben", "operator")
        assert [a.name for a in store.staff_accounts()] == ["aiko", "ben"]
        assert store.remove_staff_account("ben") and not store.remove_staff_account("ben")
        assert not store.set_staff_password("ben", "h3")
    finally:
        store.close()


def test_an_unknown_role_is_refused_in_words(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    try:
        with pytest.raises(StoreError, match="unknown staff role 'admin' \\(use operator, viewer\\)"):
            store.add_staff_account("c", "admin", "h")
    finally:
        store.close()
