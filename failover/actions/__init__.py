"""The table of action kinds: config ``type`` -> the class that does it.

Classes are imported on first use, so ``google-ads`` (heavy) loads only when a google_ads action
is configured. Each class is built as ``Class(name, config, deps)``.
"""

from __future__ import annotations

import importlib
from typing import Any

from failover.actions.base import Action, ActionDeps, ActionError, Incident

ACTIONS: dict[str, tuple[str, str]] = {
    "fallback_page": ("failover.actions.fallback_page", "FallbackPage"),
    "google_ads": ("failover.actions.google_ads", "GoogleAds"),
    "notify": ("failover.actions.notify", "Notify"),
    "webhook": ("failover.actions.webhook", "Webhook"),
}


def build_action(name: str, config: Any, deps: ActionDeps) -> Action:
    module, cls = ACTIONS[config.type]
    return getattr(importlib.import_module(module), cls)(name, config, deps)


__all__ = ["ACTIONS", "Action", "ActionDeps", "ActionError", "Incident", "build_action"]
