"""Action ``google_ads``: enables the prepared search campaign(s) on failover, pauses them after.

Spend guards: a campaign whose daily budget is above ``max_daily_budget`` is never enabled, and
after ``max_active`` of continuous failover the campaigns are paused until staff confirm (see
``GoogleAds.maintain``). State is always read back from the API, so a restart never guesses.

``google-ads`` is heavy (~1 s, ~100 MB): it is imported on first use, in a worker thread
(``GoogleAds.warm``), never at module import. Every blocking call runs in the action's own small
thread pool with ``timeout`` as its deadline, so the event loop never waits on Google, and a hung
call elsewhere (an Apprise target) cannot take the threads Google Ads needs.

For tests and the demo, ``endpoint``, ``ca_file`` and ``credentials.token_uri`` point at
``failover.fakes.google_ads_server``; ``ca_file`` is then trusted by the gRPC channel and by the
OAuth token refresh (which this module does itself, see ``_AdsApi._authorized``).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import Field, SecretStr

from failover.actions.base import ActionContext, ActionError, Incident
from failover.redact import scrub_urls
from failover.threads import OwnThreads
from watchdog.config_types import PositiveDuration, StrictModel
from watchdog.duration import format_duration

if TYPE_CHECKING:
    from google.oauth2.credentials import Credentials

T = TypeVar("T")

_WORKERS = 2  # calls of one action run one round at a time; a second thread serves check/drill


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
    max_active: PositiveDuration = 86400.0
    api_version: Literal["v23", "v24", "v25", "v26"] = "v26"
    timeout: PositiveDuration = 30.0
    endpoint: str | None = Field(None, description="API host:port; default Google's. For tests/demo only.")
    ca_file: str | None = Field(None, description="Extra CA bundle for `endpoint` (tests/demo only).")
    credentials: AdsCredentials


@dataclass(frozen=True, slots=True)
class Campaign:
    """One campaign as the API reports it."""

    id: str
    status: str  # ENABLED | PAUSED | REMOVED (UNKNOWN/UNSPECIFIED never for a real campaign)
    budget: float  # daily budget, in the account's currency
    currency: str


class GoogleAds:
    """Switches the configured campaigns of one Google Ads customer account."""

    def __init__(self, name: str, config: GoogleAdsConfig, deps: ActionContext) -> None:
        self.name = name
        self.config = config
        self.deps = deps
        self.key = f"actions.{name}"  # where errors point in the YAML
        self._api = _AdsApi(config, self.key)
        self._capped: int | None = None  # the incident whose campaigns max_active paused
        self._threads = OwnThreads(_WORKERS, f"google-ads-{self.name}")

    async def warm(self) -> None:
        """Import google-ads and build the client and services in a thread (no network call).

        The service calls this at start, so the first failover does not pay ~1 s of imports.
        """
        await self._call("preparing the Google Ads client", self._api.build)

    def close(self) -> None:
        """Let the worker threads go at shutdown; a call still running ends at its own deadline."""
        self._threads.close()

    # -- the Action protocol ------------------------------------------------------------------

    async def observe(self) -> bool | None:
        """True iff ALL campaigns are ENABLED, False iff none is; a mix is None (partly on), so the
        orchestrator applies or reverts whichever way is wanted: no campaign is left spending."""
        enabled = [c.status == "ENABLED" for c in await self._read()]
        return True if all(enabled) else (False if not any(enabled) else None)

    async def apply(self, incident: Incident) -> None:
        """Enable the campaigns not yet enabled, after the spend guards; refusal is permanent."""
        if incident.drill:  # a rehearsal never spends
            await self.drill(incident)
            return
        if await self._past_max_active(incident):
            raise self._max_active_error(incident, "refusing to enable", observed=None)
        campaigns = await self._read()
        self._guard(campaigns)
        todo = {c.id: "ENABLED" for c in campaigns if c.status != "ENABLED"}
        if todo:
            await self._mutate(todo, validate_only=False)

    async def revert(self, incident: Incident) -> None:
        await self._pause()

    async def maintain(self, incident: Incident) -> None:
        """Cap the duration of spend without a human decision.

        Rule: once failover has been on for ``max_active`` (from ``incident.since``, by
        ``deps.now()``), the campaigns are paused, and a permanent ActionError (observed off,
        topic ``ads_max_active``: sent to staff once by the orchestrator) says how to confirm.
        Staff confirm with ``portalguard failover on PORTAL --reason ...``: while a manual "on"
        override is in force, a human owns the decision and the cap does not apply (``apply``
        enables again). When that override ends (cleared or expired) and failover is still on, the
        cap applies again at once, as the clock never restarts within an incident. ``apply``
        enforces the same rule, so a retry cannot undo the pause.
        """
        if not await self._past_max_active(incident):
            self._capped = None
            return
        if self._capped != incident.number:
            await self._pause()
            self._capped = incident.number  # later ticks raise without calling the API (quota)
        # The orchestrator alerts staff once with this message (permanent errors always do).
        raise self._max_active_error(incident, "paused", observed=False)

    async def check(self) -> str:
        """Preflight: the campaigns exist and are within the cap, and a validate-only mutate of their
        current status (no change) is accepted, which proves the credentials may write."""
        campaigns = await self._read()
        self._guard(campaigns)
        await self._mutate({c.id: c.status for c in campaigns}, validate_only=True)
        return f"{_statuses(campaigns)}, {self._budgets(campaigns)}, API {self.config.api_version} reachable"

    async def drill(self, incident: Incident) -> str:
        """Rehearse ``apply``: the same guards, and a validate-only ENABLE that changes nothing."""
        campaigns = await self._read()
        self._guard(campaigns)
        await self._mutate({c.id: "ENABLED" for c in campaigns}, validate_only=True)
        return (
            f"would enable {_ids(campaigns)} ({self._budgets(campaigns)}); "
            f"API {self.config.api_version} accepted a validate-only ENABLE, nothing changed"
        )

    # -- reading and switching ----------------------------------------------------------------

    async def _read(self) -> list[Campaign]:
        """The configured campaigns in config order; a missing one is a permanent error."""
        found = await self._fetch()
        self._raise_missing(found)
        return [found[cid] for cid in self.config.campaign_ids]

    async def _fetch(self) -> dict[str, Campaign]:
        return await self._call(f"reading campaigns {', '.join(self.config.campaign_ids)}", self._api.campaigns)

    async def _pause(self) -> None:
        # Pause what is there before complaining about what is not: stopping spend comes first.
        found = await self._fetch()
        todo = {cid: "PAUSED" for cid, c in found.items() if c.status == "ENABLED"}
        if todo:
            await self._mutate(todo, validate_only=False)
        self._raise_missing(found)

    async def _mutate(self, statuses: dict[str, str], *, validate_only: bool) -> None:
        verb = "validating" if validate_only else "setting"
        changes = ", ".join(f"{cid} {status}" for cid, status in statuses.items())
        await self._call(f"{verb} campaign status ({changes})", self._api.set_status, statuses, validate_only)

    async def _call(self, doing: str, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await self._threads.run(fn, *args)
        except ActionError:
            raise
        except Exception as err:
            # `from None`: the client's exception chain carries call metadata; keep it out of logs.
            raise ads_error(
                err, doing=doing, key=self.key, customer=_dashed(self.config.customer_id), secrets=self._api.secrets()
            ) from None

    # -- guards -------------------------------------------------------------------------------

    def _raise_missing(self, found: dict[str, Campaign]) -> None:
        missing = [cid for cid in self.config.campaign_ids if cid not in found]
        if missing:
            raise ActionError(
                f"{self.key}: campaign {', '.join(missing)} not found in customer "
                f"{_dashed(self.config.customer_id)}. Check {self.key}.campaign_ids and {self.key}.customer_id "
                "against the Google Ads account (a campaign id is in the campaign's URL as campaignId=…).",
                permanent=True,
            )

    def _guard(self, campaigns: list[Campaign]) -> None:
        cap = self.config.max_daily_budget
        for c in campaigns:
            if c.budget > cap:
                raise ActionError(
                    f"{self.key}: refusing to enable: campaign {c.id} has a daily budget of "
                    f"{_money(c.budget)} {c.currency}, above the cap of {_money(cap)} "
                    f"({self.key}.max_daily_budget). Lower the campaign's budget in Google Ads or raise "
                    "the cap; nothing was enabled.",
                    permanent=True,
                )
            if c.status not in ("ENABLED", "PAUSED"):
                raise ActionError(
                    f"{self.key}: campaign {c.id} is {c.status} and cannot be enabled. Prepare a new "
                    f"campaign (paused) and put its id in {self.key}.campaign_ids; nothing was enabled.",
                    permanent=True,
                )

    async def _past_max_active(self, incident: Incident) -> bool:
        now = self.deps.now()
        if now - incident.since < self.config.max_active:
            return False
        override = await self.deps.store.override(self.deps.portal_id, now)
        return not (override is not None and override.mode == "on")  # "on" = staff confirmed

    def _max_active_error(self, incident: Incident, what: str, observed: bool | None) -> ActionError:
        portal = self.deps.portal_id
        ran = format_duration(self.deps.now() - incident.since)
        message = (
            f"{self.key}: {what} campaigns {', '.join(self.config.campaign_ids)}: failover of {portal} has "
            f"been on for {ran}, the limit is {format_duration(self.config.max_active)} ({self.key}.max_active). "
            f"If {portal} is still down and the ads should keep running, staff confirm with "
            f'`portalguard failover on {portal} --reason "..."`.'
        )
        # The same topic for the pause and for a refused enable (after a restart): staff hear it once.
        details = {"max_active": self.config.max_active}
        return ActionError(message, permanent=True, observed=observed, topic="ads_max_active", details=details)

    def _budgets(self, campaigns: list[Campaign]) -> str:
        budgets = "/".join(_money(c.budget) for c in campaigns)
        currency = campaigns[0].currency if campaigns else ""
        return f"daily budgets {budgets} {currency} (cap {_money(self.config.max_daily_budget)})"


# -- the blocking side --------------------------------------------------------------------------

_GRPC_ROOTS_ENV = "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"
_STALE_TOKEN = frozenset({"OAUTH_TOKEN_EXPIRED", "OAUTH_TOKEN_INVALID"})


class _AdsApi:
    """Builds the client once and makes the two calls. Its methods block: run them in threads."""

    def __init__(self, config: GoogleAdsConfig, key: str) -> None:
        self._config = config
        self._key = key
        self._lock = threading.Lock()  # one build, one token refresh at a time
        self._built: tuple[Any, Any, Any] | None = None  # (client, GoogleAdsService, CampaignService)
        self._creds: Credentials | None = None
        self._token_request: Callable[..., Any] | None = None

    def secrets(self) -> list[str]:
        cred = self._config.credentials
        token = self._creds.token if self._creds is not None else None
        values = [cred.developer_token, cred.client_secret, cred.refresh_token]
        return [*(s.get_secret_value() for s in values), token or ""]

    def build(self) -> tuple[Any, Any, Any]:
        with self._lock:
            if self._built is None:
                self._built = self._build()
            return self._built

    def _build(self) -> tuple[Any, Any, Any]:
        cfg, cred = self._config, self._config.credentials
        required = {
            "client_id": cred.client_id,
            "client_secret": cred.client_secret.get_secret_value(),
            "refresh_token": cred.refresh_token.get_secret_value(),
        }
        empty = [name for name, value in required.items() if not value]
        if empty:
            raise ActionError(
                f"{self._key}: credentials.{', credentials.'.join(empty)} not set. Create an OAuth client "
                "and a refresh token for a user who can manage the account, and put them in the config.",
                permanent=True,
            )
        if cfg.ca_file:  # gRPC reads this once per process, when it creates its first TLS channel
            os.environ[_GRPC_ROOTS_ENV] = cfg.ca_file
        from google.ads.googleads.client import GoogleAdsClient
        from google.auth.transport.requests import Request
        from google.oauth2.credentials import Credentials

        self._creds = Credentials(
            token=None,
            refresh_token=cred.refresh_token.get_secret_value(),
            client_id=cred.client_id,
            client_secret=cred.client_secret.get_secret_value(),
            token_uri=cred.token_uri,
        )
        # verify= per request: a session's verify would lose to $REQUESTS_CA_BUNDLE.
        tls = {"verify": cfg.ca_file} if cfg.ca_file else {}
        self._token_request = functools.partial(Request(), timeout=cfg.timeout, **tls)
        client = GoogleAdsClient(
            credentials=self._creds,
            developer_token=cred.developer_token.get_secret_value(),
            login_customer_id=cfg.login_customer_id,
            endpoint=cfg.endpoint,  # None: Google's
            use_proto_plus=True,
            version=cfg.api_version,
        )
        return client, client.get_service("GoogleAdsService"), client.get_service("CampaignService")

    def campaigns(self) -> dict[str, Campaign]:
        _, ads, _ = self.build()
        ids = ", ".join(self._config.campaign_ids)
        query = (
            "SELECT campaign.id, campaign.status, campaign_budget.amount_micros, customer.currency_code "
            f"FROM campaign WHERE campaign.id IN ({ids})"
        )

        def search() -> dict[str, Campaign]:  # iterating the pager may fetch pages: stay in this thread
            rows = ads.search(customer_id=self._config.customer_id, query=query, timeout=self._config.timeout)
            return {str(r.campaign.id): _campaign(r) for r in rows}

        return self._authorized(search)

    def set_status(self, statuses: dict[str, str], validate_only: bool) -> None:
        client, _, service = self.build()
        operations = []
        for cid, status in statuses.items():
            op = client.get_type("CampaignOperation")
            op.update.resource_name = service.campaign_path(self._config.customer_id, cid)
            op.update.status = client.enums.CampaignStatusEnum[status]
            op.update_mask.paths.append("status")  # only the status: budgets, bids etc. stay as they are
            operations.append(op)
        request = {"customer_id": self._config.customer_id, "operations": operations, "validate_only": validate_only}
        self._authorized(lambda: service.mutate_campaigns(request=request, timeout=self._config.timeout))

    def _authorized(self, call: Callable[[], T]) -> T:
        """Run ``call`` with a fresh access token; once more after the API calls the token stale.

        The token is refreshed here rather than in gRPC's auth plugin, where a refused refresh token
        would surface as UNAVAILABLE (looking transient) and neither ``ca_file`` nor ``timeout``
        would apply. Retrying an auth failure is safe: the API did not process the request.
        """
        self._refresh(force=False)
        try:
            return call()
        except Exception as err:
            if not _stale_token(err):
                raise
        self._refresh(force=True)
        return call()

    def _refresh(self, force: bool) -> None:
        with self._lock:
            assert self._creds is not None and self._token_request is not None  # build() ran
            if force or not self._creds.valid:
                self._creds.refresh(self._token_request)


def _campaign(row: Any) -> Campaign:
    return Campaign(
        id=str(row.campaign.id),
        status=row.campaign.status.name,
        budget=row.campaign_budget.amount_micros / 1_000_000,
        currency=row.customer.currency_code,
    )


def _stale_token(err: Exception) -> bool:
    failure = getattr(err, "failure", None)  # GoogleAdsException
    return failure is not None and any(_error_code(e)[1] in _STALE_TOKEN for e in failure.errors)


# -- errors: the one mapping --------------------------------------------------------------------

# Retrying helps with these gRPC statuses; the others mean the request or the setup is wrong.
_TRANSIENT_STATUSES = frozenset(
    {"UNAVAILABLE", "RESOURCE_EXHAUSTED", "INTERNAL", "ABORTED", "UNKNOWN", "CANCELLED", "DEADLINE_EXCEEDED"}
)
_STATUS_KINDS = {
    "DEADLINE_EXCEEDED": "timeout",
    "UNAUTHENTICATED": "auth",
    "PERMISSION_DENIED": "authz",
    "NOT_FOUND": "not_found",
}
_HINTS = {
    "transient": "Retrying with backoff; nothing to do unless it persists.",
    "timeout": "No answer within {key}.timeout; retrying with backoff.",
    "auth": "Check {key}.credentials (developer_token, client_id, client_secret, refresh_token); "
    "a revoked or expired refresh token needs a new OAuth consent.",
    "authz": "Make sure the OAuth user may manage customer {customer}, that {key}.login_customer_id is "
    "its manager account (if any) and that the developer token is approved for live accounts.",
    "not_found": "Check {key}.customer_id and {key}.campaign_ids against the Google Ads account.",
    "invalid": "Check {key} (api_version, endpoint, campaign_ids) against the Google Ads error above.",
}
_RETRIED = frozenset({"transient", "timeout"})
_PERMANENT_PRIORITY = ("auth", "authz", "not_found", "invalid")


def ads_error(err: BaseException, *, doing: str, key: str, customer: str, secrets: Iterable[str] = ()) -> ActionError:
    """Map a failure of the Google Ads client to an ActionError: transient (retried) or permanent.

    The message says what failed, for which customer, the request-id when there is one and what to
    do next. Every value in ``secrets`` is cut out of it, whatever the client put in its text.
    """
    kind, detail, request_id = _classify(err)
    rid = f" (request-id {request_id})" if request_id else ""
    hint = _HINTS[kind].format(key=key, customer=customer)
    message = f"{key}: {doing} in customer {customer} failed: {detail.rstrip('. ')}{rid}. {hint}"
    message = scrub_urls(message)  # the client's text may quote a URL (token endpoint, proxy)
    for secret in secrets:
        if secret:
            message = message.replace(secret, "[redacted]")
    return ActionError(message, permanent=kind not in _RETRIED)


def _classify(err: BaseException) -> tuple[str, str, str | None]:
    """(kind, detail, request id) of any exception the client raises."""
    import grpc
    from google.api_core import exceptions as core
    from google.auth import exceptions as auth

    failure = getattr(err, "failure", None)
    if failure is not None and hasattr(failure, "errors"):  # GoogleAdsException
        return _classify_ads_failure(err, failure)
    if isinstance(err, auth.RefreshError):
        kind = "transient" if getattr(err, "retryable", False) else "auth"
        return kind, f"the OAuth token endpoint refused the refresh token ({_first_arg(err)})", None
    if isinstance(err, auth.TransportError):
        return "transient", f"the OAuth token endpoint is unreachable ({type(err.__cause__ or err).__name__})", None
    if isinstance(err, core.GoogleAPICallError):
        status = err.grpc_status_code.name if err.grpc_status_code else "UNKNOWN"
        return _status_kind(status), f"{status}: {err.message}", _request_id(err.response)
    if isinstance(err, grpc.Call):  # a bare gRPC error the client did not wrap
        return _status_kind(err.code().name), f"{err.code().name}: {err.details()}", _request_id(err)
    return "transient", f"{type(err).__name__}: {err}", None


def _classify_ads_failure(err: BaseException, failure: Any) -> tuple[str, str, str | None]:
    codes = [(*_error_code(e), e.message) for e in failure.errors]
    request_id = getattr(err, "request_id", None) or failure.request_id or None
    if not codes:
        call = getattr(err, "error", None)  # the grpc.Call the failure came with
        status = call.code().name if hasattr(call, "code") else "UNKNOWN"
        return _status_kind(status), status, request_id
    kinds = {_ads_kind(field, name) for field, name, _ in codes}
    # Transient only if every error is; otherwise the most actionable hint wins.
    kind = next((k for k in _PERMANENT_PRIORITY if k in kinds), "transient")
    detail = "; ".join(f"{field.upper()}.{name}: {message}" for field, name, message in codes[:3])
    return kind, detail, request_id


def _error_code(error: Any) -> tuple[str, str]:
    """("authentication_error", "OAUTH_TOKEN_REVOKED") of one GoogleAdsError."""
    code = error.error_code
    field = type(code).pb(code).WhichOneof("error_code") or "unknown_error"
    value = getattr(code, field, None)
    return field, getattr(value, "name", str(value))


def _ads_kind(field: str, name: str) -> str:
    if "NOT_FOUND" in name or ("CUSTOMER_ID" in name and "INVALID" in name):
        return "not_found"
    if field == "authentication_error":
        return "auth"
    if field == "authorization_error" or name == "ACCESS_PROHIBITED":
        return "authz"
    if field in ("internal_error", "quota_error") or name == "CONCURRENT_MODIFICATION":
        return "transient"  # Google's side, load, or a race: the same request may pass later
    return "invalid"


def _status_kind(status: str) -> str:
    return _STATUS_KINDS.get(status) or ("transient" if status in _TRANSIENT_STATUSES else "invalid")


def _request_id(call: object) -> str | None:
    try:
        metadata = call.trailing_metadata() or ()  # type: ignore[attr-defined]
    except Exception:  # not a call, or no metadata
        return None
    return next((str(v) for k, v in metadata if k == "request-id"), None)


def _first_arg(err: BaseException) -> str:
    return str(err.args[0]) if err.args else type(err).__name__


# -- formatting ---------------------------------------------------------------------------------


def _money(amount: float) -> str:
    return f"{amount:,.0f}" if amount == int(amount) else f"{amount:,.2f}"


def _dashed(customer_id: str) -> str:
    """1234567890 -> 123-456-7890, as the Google Ads UI shows it."""
    return f"{customer_id[:3]}-{customer_id[3:6]}-{customer_id[6:]}"


def _ids(campaigns: list[Campaign]) -> str:
    noun = "campaign" if len(campaigns) == 1 else "campaigns"
    return f"{noun} {', '.join(c.id for c in campaigns)}"


def _statuses(campaigns: list[Campaign]) -> str:
    counts: dict[str, int] = {}
    for c in campaigns:
        counts[c.status] = counts.get(c.status, 0) + 1
    if len(counts) == 1:
        return f"{_ids(campaigns)} {campaigns[0].status}"
    return f"{_ids(campaigns)}: " + ", ".join(f"{n} {status}" for status, n in counts.items())
