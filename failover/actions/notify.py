"""Action ``notify``: tells staff through Apprise (Slack, e-mail, LINE, SMS gateways...)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from watchdog.targets import Duration, StrictModel


class NotifyConfig(StrictModel):
    type: Literal["notify"]
    urls: list[SecretStr] = Field(min_length=1, description="Apprise URLs; they carry tokens: use ${VAR}.")
    remind_every: Duration | None = 7200.0
    language: Literal["ja", "en"] = "ja"
    timeout: Duration = 15.0
