"""What the watchdog probes and how it judges: the pydantic models of the config's watchdog part.

Strict (unknown keys rejected), defaults in the schema, messages that name what is expected.
``failover.settings`` extends these models with the failover part of the same YAML file.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, model_validator

from watchdog.config_types import Duration, HttpUrl, PortalId, PositiveDuration, Seconds, StrictModel
from watchdog.duration import format_duration


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


DEFAULT_TIMEOUT = 10.0
TIMEOUT_SHARE = 0.8  # of the interval, when the timeout is left to its default
DEFAULT_CANARY_INTERVAL = 15.0


def _adapt(model: StrictModel, field: str, value: float) -> None:
    """Set a defaulted field of a frozen model from its siblings (inside its own validator only)."""
    object.__setattr__(model, field, value)


class Portal(StrictModel):
    endpoints: dict[EndpointName, Endpoint] = Field(min_length=1)
    interval: Duration = 15.0
    timeout: PositiveDuration = Field(
        DEFAULT_TIMEOUT, description="Default: 10s, or 80 % of interval when that is shorter."
    )
    down_after: Threshold = Field(default_factory=Threshold)
    up_after: Recovery = Field(default_factory=Recovery)
    trigger: Trigger = "public"

    @model_validator(mode="after")
    def _consistent(self) -> Portal:
        if self.interval < 1:
            raise ValueError(f"interval: {format_duration(self.interval)} is too short (use at least 1s)")
        if "timeout" not in self.model_fields_set:
            # A default must never turn the user's own valid interval into an error: `interval: 5s`
            # alone gets a 4s timeout, not the 10s default.
            _adapt(self, "timeout", min(DEFAULT_TIMEOUT, TIMEOUT_SHARE * self.interval))
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


def _ip_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f'"{value}" is not an IP address of this machine (e.g. 192.0.2.10 or 2001:db8::10)') from None


class ProbeSettings(StrictModel):
    concurrency: int = Field(256, ge=1, le=10000, description="Probes in flight at once, all portals.")
    jitter: float = Field(0.1, ge=0, le=1.0, description="Fraction of the interval first probes are spread over.")
    max_body_bytes: int = Field(2_000_000, ge=1024, description="Bytes of a page read at most.")
    user_agent: str = "portalguard/0.1 (+booking portal watchdog)"
    ca_file: Annotated[str, AfterValidator(_ca_bundle)] | None = Field(
        None, description="Extra CA certificates (PEM) to trust on top of the public ones: a portal with a private CA."
    )
    source_address: Annotated[str, AfterValidator(_ip_address)] | None = Field(
        None,
        description="Bind probes and canaries to this local address (a multi-homed host: the uplink to watch).",
    )


class WatchdogConfig(StrictModel):
    canaries: list[HttpUrl] = Field(
        default_factory=list, description="Always-up URLs; if all fail, our own network is down."
    )
    canary_interval: Duration = Field(
        DEFAULT_CANARY_INTERVAL,
        description="Default: 15s, or the shortest down_after.seconds when that is shorter.",
    )
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
        if "canary_interval" not in self.model_fields_set and shortest >= 1:
            _adapt(self, "canary_interval", min(DEFAULT_CANARY_INTERVAL, shortest))
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
