"""Who may log in to the staff pages, and the per-account login throttle.

Accounts come from the store (`portalguard staff add`) and, as one operator account, from the
config's ``staff.username``/``staff.password``. A wrong password makes that account wait
``login_delay(failures)`` (1 s, 2 s, 4 s … up to 5 min) before the next try is even checked;
the right one after the wait always gets in and resets the count, so nobody can lock a known
account for good. Unknown names cost one dummy hash, like a wrong password (no timing oracle).
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from failover.settings import StaffAuth
from failover.staff_accounts import dummy_verify, login_delay, verify_password
from failover.store import AsyncStore


@dataclass(frozen=True, slots=True)
class Staff:
    name: str
    role: str  # "operator" decides; "viewer" only sees

    @property
    def operator(self) -> bool:
        return self.role == "operator"


@dataclass(frozen=True, slots=True)
class Attempt:
    staff: Staff | None  # logged in, or None
    wait: float = 0.0  # > 0: not checked at all, try again in this many seconds


class StaffLogins:
    def __init__(self, auth: StaffAuth, store: AsyncStore, clock: Callable[[], float]) -> None:
        self.auth = auth
        self.store = store
        self.clock = clock
        self._config_throttle = (0, 0.0)  # the config account's (failures, next try): not in the store

    async def enabled(self) -> bool:
        """Some login exists: a config credential or an account in the store."""
        if self.auth.token is not None or self.auth.username is not None:
            return True
        return bool(await self.store.staff_accounts())

    async def log_in(self, name: str, password: str) -> Attempt:
        now = self.clock()
        if self._is_config_account(name):
            return self._config_log_in(password, now)
        account = await self.store.staff_account(name)
        if account is None:
            await asyncio.to_thread(dummy_verify, password)
            return Attempt(None)
        if now < account.next_login:
            return Attempt(None, account.next_login - now)
        if await asyncio.to_thread(verify_password, password, account.password):
            await self.store.record_staff_login(name, 0, 0.0)
            return Attempt(Staff(name, account.role))
        failures = account.failures + 1
        await self.store.record_staff_login(name, failures, now + login_delay(failures))
        return Attempt(None)

    async def current(self, name: str) -> Staff | None:
        """The account of a session, if it still exists (removed: the session ends), with its role now."""
        if self._is_config_account(name):
            return Staff(name, "operator")
        account = await self.store.staff_account(name)
        return Staff(name, account.role) if account is not None else None

    def _is_config_account(self, name: str) -> bool:
        return self.auth.username is not None and hmac.compare_digest(name.encode(), self.auth.username.encode())

    def _config_log_in(self, password: str, now: float) -> Attempt:
        assert self.auth.password is not None  # username and password go together (the config checks)
        failures, next_try = self._config_throttle
        if now < next_try:
            return Attempt(None, next_try - now)
        expected = self.auth.password.get_secret_value()
        if expected and hmac.compare_digest(password.encode(), expected.encode()):
            self._config_throttle = (0, 0.0)
            return Attempt(Staff(self.auth.username or "", "operator"))
        self._config_throttle = (failures + 1, now + login_delay(failures + 1))
        return Attempt(None)
