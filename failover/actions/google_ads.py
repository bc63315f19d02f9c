"""Action ``google_ads``: enables the prepared search campaign(s) on failover, pauses them after."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from watchdog.targets import Duration, StrictModel


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
    campaign_ids: list[str] = Field(min_length=1)
    max_daily_budget: float = Field(gt=0, description="Refuse to enable a campaign whose daily budget is higher.")
    max_active: Duration = 86400.0
    api_version: Literal["v23", "v24", "v25", "v26"] = "v26"
    timeout: Duration = 30.0
    endpoint: str | None = Field(None, description="API host:port; default Google's. For tests/demo only.")
    ca_file: str | None = Field(None, description="Extra CA bundle for `endpoint` (tests/demo only).")
    credentials: AdsCredentials
