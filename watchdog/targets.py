"""What the watchdog probes and how it judges: the pydantic models of the config's watchdog part.

Strict (unknown keys rejected), defaults in the schema, messages that name what is expected.
``failover.settings`` extends these models with the failover part of the same YAML file.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    WithJsonSchema,
    model_validator,
)

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


def _ca_bundle(value: str) -> str:
    import os
    import ssl

    if not os.path.isfile(value) or not os.access(value, os.R_OK):
        raise ValueError(f'"{value}" is not a readable file')
    try:
        ssl.create_default_context().load_verify_locations(cafile=value)
    except ssl.SSLError:
        raise ValueError(f'"{value}" holds no PEM CA certificate') from None
    return value


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f'"{value}" is not a time zone (use an IANA name like Asia/Tokyo)') from None
    return value


class Clinic(StrictModel):
    name: str = Field(min_length=1, description="Shown on the fallback page and in notifications.")
    phone: str = Field(pattern=r"^\+?[0-9][0-9\- ()]{5,20}$", description="Shown as a tel: link.")
    timezone: Annotated[str, AfterValidator(_timezone)] = "Asia/Tokyo"
    name_en: str = ""
    address: str = ""
    hours: str = Field("", description="Opening hours, free text, shown on the fallback page.")
    address_en: str = Field("", description="The address on the English page (else `address`).")
    hours_en: str = Field("", description="Opening hours on the English page (else `hours`).")
    website: str = ""

    def text(self, key: str, lang: str) -> str:
        """``name``/``address``/``hours`` in ``lang``: the ``_en`` variant on English pages when set."""
        english = getattr(self, f"{key}_en") if lang == "en" else ""
        return english or getattr(self, key)


class Expect(StrictModel):
    status: list[Annotated[int, Field(ge=100, le=599)]] = Field(default_factory=lambda: [200], min_length=1)
    contains: list[str] = Field(default_factory=list, description="Texts the page must contain.")
    not_contains: list[str] = Field(
        default_factory=list, description="Texts that mean maintenance/outage even on a 200 page."
    )


class Login(StrictModel):
    username: str = Field(min_length=1)
    password: SecretStr
    success_contains: list[str] = Field(min_length=1, description="Texts seen only after a good login.")
    username_field: str = "username"
    password_field: str = "password"
    form_action: str | None = Field(None, description="Where the form posts; default: the form's action.")


EndpointName = Annotated[str, Field(pattern=r"^(public|admin)(-[a-z0-9][a-z0-9-]*)?$")]


class Endpoint(StrictModel):
    url: HttpUrl
    expect: Expect = Field(default_factory=Expect)
    login: Login | None = None
    allow_redirect_hosts: list[str] = Field(
        default_factory=list, description="Other hosts a redirect may lead to without counting as failure."
    )


class Threshold(StrictModel):
    failures: int = Field(3, ge=1)
    seconds: Seconds = 30.0


class Recovery(StrictModel):
    successes: int = Field(4, ge=1)
    seconds: Seconds = 60.0


Trigger = Literal["public", "admin", "any", "all"]


class Portal(StrictModel):
    endpoints: dict[EndpointName, Endpoint] = Field(min_length=1)
    interval: Duration = 15.0
    timeout: Duration = 10.0
    down_after: Threshold = Field(default_factory=Threshold)
    up_after: Recovery = Field(default_factory=Recovery)
    trigger: Trigger = "public"
    book_url: HttpUrl = Field(description="Where /book sends patients while the portal is up.")

    @model_validator(mode="after")
    def _consistent(self) -> Portal:
        if self.interval < 1:
            raise ValueError(f"interval: {format_duration(self.interval)} is too short (use at least 1s)")
        if self.timeout >= self.interval:
            raise ValueError(
                f"timeout: {format_duration(self.timeout)} must be shorter than interval "
                f"({format_duration(self.interval)}): lower timeout or raise interval"
            )
        roles = {endpoint_role(name) for name in self.endpoints}
        needed = {"public": {"public"}, "admin": {"admin"}, "any": set(), "all": {"public", "admin"}}
        missing = needed[self.trigger] - roles
        if missing:
            role = sorted(missing)[0]
            raise ValueError(f"trigger: {self.trigger} needs an endpoint named {role} (add endpoints.{role})")
        return self


def endpoint_role(name: str) -> Literal["public", "admin"]:
    """``public-search`` -> ``public``: the role decides what ``trigger`` counts."""
    return "admin" if name.startswith("admin") else "public"


class ProbeSettings(StrictModel):
    concurrency: int = Field(256, ge=1, le=10000, description="Probes in flight at once, all portals.")
    jitter: float = Field(0.1, ge=0, le=1.0, description="Fraction of the interval first probes are spread over.")
    max_body_bytes: int = Field(2_000_000, ge=1024, description="Bytes of a page read at most.")
    user_agent: str = "portalguard/0.1 (+booking portal watchdog)"
    ca_file: Annotated[str, AfterValidator(_ca_bundle)] | None = Field(
        None, description="Extra CA certificates (PEM) to trust on top of the public ones: a portal with a private CA."
    )


PortalId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class WatchdogConfig(StrictModel):
    clinic: Clinic
    canaries: list[HttpUrl] = Field(
        default_factory=list, description="Always-up URLs; if all fail, our own network is down."
    )
    canary_interval: Duration = 15.0
    probe: ProbeSettings = Field(default_factory=ProbeSettings)
    portals: dict[PortalId, Portal] = Field(min_length=1)

    @model_validator(mode="after")
    def _canary_timing(self) -> WatchdogConfig:
        if self.canary_interval < 1:
            raise ValueError(f"canary_interval: {format_duration(self.canary_interval)} is too short (use at least 1s)")
        if not self.canaries:
            return self
        # A portal goes DOWN only once a canary probe started during its failure streak has
        # answered (our own network works): a longer canary interval would delay the failover.
        pid = min(self.portals, key=lambda p: self.portals[p].down_after.seconds)
        shortest = self.portals[pid].down_after.seconds
        if self.canary_interval > shortest:
            fix = (
                f"lower canary_interval to {format_duration(shortest)} or less, or raise down_after.seconds"
                if shortest >= 1
                else f"raise down_after.seconds to at least {format_duration(self.canary_interval)}"
            )
            raise ValueError(
                f"canary_interval: {format_duration(self.canary_interval)} must not be longer than "
                f"portals.{pid}.down_after.seconds ({format_duration(shortest)}): a DOWN waits for a canary "
                f"to confirm our own network; {fix}"
            )
        return self
