"""The config's building blocks, shared by the watchdog and the failover side: the strict model base
and the value types (durations, URLs, ids). Rank 0: they import nothing of the project but
``watchdog.duration``.
"""

from __future__ import annotations

import re
import typing
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

from watchdog.duration import MAX_SECONDS, format_duration, parse_duration


def _schema_for_editors(schema: dict[str, Any]) -> None:
    for prop in schema.get("properties", {}).values():
        # Editors insert a default as is: a duration's must read "15s" (valid YAML here), not 15.0.
        patterns = [prop.get("pattern"), *(arm.get("pattern") for arm in prop.get("anyOf", []))]
        if _DURATION_PATTERN in patterns and type(prop.get("default")) in (int, float):
            prop["default"] = format_duration(prop["default"])
        # A portal id / endpoint name that misses the key pattern is an error, as in validation.
        if "patternProperties" in prop:
            prop.setdefault("additionalProperties", False)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_schema_for_editors)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, data: Any) -> Any:
        # pydantic reads ``failures: true`` as 1: a YAML slip that must be an error, not a setting.
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                value = data.get(name)
                items = value if isinstance(value, list) else [value]
                if _is_number(field) and any(isinstance(v, bool) for v in items):
                    raise ValueError(f"{name}: must be a number, not {str(value).lower()}")
        return data


def _is_number(field: Any) -> bool:
    """A plain int/float field (or a list of them); typed values such as durations check themselves."""
    if any(isinstance(m, BeforeValidator) for m in field.metadata):
        return False
    kinds = {a for a in (field.annotation, *typing.get_args(field.annotation)) if a is not type(None)}
    return bool(kinds) and kinds <= {int, float, list}


def _duration(value: object) -> float:
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(f'"{value}" is not a duration (use 15s, 2m)')


_DURATION_PATTERN = r"^(\d+(\.\d+)?(ms|s|m|h|d))+$"
_DURATION_SCHEMA = {"type": "string", "pattern": _DURATION_PATTERN, "examples": ["15s", "2m"]}
Duration = Annotated[
    float,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(_DURATION_SCHEMA),
]


def _seconds(value: object) -> float:
    # A key named ``seconds`` may hold a plain number (``seconds: 30``): the unit is in its name.
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= MAX_SECONDS:
        return float(value)
    return _duration(value)


Seconds = Annotated[
    float,
    BeforeValidator(_seconds),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0}, _DURATION_SCHEMA]}),
]


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("must be longer than 0s (use e.g. 10s)")
    return seconds


# A timeout, an interval, a retention: zero would mean "never wait" or "keep nothing".
PositiveDuration = Annotated[Duration, AfterValidator(_positive)]


def at_least(minimum: float, why: str) -> AfterValidator:
    """A duration bound with its reason, for values whose lower end loses data when too short."""

    def check(seconds: float) -> float:
        if seconds < minimum:
            raise ValueError(f"must be at least {format_duration(minimum)} ({why})")
        return seconds

    return AfterValidator(check)


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s?#]+", value):
        # The value is not echoed: URLs may carry tokens (webhooks, basic auth).
        raise ValueError("is not an http(s) URL (use https://host/path)")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]


PortalId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
