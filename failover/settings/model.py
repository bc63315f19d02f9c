"""The whole config file: the watchdog's part (``watchdog.targets``) plus the failover part."""

from __future__ import annotations

import ipaddress
import re
import socket
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, model_validator

from failover.actions.google_ads import GoogleAdsConfig
from failover.actions.notify import NotifyConfig
from failover.actions.table import ACTIONS
from failover.clinic import Clinic
from failover.crypto import DataKey, key_problem
from failover.mirror.config import MirrorSettings
from failover.report.config import ReportSettings
from failover.secrets_policy import SECRET_PLACEHOLDER, Secret
from failover.store_url import is_database_url
from watchdog.config_types import Duration, HttpUrl, PortalId, PositiveDuration, StrictModel, at_least
from watchdog.targets import Portal, WatchdogConfig

# One arm per kind of the actions table: a kind added there is a config type here.
ActionConfig = Annotated[Union[tuple(kind.config for kind in ACTIONS.values())], Field(discriminator="type")]  # noqa: UP007


def _listen(value: str) -> str:
    if not re.match(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):\d{1,5}$", value):
        raise ValueError(f'"{value}" is not host:port (use 127.0.0.1:8080)')
    if int(value.rpartition(":")[2]) > 65535:
        raise ValueError(f'"{value}": a port is at most 65535 (use 127.0.0.1:8080)')
    return value


def _store_path(value: str) -> str:
    # An in-memory or unnamed database acknowledges booking requests and forgets them at a restart.
    if not value.strip() or value.strip() == ":memory:" or "mode=memory" in value:
        raise ValueError(
            f'"{value}" keeps nothing across a restart: give a file path (e.g. /var/lib/portalguard/portalguard.db)'
        )
    return value


StorePath = Annotated[str, AfterValidator(_store_path)]


def _data_key(value: SecretStr) -> SecretStr:
    # The placeholder of an unset ${VAR} for read-only commands: no key then (sealed rows say so).
    text = value.get_secret_value()
    if text != SECRET_PLACEHOLDER and (problem := key_problem(text)) is not None:
        raise ValueError(problem)  # names no part of the value
    return value


DataKeyText = Annotated[Secret, AfterValidator(_data_key)]


Listen = Annotated[str, AfterValidator(_listen)]


def _proxy(value: str) -> str:
    # uvicorn takes any string and silently never matches a malformed one: refuse it here instead.
    try:
        ipaddress.ip_network(value)
        return value
    except ValueError:
        pass
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(
            f'"{value}" is not an IP address or network (use your reverse proxy\'s address, e.g. '
            "127.0.0.1 or 172.30.80.1, or a network such as 10.0.0.0/24)"
        ) from None
    raise ValueError(f'"{value}" has host bits set (use {network} for the network, or the bare address)')


TrustedProxy = Annotated[str, AfterValidator(_proxy)]


class ServerSettings(StrictModel):
    listen: Listen = "127.0.0.1:8080"
    public_url: HttpUrl | None = Field(None, description="How patients reach /book (behind the proxy).")
    staff_url: HttpUrl | None = Field(
        None, description="The /staff page as staff open it (VPN, office network); default public_url + /staff."
    )
    metrics_listen: Listen | None = Field(
        "127.0.0.1:9464", description="Separate /metrics listener; null serves /metrics on `listen` only."
    )
    trusted_proxies: list[TrustedProxy] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="Addresses (or networks) of the reverse proxy whose X-Forwarded-For is believed; "
        "the booking form's rate limit counts per client address. Others' headers are ignored.",
    )
    # Slowloris: a client that never finishes its request would otherwise hold a file descriptor forever.
    header_timeout: Annotated[Duration, Field(gt=0, le=300)] = Field(
        10.0,
        description="A request's headers must arrive within this long after the connection (or the "
        "previous response); else the connection is closed.",
    )
    body_timeout: Annotated[Duration, Field(gt=0, le=600)] = Field(
        30.0, description="A request's body (at most booking.max_body_bytes) must arrive within this long."
    )
    max_connections: int | None = Field(
        None,
        ge=32,
        description="Open web connections at most; default from the file descriptor limit (ulimit -n), "
        "keeping descriptors for probes, the store and outbound calls.",
    )
    max_connections_per_client: int = Field(
        50, ge=1, description="Open connections per client address (TCP peer); trusted_proxies are exempt."
    )
    secret_file: Path | None = Field(
        None,
        description="The web secret (CSRF and preview tokens), created on first use; default beside a SQLite "
        "store (`STORE.key`). Required with a PostgreSQL store.",
    )
    static_fallback_dir: Path | None = Field(
        None,
        description="`run` keeps a static copy of each fallback page here (phone, hours; no form), "
        "rewritten when the config changes, for the reverse proxy to serve when portalguard does not "
        "answer (deploy/nginx, deploy/caddy).",
    )


class StaffAuth(StrictModel):
    """Credentials for /staff. Without any (and without accounts from `portalguard staff add`), /staff
    is disabled (never open)."""

    token: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    token_role: Literal["viewer", "operator"] = Field(
        "viewer", description="What the Bearer token may do: viewer (see only, the default) or operator (also decide)."
    )
    session_idle: Annotated[Duration, Field(ge=60.0, le=7 * 86400.0)] = Field(
        8 * 3600.0, description="A staff login session ends after this long unused."
    )

    @model_validator(mode="after")
    def _pair(self) -> StaffAuth:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together (set both, or neither)")
        return self


class BookingSettings(StrictModel):
    retention: Annotated[Duration, at_least(86400.0, "an acknowledged request must outlive a restart")] = 90 * 86400.0
    rate_limit_per_minute: int = Field(10, ge=1, description="Form posts per client IP per minute.")
    ipv6_prefix: int = Field(
        64, ge=32, le=128, description="IPv6 clients are limited per network of this prefix (one subscriber's /64)."
    )
    max_body_bytes: int = Field(16_384, ge=1024)


class FailoverTuning(StrictModel):
    # At most 1s: the spec promises a tick every second and CLI overrides applied within 2s.
    tick: Annotated[Duration, Field(ge=0.1, le=1.0)] = 1.0
    backoff_max: PositiveDuration = 300.0
    max_switches_per_hour: int = Field(4, ge=1, description="More and the portal is flapping: staff decide.")
    doctor_every: Annotated[Duration, at_least(1.0, "each preflight calls every service")] = 6 * 3600.0
    audit_retention: Annotated[Duration, at_least(30 * 86400.0, "incident reports and send-once records need it")] = (
        Field(400 * 86400.0, description="Events (the audit log) are kept this long.")
    )


class FailoverPortal(Portal):
    name: str | None = Field(
        None,
        min_length=1,
        max_length=80,
        description="The name people read (messages, pages, status); default: the id.",
    )
    clinic: PortalId | None = Field(
        None, description="Which of `clinics:` this portal books for (required when there are several)."
    )
    book_url: HttpUrl = Field(description="Where /book sends patients while the portal is up.")
    actions: list[str] = Field(default_factory=list, description="Names from the top-level `actions`.")
    min_failover: Duration = 300.0
    mirror: MirrorSettings | None = Field(None, description="A continuous copy of the upcoming appointments.")

    @model_validator(mode="after")
    def _mirror_endpoint(self) -> FailoverPortal:
        problem = self.mirror.endpoint_problem(self.endpoints) if self.mirror is not None else None
        if problem is not None:
            raise ValueError(problem)
        return self


class GroupStaffAlerts(StrictModel):
    """The group's own staff targets (the office manager of several clinics): every clinic's messages."""

    urls: list[SecretStr] = Field(min_length=1, description="Apprise URLs; they carry tokens: use ${VAR}.")
    remind_every: PositiveDuration | None = 7200.0
    language: Literal["ja", "en"] = "ja"
    timeout: PositiveDuration = 15.0

    def as_notify(self) -> NotifyConfig:
        """The notify action it is on every portal (claimed, observed and retried like a clinic's own)."""
        fields = self.model_dump(include={"urls", "remind_every", "language", "timeout"})
        return NotifyConfig(type="notify", **fields)


GROUP_ALERTS = "staff_alerts"  # the notify action `staff_alerts:` becomes, beside each portal's own


SITE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


def _site(value: str) -> str:
    if not re.match(SITE_PATTERN, value):
        raise ValueError(
            f'"{value}" is not a site name: letters, digits, "-", "_" and "." (at most 63), e.g. vps-tokyo'
        )
    return value


SiteName = Annotated[str, AfterValidator(_site)]


def default_site() -> str:
    """This machine's host name, made a valid site name (``site:`` unset)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname().split(".")[0]).strip("-_.")[:63]
    return name or "portalguard"


def _quorum(value: object) -> object:
    # One message for both arms (a union would report each arm's failure).
    if value == "majority" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 99):
        return value
    raise ValueError(f"{value!r} is no quorum: use majority, or the number of sites that must agree (1 to 99)")


class HaSettings(StrictModel):
    """Several instances on one PostgreSQL store: who leads, and how the sites' verdicts combine."""

    lease: Annotated[
        Duration,
        at_least(2.0, "it is renewed every lease/3: shorter, one slow query costs the leader"),
        Field(le=300.0),
    ] = Field(10.0, description="The leader lease; renewed every lease/3. A dead leader is replaced within about this.")
    quorum: Annotated[Literal["majority"] | int, BeforeValidator(_quorum)] = Field(
        "majority", description="Sites that must judge a portal DOWN (or UP) to switch: majority of the live ones."
    )
    site_stale_after: Annotated[Duration, at_least(2.0, "a site writes its heartbeat twice a second")] | None = Field(
        None, description="A site silent this long does not count. Default: 3 × the longest probe interval."
    )


class Settings(WatchdogConfig):
    clinic: Clinic | None = Field(None, description="The clinic (one); for several, `clinics:` instead.")
    clinics: dict[PortalId, Clinic] = Field(
        default_factory=dict, description="A dental group: its clinics by id; each portal names its `clinic`."
    )
    group_name: str | None = Field(
        None,
        min_length=1,
        max_length=80,
        description="The dental group's name (医療法人…): atop /book's list of clinics and in messages about the "
        "whole instance; default: the clinics' names.",
    )
    staff_alerts: GroupStaffAlerts | None = Field(
        None, description="Targets that get every clinic's staff messages (once, even when also a clinic's own)."
    )
    store: StorePath = "./portalguard.db"
    data_key: DataKeyText | None = Field(
        None,
        description="The key patient data is sealed with in the store (booking requests, the appointment "
        "mirror): `${PORTALGUARD_DATA_KEY}`, made by `portalguard keygen`. Required by a portal's `mirror`.",
    )
    site: SiteName = Field(
        default_factory=default_site,
        description="This instance's name among several on one store (--site / $PORTALGUARD_SITE win); "
        "default: the host name.",
    )
    ha: HaSettings = Field(default_factory=HaSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    staff: StaffAuth = Field(default_factory=StaffAuth)
    booking: BookingSettings = Field(default_factory=BookingSettings)
    failover: FailoverTuning = Field(default_factory=FailoverTuning)
    report: ReportSettings = Field(default_factory=ReportSettings)
    actions: dict[PortalId, ActionConfig] = Field(default_factory=dict)
    portals: dict[PortalId, FailoverPortal] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> Settings:
        self._one_clinic_or_a_group()
        self._group_alerts_name_free()
        for pid, portal in self.portals.items():
            for name in portal.actions:
                if name not in self.actions:
                    known = ", ".join(sorted(self.actions)) or "none yet"
                    raise ValueError(
                        f'portals.{pid}.actions: unknown action "{name}" '
                        f"(define it under the top-level actions:; defined: {known})"
                    )
        self._campaigns_not_shared()
        self._mirror_needs_key()
        self._database_store_needs_secret_file()
        return self

    def _database_store_needs_secret_file(self) -> None:
        # Beside a SQLite file by default; a database URL has no "beside".
        if is_database_url(self.store) and self.server.secret_file is None:
            raise ValueError(
                "server.secret_file: required with a PostgreSQL store (where the web secret for forms and "
                "preview links is kept, e.g. /var/lib/portalguard/web.key; chmod 600, backed up with the config)"
            )

    def _group_alerts_name_free(self) -> None:
        if self.staff_alerts is not None and GROUP_ALERTS in self.actions:
            raise ValueError(
                f"actions.{GROUP_ALERTS}: the name is taken by the top-level staff_alerts: (the group's targets); "
                "rename this action"
            )

    def _one_clinic_or_a_group(self) -> None:
        if (self.clinic is None) == (not self.clinics):
            raise ValueError(
                "clinic: is required (name, phone, ...) — or, for a dental group, clinics: with one entry per "
                "clinic and each portal's clinic: naming it; not both"
                if self.clinic is None
                else "clinic: and clinics: are alternatives: move the clinic: block under clinics: with an id"
            )
        if self.clinic is not None:
            for pid, portal in self.portals.items():
                if portal.clinic is not None:
                    raise ValueError(
                        f"portals.{pid}.clinic: this config has one clinic (the top-level clinic:); remove "
                        f"portals.{pid}.clinic, or list the clinics under clinics:"
                    )
            return
        self._group_references()

    def _group_references(self) -> None:
        ids = ", ".join(self.clinics)
        for pid, portal in self.portals.items():
            if portal.clinic is None and len(self.clinics) > 1:
                raise ValueError(f"portals.{pid}.clinic: required with several clinics (one of: {ids})")
            if portal.clinic is not None and portal.clinic not in self.clinics:
                raise ValueError(f'portals.{pid}.clinic: unknown clinic "{portal.clinic}" (clinics: {ids})')
        for cid in self.clinics:
            if not any(self.clinic_id(pid) == cid for pid in self.portals):
                raise ValueError(f"clinics.{cid}: no portal books for this clinic (set portals.<id>.clinic: {cid})")
        zones = {c.timezone for c in self.clinics.values()}
        if len(zones) > 1:
            listed = ", ".join(f"{cid}: {c.timezone}" for cid, c in self.clinics.items())
            raise ValueError(
                f"clinics: all clinics of one portalguard share one time zone ({listed}); "
                "run one portalguard per time zone"
            )

    def clinic_id(self, portal_id: str) -> str:
        """The id of the clinic a portal books for (``clinic`` for the single top-level clinic)."""
        own = self.portals[portal_id].clinic
        return own if own is not None else next(iter(self.clinics), "clinic")

    def clinic_of(self, portal_id: str) -> Clinic:
        """The clinic a portal's patients see (page, messages, webhooks)."""
        if self.clinic is not None:
            return self.clinic
        return self.clinics[self.clinic_id(portal_id)]

    def group(self) -> dict[str, Clinic]:
        """Every clinic by id: the one top-level clinic is ``clinic``."""
        return dict(self.clinics) if self.clinic is None else {"clinic": self.clinic}

    def home(self) -> Clinic:
        """The clinic that speaks for the whole instance (its time zone, group-wide messages): the
        only one, or the first of ``clinics``."""
        return self.clinic if self.clinic is not None else next(iter(self.clinics.values()))

    def site_stale_after(self) -> float:
        """How long a site may be silent and still count (``ha.site_stale_after``, else 3 × the longest
        probe or canary interval: a site is never stale between two of its own probes)."""
        if self.ha.site_stale_after is not None:
            return self.ha.site_stale_after
        longest = max([self.canary_interval, *(p.interval for p in self.portals.values())])
        return 3.0 * longest

    def group_label(self) -> str:
        """What speaks for the whole instance: ``group_name``, else every clinic's name."""
        return self.group_name or "・".join(c.name for c in self.group().values())

    @property
    def timezone(self) -> str:
        """The instance's time zone: every clinic's (they must share one)."""
        return self.home().timezone

    def portals_of(self, clinic_id: str) -> list[str]:
        """The portals that book for a clinic, in config order."""
        return [pid for pid in self.portals if self.clinic_id(pid) == clinic_id]

    def _mirror_needs_key(self) -> None:
        # The mirror keeps patients' names and phones: never without encryption at rest.
        if self.data_key is not None:
            return
        for pid, portal in self.portals.items():
            if getattr(portal, "mirror", None) is not None:
                raise ValueError(
                    f"data_key: portals.{pid}.mirror keeps patient data, which the store seals with the data "
                    "key: set data_key: ${PORTALGUARD_DATA_KEY} (run `portalguard keygen` for one)"
                )

    def sealing_key(self) -> DataKey | None:
        """The ``data_key`` as a key, or None: not set, or not needed by a read-only command (unset)."""
        if self.data_key is None or self.data_key.get_secret_value() == SECRET_PLACEHOLDER:
            return None
        return DataKey.from_text(self.data_key.get_secret_value())

    def _campaigns_not_shared(self) -> None:
        # Two portals toggling the same campaign would pause it while the other still needs it.
        owner: dict[str, tuple[str, str]] = {}
        for pid, portal in self.portals.items():
            for name in portal.actions:
                cfg = self.actions[name]
                if isinstance(cfg, GoogleAdsConfig):
                    for cid in cfg.campaign_ids:
                        other, other_action = owner.setdefault(cid, (pid, name))
                        if other != pid:
                            raise ValueError(
                                f"portals.{pid}.actions: campaign {cid} (action {name}) is also switched by "
                                f"portal {other} (action {other_action}){self._clinics_note(pid, other)}; "
                                "give each portal its own campaigns"
                            )

    def _clinics_note(self, pid: str, other: str) -> str:
        one, two = self.clinic_id(pid), self.clinic_id(other)
        return f" of another clinic ({one} and {two})" if one != two and self.clinic is None else ""

    def portal_actions(self, portal_id: str) -> dict[str, ActionConfig]:
        """A portal's actions by name: its own, then the group's ``staff_alerts`` (on every portal)."""
        own: dict[str, ActionConfig] = {name: self.actions[name] for name in self.portals[portal_id].actions}
        if self.staff_alerts is not None:
            own[GROUP_ALERTS] = self.staff_alerts.as_notify()
        return own

    def all_actions(self) -> dict[str, ActionConfig]:
        """Every action by name, the group's ``staff_alerts`` included."""
        group = {GROUP_ALERTS: self.staff_alerts.as_notify()} if self.staff_alerts is not None else {}
        return {**self.actions, **group}

    def portal_name(self, portal_id: str) -> str:
        """What people read for a portal: its `name`, else its id."""
        return self.portals[portal_id].name or portal_id
