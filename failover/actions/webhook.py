"""Action ``webhook``: POSTs a signed JSON body on switch on/off (IVR, website banner, status page)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from watchdog.targets import Duration, StrictModel


class WebhookConfig(StrictModel):
    type: Literal["webhook"]
    url: SecretStr = Field(description="http(s) URL; may carry a token, so it is treated as a secret.")
    secret: SecretStr | None = Field(None, description="HMAC-SHA256 key for the X-Portalguard-Signature header.")
    timeout: Duration = 10.0
