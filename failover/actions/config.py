"""The config models of every action kind (the ``actions:`` part of the YAML), and nothing else.

They live apart from the actions themselves so that loading the config (``failover.settings``,
which every CLI command does) imports pydantic only: the action modules bring httpx, Apprise,
Starlette and google-ads, which read-only commands such as ``portalguard status`` never need.
The action modules import their model from here.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr

from watchdog.targets import Duration, StrictModel


class FallbackPageConfig(StrictModel):
    type: Literal["fallback_page"]


class AdsCredentials(StrictModel):
    developer_token: SecretStr
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    refresh_token: SecretStr = SecretStr("")
    token_uri: str = "https://oauth2.googleapis.com/token"


class GoogleAdsConfig(StrictModel):
    type: Literal["google_ads"]
    customer_id: str = Field(pattern=r"^\d{10}$", description="10 digits, no dashes.")
    login_customer_id: str | None = Field(None, pattern=r"^\d{10}$", description="Manager account, if any.")
    # Digits only: the ids go into a GAQL query.
    campaign_ids: list[Annotated[str, Field(pattern=r"^\d{1,20}$")]] = Field(min_length=1)
    max_daily_budget: float = Field(gt=0, description="Refuse to enable a campaign whose daily budget is higher.")
    max_active: Duration = 86400.0
    api_version: Literal["v23", "v24", "v25", "v26"] = "v26"
    timeout: Duration = 30.0
    endpoint: str | None = Field(None, description="API host:port; default Google's. For tests/demo only.")
    ca_file: str | None = Field(None, description="Extra CA bundle for `endpoint` (tests/demo only).")
    credentials: AdsCredentials


class NotifyConfig(StrictModel):
    type: Literal["notify"]
    urls: list[SecretStr] = Field(min_length=1, description="Apprise URLs; they carry tokens: use ${VAR}.")
    remind_every: Duration | None = 7200.0
    language: Literal["ja", "en"] = "ja"
    timeout: Duration = 15.0


class WebhookConfig(StrictModel):
    type: Literal["webhook"]
    url: SecretStr = Field(description="http(s) URL; may carry a token, so it is treated as a secret.")
    secret: SecretStr | None = Field(
        None,
        description="HMAC-SHA256 key for the X-Portalguard-Signature header; without it `doctor` reports not ready.",
    )
    timeout: Duration = 10.0
