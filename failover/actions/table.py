"""The one table of action kinds: config ``type`` -> its config model, its class, its labels.

Everything that knows the kinds reads it: the config's discriminated union
(``failover.settings.model.ActionConfig``), the list of types in config errors, the labels of the
measures in staff messages and on /staff, and whether a kind is the staff notification itself.
Adding a kind is its module, one line here and its test file. Kind modules import their heavy
libraries (google-ads, Apprise, httpx) on first use, so loading this table loads none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from failover.actions.base import Action, ActionContext
from failover.actions.fallback_page import FallbackPage, FallbackPageConfig
from failover.actions.google_ads import GoogleAds, GoogleAdsConfig
from failover.actions.notify import Notify, NotifyConfig
from failover.actions.webhook import Webhook, WebhookConfig


@dataclass(frozen=True, slots=True)
class ActionKind:
    config: type[Any]  # the pydantic model of its `actions.NAME` entry (`type: <kind>`)
    action: type[Any]  # built as ``action(name, config, ctx)``
    labels: Mapping[str, str]  # what staff read, by language
    tells_staff: bool = False  # the staff notification itself (not listed among the measures)
    served_by_us: bool = False  # gone while portalguard is stopped (the rest stays on: ads, webhooks' receivers)


ACTIONS: dict[str, ActionKind] = {
    "fallback_page": ActionKind(
        FallbackPageConfig, FallbackPage, {"ja": "代替予約ページ", "en": "fallback page"}, served_by_us=True
    ),
    "google_ads": ActionKind(GoogleAdsConfig, GoogleAds, {"ja": "Google 広告", "en": "Google Ads"}),
    "notify": ActionKind(NotifyConfig, Notify, {"ja": "通知", "en": "notice"}, tells_staff=True),
    "webhook": ActionKind(WebhookConfig, Webhook, {"ja": "Webhook", "en": "webhook"}),
}


def build_action(name: str, config: Any, ctx: ActionContext) -> Action:
    return ACTIONS[config.type].action(name, config, ctx)  # type: ignore[no-any-return]
