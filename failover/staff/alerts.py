"""Telling staff: renders a message (``failover.staff.messages``) and delivers it through Apprise to the
URLs of the notify actions, exactly once per claim key, and records that it did.

Exactly once, across restarts: with ``claim=K`` the store row ``K`` is claimed *before* the first
attempt, so a crash mid-send never re-sends. A target whose delivery is known to have failed is
remembered (claim ``K|target!n``), and sending again with the same ``K`` retries that target only,
each retry claimed first (``K|target@n+1``). So the caller retries by simply calling ``send``
again after an ActionError, and no target ever gets the same message twice.

Apprise URLs carry tokens: they are never logged, stored in events or put in errors; only
``scheme://host:port`` is shown (``messages.url_origin``), and Apprise's own logger is redacted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from failover.actions.base import ActionError
from failover.links import fallback_url, own_base_url
from failover.redact import install_log_redaction, redact, url_origin
from failover.staff.messages import render
from failover.threads import OwnThreads

if TYPE_CHECKING:  # notify.py imports this module: type-only imports keep the graph acyclic
    import apprise

    from failover.actions.notify import NotifyConfig
    from failover.settings import Settings
    from failover.store import AsyncStore

_GRACE = 5.0  # beyond Apprise's own deadline, before we stop waiting for its thread
_DETAIL_MAX = 160  # characters of Apprise's reason shown per failed target
_WORKERS = 4  # Apprise's own threads (failover/threads.py says why)


class Delivery(StrEnum):
    """Where a claimed message stands."""

    NONE = "none"  # never claimed: not attempted
    SENT = "sent"  # every target accepted it (or was mid-send at a crash: never re-sent)
    FAILING = "failing"  # some target's last attempt failed: send again with the claim to retry


@dataclass(frozen=True, slots=True)
class Target:
    action: str  # the notify action's name
    index: int  # position in its ``urls``
    url: str  # secret
    config: NotifyConfig

    @property
    def id(self) -> str:
        return f"{self.action}#{self.index}"

    @property
    def where(self) -> str:
        return f"actions.{self.action}.urls[{self.index}] ({url_origin(self.url)})"


@dataclass(frozen=True, slots=True)
class _Attempt:
    target: Target
    number: int  # 1 = the first attempt (covered by the message claim itself)


@dataclass(frozen=True, slots=True)
class _Outcome:
    attempt: _Attempt
    ok: bool
    detail: str = ""  # why it failed; redacted
    permanent: bool = False  # retrying cannot help (the URL itself is wrong)


class StaffAlerts:
    def __init__(self, settings: Settings, store: AsyncStore, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self._threads = OwnThreads(_WORKERS, "apprise")
        install_log_redaction()

    def close(self) -> None:
        """Let Apprise's threads go at shutdown; a delivery still running ends at its own deadline."""
        self._threads.close()

    # -- public -----------------------------------------------------------------------------------

    async def send(
        self,
        topic: str,
        portal: str | None,
        *,
        claim: str | None = None,
        drill: bool = False,
        via: str | None = None,
        **fields: Any,
    ) -> bool:
        """Send ``topic`` to the notify actions of ``portal`` (all notify actions if None; only the
        action ``via`` if given). Returns whether any target got it now.

        With ``claim``: sends only if newly claimed, or retries the targets whose last attempt failed.
        Raises ActionError (transient) if a target failed; the others are not sent again on retry.
        """
        targets = self.targets(portal, via)
        if not targets:
            return False  # no notify action configured: nothing to claim either
        attempts = await self._due(claim, targets)
        if not attempts:
            return False
        rendered = self._render(topic, portal, {t.config.language for t in targets}, drill, fields)
        outcomes = await asyncio.gather(*(self._deliver(a, rendered[a.target.config.language]) for a in attempts))
        failed = [o for o in outcomes if not o.ok]
        for o in failed:
            if claim is not None:
                await self.store.claim(f"{claim}|{o.attempt.target.id}!{o.attempt.number}")
        sent = len(outcomes) - len(failed)
        self.store.submit_write(  # the audit row: the claims above are what keeps it exactly once
            "add_event",
            "notify",
            portal,
            via,
            topic=topic,
            sent=sent > 0,
            targets=len(outcomes),
            failed=len(failed),
            drill=drill,
            claim=claim,
            retry=max(a.number for a in attempts) > 1,
        )
        if failed:
            permanent = all(o.permanent for o in failed)
            raise ActionError(_failure_message(topic, failed, len(outcomes)), permanent=permanent)
        return sent > 0

    async def delivery(self, claim: str, portal: str | None, *, via: str | None = None) -> Delivery:
        """Where the message claimed as ``claim`` stands for these targets (no I/O but the store)."""
        if not await self.store.claimed(claim):
            return Delivery.NONE
        for t in self.targets(portal, via):
            if await self._next_retry(claim, t) is not None:
                return Delivery.FAILING
        return Delivery.SENT

    def targets(self, portal: str | None, via: str | None = None) -> list[Target]:
        """The Apprise targets of the portal's notify actions (all notify actions if None)."""
        if via is not None:
            names = [via]
        elif portal is not None:
            names = list(self.settings.portals[portal].actions)
        else:
            names = list(self.settings.actions)
        return [t for name in names for t in self._action_targets(name)]

    def validate(self, action: str) -> list[str]:
        """Preflight of one notify action: every URL parses as an Apprise URL. Sends nothing.

        Returns the targets' origins; raises a permanent ActionError naming the bad entry.
        """
        targets = self._action_targets(action)
        for t in targets:
            if not _apprise_for(t.url):
                raise ActionError(
                    f"notify {action}: {t.where} is not a valid Apprise URL; fix it in the config "
                    "(syntax: https://github.com/caronc/apprise/wiki)",
                    permanent=True,
                )
        return [url_origin(t.url) for t in targets]

    # -- claims -----------------------------------------------------------------------------------

    async def _due(self, claim: str | None, targets: list[Target]) -> list[_Attempt]:
        if claim is None or await self.store.claim(claim):
            return [_Attempt(t, 1) for t in targets]
        due = []
        for t in targets:
            n = await self._next_retry(claim, t)
            # Claiming the retry first keeps it at most once, even with two senders racing.
            if n is not None and await self.store.claim(f"{claim}|{t.id}@{n}"):
                due.append(_Attempt(t, n))
        return due

    async def _next_retry(self, claim: str, target: Target) -> int | None:
        """The number of the retry a target awaits, or None if its last attempt did not fail."""
        n = 1
        while await self.store.claimed(f"{claim}|{target.id}!{n}"):  # attempt n failed
            if not await self.store.claimed(f"{claim}|{target.id}@{n + 1}"):
                return n + 1
            n += 1
        return None

    # -- rendering and delivery -------------------------------------------------------------------

    def _action_targets(self, name: str) -> list[Target]:
        config = self.settings.actions.get(name)
        if config is None or config.type != "notify":
            return []
        return [Target(name, i, url.get_secret_value(), config) for i, url in enumerate(config.urls)]

    def _render(
        self, topic: str, portal: str | None, languages: set[str], drill: bool, fields: dict[str, Any]
    ) -> dict[str, tuple[str, str]]:
        values = {
            "portal": portal,
            "clinic": self.settings.clinic.name,
            "tz": self.settings.clinic.timezone,
            "now": self.clock(),
            "staff_url": self.settings.server.staff_url or f"{self._base_url()}/staff",
            "fallback_url": fallback_url(self.settings.server.public_url, portal) if portal else None,
            **fields,
            "drill": drill,
        }
        return {lang: render(topic, lang, **values) for lang in languages}

    def _base_url(self) -> str:
        return (self.settings.server.public_url or own_base_url(self.settings.server.listen)).rstrip("/")

    async def _deliver(self, attempt: _Attempt, message: tuple[str, str]) -> _Outcome:
        title, body = message
        timeout = attempt.target.config.timeout
        ap = _apprise_for(attempt.target.url)
        if ap is None:
            return _Outcome(attempt, False, "not a valid Apprise URL; fix it in the config", permanent=True)
        try:
            # Apprise is synchronous; its own deadline stops waiting, ours guards the thread hand-off.
            async with asyncio.timeout(timeout + _GRACE):
                result = await self._threads.run(ap.notify, body, title, body_format="text", timeout=timeout)
        except TimeoutError:
            return _Outcome(attempt, False, f"no answer within {timeout:g}s")
        except Exception as err:  # a plugin bug: its text may quote the URL, so show the type only
            return _Outcome(attempt, False, f"Apprise failed ({type(err).__name__})")
        if result:
            return _Outcome(attempt, True)
        return _Outcome(attempt, False, redact(_reason(result, timeout), attempt.target.url)[:_DETAIL_MAX])


def _apprise_for(url: str) -> apprise.Apprise | None:
    # Imported on first use: loading the config (every CLI command does) must not load Apprise.
    import apprise

    ap = apprise.Apprise()
    return ap if ap.add(url) else None


def _reason(result: Any, timeout: float) -> str:
    """Apprise's own words for a failure (its last captured warning); the caller redacts it."""
    import apprise

    if getattr(result, "status", None) == apprise.AppriseResultStatus.TIMEOUT:
        return f"no answer within {timeout:g}s"
    lines = [entry.message for service in result for entry in service.logs()]
    return lines[-1] if lines else "the service refused it"


def _failure_message(topic: str, failed: list[_Outcome], total: int) -> str:
    actions = ", ".join(sorted({o.attempt.target.action for o in failed}))
    where = "; ".join(f"{o.attempt.target.where}: {o.detail}" for o in failed)
    return (
        f"notify {actions}: {len(failed)} of {total} targets did not take the {topic} message — {where}. "
        "Check that the service is reachable and that the URL and its token are valid."
    )
