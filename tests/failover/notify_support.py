"""Helpers for the staff/notify/webhook tests: settings pointing at the local receivers, the
action dependencies, and the secrets that must never show up. Fixtures: ``receivers_fixtures``."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import httpx

from failover.actions.base import ActionContext
from failover.fakes.receivers import JsonReceiver, SmtpReceiver
from failover.service import action_context, staff_directory
from failover.settings import Settings
from failover.staff import StaffAlerts
from failover.store import AsyncStore

PORTAL = "epark"
URL_TOKEN = "tok3nS3cretXYZ"  # in every Apprise/webhook URL path: must never show up
MAIL_PASSWORD = "m4ilPassw0rd"
WEBHOOK_SECRET = "hmacK3ySecret-0123456"


def make_settings(actions: dict[str, dict[str, Any]], portal_actions: list[str] | None = None) -> Settings:
    return Settings.model_validate(
        {
            "clinic": {"name": "さくら歯科", "phone": "03-1234-5678", "timezone": "Asia/Tokyo"},
            "server": {"public_url": "https://book.example.jp"},
            "portals": {
                PORTAL: {
                    "endpoints": {"public": {"url": "https://portal.example.jp/clinic/1"}},
                    "book_url": "https://portal.example.jp/clinic/1",
                    "actions": list(actions) if portal_actions is None else portal_actions,
                }
            },
            "actions": actions,
        }
    )


def notify_action(*urls: str, **extra: Any) -> dict[str, Any]:
    return {"type": "notify", "urls": list(urls), "timeout": "2s", **extra}


def json_target(hook: JsonReceiver, path: str = f"/apprise/{URL_TOKEN}") -> str:
    return hook.url(path, scheme="json")


def mail_target(smtp: SmtpReceiver) -> str:
    return smtp.mailto(password=MAIL_PASSWORD)


def make_deps(
    settings: Settings, store: AsyncStore, http: httpx.AsyncClient, clock: Callable[[], float]
) -> ActionContext:
    return action_context(settings, PORTAL, store, http, make_staff(settings, store, clock), clock)


def make_staff(settings: Settings, store: AsyncStore, clock: Callable[[], float]) -> StaffAlerts:
    return StaffAlerts(staff_directory(settings), store, clock, random.Random(7))


async def deliver_all(staff: StaffAlerts, passes: int = 10) -> None:
    """Run the outbox's delivery passes until nothing is due (a row waiting on another goes next)."""
    for _ in range(passes):
        if not await staff.deliver_due():
            return


def assert_no_secret(*texts: object) -> None:
    for text in texts:
        for secret in (URL_TOKEN, MAIL_PASSWORD, WEBHOOK_SECRET):
            assert secret not in str(text), f"secret leaked into: {text}"
