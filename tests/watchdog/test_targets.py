"""The watchdog's config models: defaults that adapt to what the user wrote, never against it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from watchdog.targets import WatchdogConfig


def config(portal: dict[str, Any], **top: Any) -> WatchdogConfig:
    endpoints = {"public": {"url": "http://127.0.0.1:9/"}}
    return WatchdogConfig.model_validate({"portals": {"p": {"endpoints": endpoints, **portal}}, **top})


@pytest.mark.parametrize(
    ("interval", "timeout"),
    [("5s", 4.0), ("2s", 1.6), ("12500ms", 10.0), ("15s", 10.0), ("1m", 10.0)],
)
def test_a_defaulted_timeout_fits_the_interval(interval: str, timeout: float) -> None:
    assert config({"interval": interval}).portals["p"].timeout == pytest.approx(timeout)


def test_a_timeout_the_user_wrote_is_still_checked() -> None:
    with pytest.raises(ValidationError, match="timeout: 10s must be shorter than interval"):
        config({"interval": "5s", "timeout": "10s"})


@pytest.mark.parametrize(("seconds", "canary_interval"), [(10, 10.0), ("5s", 5.0), ("30s", 15.0)])
def test_a_defaulted_canary_interval_fits_the_shortest_down_after(seconds: object, canary_interval: float) -> None:
    cfg = config({"down_after": {"failures": 2, "seconds": seconds}}, canaries=["http://127.0.0.1:9/c"])
    assert cfg.canary_interval == canary_interval


def test_a_canary_interval_the_user_wrote_is_still_checked() -> None:
    with pytest.raises(ValidationError, match="canary_interval: 15s must not be longer than"):
        config({"down_after": {"seconds": 10}}, canaries=["http://127.0.0.1:9/c"], canary_interval="15s")


def test_the_adapted_defaults_serialise_as_durations() -> None:
    dumped = config({"interval": "5s"}, canaries=["http://127.0.0.1:9/c"]).model_dump()
    assert dumped["portals"]["p"]["timeout"] == "4s" and dumped["canary_interval"] == "15s"
