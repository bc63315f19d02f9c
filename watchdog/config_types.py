"""The config's building blocks, shared by the watchdog and the failover side: the strict model base
and the value types (durations, URLs, ids). Rank 0: they import nothing of the project but
``watchdog.duration``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from watchdog.duration import format_duration, parse_duration


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
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return _duration(value)


Seconds = Annotated[
    float,
    BeforeValidator(_seconds),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0}, _DURATION_SCHEMA]}),
]


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s?#]+", value):
        # The value is not echoed: URLs may carry tokens (webhooks, basic auth).
        raise ValueError("is not an http(s) URL (use https://host/path)")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]


PortalId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
