"""The ``google_ads`` action: the real google-ads client against the local fake API.

The fake (``failover.fakes.google_ads_server``) speaks gRPC over TLS and OAuth over HTTPS on
127.0.0.1, checks the developer token and the access token, and records every call, so these
tests see exactly what the action would do to a real account.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from failover.actions.base import ActionError, Incident
from failover.actions.google_ads import GoogleAds, GoogleAdsConfig, ads_error
from failover.actions.table import build_action
from failover.fakes import google_ads_server as fake
from failover.fakes.google_ads_server import FakeGoogleAds
from failover.service import action_context
from failover.settings import Settings
from failover.store import AsyncStore

pytestmark = pytest.mark.anyio

PORTAL = "epark"
SECRETS = (fake.DEVELOPER_TOKEN, fake.REFRESH_TOKEN, fake.CLIENT_SECRET, "fake-access-token")


class StaffRecorder:
    def __init__(self, store: AsyncStore) -> None:
        self.store = store
        self.sent: list[tuple[str, str | None, dict[str, Any]]] = []

    async def send(self, topic: str, portal: str | None, *, claim: str | None = None, **fields: Any) -> bool:
        if claim is not None and not await self.store.claim(claim):
            return False
        self.sent.append((topic, portal, fields))
        return True


@pytest.fixture(scope="session", autouse=True)
def _google_ads_imported() -> None:
    """Pay the ~1 s import of google-ads once per session, not inside the first test's timing."""
    import google.ads.googleads.client
    import google.ads.googleads.v26.services.services.campaign_service
    import google.ads.googleads.v26.services.services.google_ads_service  # noqa: F401


@pytest.fixture
def ads() -> Iterator[FakeGoogleAds]:
    with FakeGoogleAds(campaigns={"111": ("PAUSED", 3000), "222": ("PAUSED", 5000)}) as server:
        yield server


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncStore]:
    s = AsyncStore(tmp_path / "s.db")
    yield s
    await s.close()


@pytest.fixture
def make(ads: FakeGoogleAds, store: AsyncStore, clock: Any) -> Any:
    """make(**config overrides) -> a GoogleAds action (through the ACTIONS table) on the fake."""

    def build(**overrides: Any) -> GoogleAds:
        settings = Settings.model_validate(
            {
                "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
                "actions": {"ads": ads.action_config(**overrides)},
                "portals": {
                    PORTAL: {
                        "endpoints": {"public": {"url": "http://127.0.0.1:9/"}},
                        "book_url": "http://127.0.0.1:9/book",
                        "actions": ["ads"],
                    }
                },
            }
        )
        # http is not used by this action; staff records what it would be told
        deps = action_context(settings, PORTAL, store, None, StaffRecorder(store), clock)  # type: ignore[arg-type]
        action = build_action("ads", settings.actions["ads"], deps)
        assert isinstance(action, GoogleAds)
        return action

    return build


def incident(clock: Any, *, ago: float = 60.0, drill: bool = False) -> Incident:
    return Incident(PORTAL, 1, "public: http_status (HTTP 503)", clock.now - ago, drill=drill)


def assert_no_secrets(err: BaseException) -> None:
    text = str(err)
    for secret in SECRETS:
        assert secret not in text


# -- switching -----------------------------------------------------------------------------------


async def test_observe_apply_revert_are_idempotent(ads: FakeGoogleAds, make: Any, clock: Any) -> None:
    action = make()
    assert await action.observe() is False

    await action.apply(incident(clock))
    assert (ads.status("111"), ads.status("222")) == ("ENABLED", "ENABLED")
    assert await action.observe() is True
    await action.apply(incident(clock))  # already on: success, no second mutate
    assert [m.statuses for m in ads.mutations()] == [{"111": "ENABLED", "222": "ENABLED"}]

    await action.revert(incident(clock))
    await action.revert(incident(clock))
    assert (ads.status("111"), ads.status("222")) == ("PAUSED", "PAUSED")
    assert await action.observe() is False
    assert len(ads.mutations()) == 2
    assert len(ads.calls_of("token")) == 1  # one access token, reused


async def test_a_mix_reads_partly_on_and_apply_enables_only_the_paused(
    ads: FakeGoogleAds, make: Any, clock: Any
) -> None:
    ads.set("111", status="ENABLED")
    action = make()
    assert await action.observe() is None  # neither on nor off: the orchestrator converges it
    await action.apply(incident(clock))
    assert [m.statuses for m in ads.mutations()] == [{"222": "ENABLED"}]
    assert await action.observe() is True


async def test_a_mix_is_paused_by_revert(ads: FakeGoogleAds, make: Any, clock: Any) -> None:
    ads.set("111", status="ENABLED")  # enabled by hand while failover is off
    action = make()
    await action.revert(incident(clock))
    assert await action.observe() is False


async def test_budget_above_the_cap_is_refused_and_nothing_enabled(ads: FakeGoogleAds, make: Any, clock: Any) -> None:
    action = make(max_daily_budget=4000)
    with pytest.raises(ActionError) as caught:
        await action.apply(incident(clock))
    err = caught.value
    assert err.permanent
    assert "campaign 222" in err.message and "5,000 JPY" in err.message and "4,000" in err.message
    assert "actions.ads.max_daily_budget" in err.message
    assert ads.mutations() == []
    assert ads.status("111") == "PAUSED"


async def test_a_removed_campaign_is_refused(ads: FakeGoogleAds, make: Any, clock: Any) -> None:
    ads.set("222", status="REMOVED")
    with pytest.raises(ActionError) as caught:
        await make().apply(incident(clock))
    assert caught.value.permanent and "222 is REMOVED" in caught.value.message
    assert ads.mutations() == []


async def test_a_missing_campaign_is_permanent_and_named(ads: FakeGoogleAds, make: Any) -> None:
    action = make()
    ads.remove("222")
    with pytest.raises(ActionError) as caught:
        await action.observe()
    err = caught.value
    assert err.permanent
    assert "campaign 222 not found in customer 123-456-7890" in err.message
    assert "actions.ads.campaign_ids" in err.message


async def test_revert_pauses_what_it_finds_before_reporting_the_missing(
    ads: FakeGoogleAds, make: Any, clock: Any
) -> None:
    action = make()
    ads.set("111", status="ENABLED")
    ads.remove("222")
    with pytest.raises(ActionError) as caught:
        await action.revert(incident(clock))
    assert caught.value.permanent
    assert ads.status("111") == "PAUSED"


async def test_a_drill_incident_never_enables(ads: FakeGoogleAds, make: Any, clock: Any) -> None:
    await make().apply(incident(clock, drill=True))
    assert ads.mutations() == []
    assert ads.status("111") == "PAUSED"


# -- max_active ----------------------------------------------------------------------------------


async def test_max_active_pauses_once_and_blocks_apply(
    ads: FakeGoogleAds, make: Any, clock: Any, store: AsyncStore
) -> None:
    action = make(max_active="1h")
    await action.apply(incident(clock, ago=600))
    await action.maintain(incident(clock, ago=600))  # within the limit: nothing, no API call
    calls = len(ads.calls)
    await action.maintain(incident(clock, ago=600))
    assert len(ads.calls) == calls

    late = incident(clock, ago=3601)
    with pytest.raises(ActionError) as caught:
        await action.maintain(late)
    err = caught.value
    assert err.permanent and err.observed is False  # paused: the orchestrator records it off
    assert (err.topic, err.details) == ("ads_max_active", {"max_active": 3600.0})
    assert "actions.ads.max_active" in err.message and "1h" in err.message
    assert f"portalguard failover on {PORTAL} --reason" in err.message
    assert (ads.status("111"), ads.status("222")) == ("PAUSED", "PAUSED")

    calls = len(ads.calls)
    with pytest.raises(ActionError):
        await action.maintain(late)  # already capped: no more API calls each tick
    assert len(ads.calls) == calls
    # Staff hear of it from the orchestrator, once, with this permanent error's message.
    assert action.deps.staff.sent == []

    with pytest.raises(ActionError) as refused:
        await action.apply(late)  # a retry by the orchestrator must not undo the pause
    assert refused.value.permanent and "refusing to enable" in refused.value.message
    assert refused.value.topic == "ads_max_active"  # the same staff message: not sent twice
    assert ads.status("111") == "PAUSED"


async def test_max_active_yields_to_a_manual_on_override(
    ads: FakeGoogleAds, make: Any, clock: Any, store: AsyncStore
) -> None:
    action = make(max_active="1h")
    late = incident(clock, ago=7200)
    store.sync.set_override(PORTAL, "on", "ads confirmed", None)
    await action.apply(late)
    await action.maintain(late)
    assert ads.status("111") == "ENABLED"

    store.sync.clear_override(PORTAL)  # back to automatic: the limit applies again at once
    with pytest.raises(ActionError):
        await action.maintain(late)
    assert ads.status("111") == "PAUSED"


# -- preflight and drill -------------------------------------------------------------------------


async def test_check_reads_and_validates_without_changing(ads: FakeGoogleAds, make: Any) -> None:
    detail = await make().check()
    assert detail == "campaigns 111, 222 PAUSED, daily budgets 3,000/5,000 JPY (cap 5,000), API v26 reachable"
    mutates = ads.calls_of("MutateCampaigns")
    assert [(m.validate_only, m.statuses) for m in mutates] == [(True, {"111": "PAUSED", "222": "PAUSED"})]
    assert ads.mutations() == []


async def test_check_refuses_a_budget_above_the_cap(make: Any) -> None:
    with pytest.raises(ActionError) as caught:
        await make(max_daily_budget=1000).check()
    assert caught.value.permanent and "max_daily_budget" in caught.value.message


async def test_drill_validates_an_enable_and_changes_nothing(ads: FakeGoogleAds, make: Any, clock: Any) -> None:
    detail = await make().drill(incident(clock, drill=True))
    assert "would enable campaigns 111, 222" in detail and "nothing changed" in detail
    mutates = ads.calls_of("MutateCampaigns")
    assert [(m.validate_only, m.statuses) for m in mutates] == [(True, {"111": "ENABLED", "222": "ENABLED"})]
    assert (ads.status("111"), ads.status("222")) == ("PAUSED", "PAUSED")


# -- faults --------------------------------------------------------------------------------------


FAULTS = [  # (injected fault, permanent?, what the message must say)
    ("UNAVAILABLE", False, "UNAVAILABLE"),
    ("RESOURCE_EXHAUSTED", False, "RESOURCE_EXHAUSTED"),
    ("INTERNAL", False, "INTERNAL"),
    ("CONCURRENT_MODIFICATION", False, "DATABASE_ERROR.CONCURRENT_MODIFICATION"),
    ("AUTHENTICATION", True, "actions.ads.credentials"),
    ("AUTHORIZATION", True, "may manage customer 123-456-7890"),
    ("INVALID_GRANT", True, "refused the refresh token"),
]


@pytest.mark.parametrize(("fault", "permanent", "says"), FAULTS, ids=[f[0].lower() for f in FAULTS])
async def test_faults_map_to_transient_or_permanent(
    ads: FakeGoogleAds, make: Any, clock: Any, fault: str, permanent: bool, says: str
) -> None:
    action = make()
    await action.observe()  # an access token is in hand: INVALID_GRANT must revoke and refuse it
    ads.fail_next(fault)
    with pytest.raises(ActionError) as caught:
        await action.apply(incident(clock))
    err = caught.value
    assert err.permanent is permanent
    assert says in err.message
    assert "customer 123-456-7890" in err.message
    if fault != "INVALID_GRANT":
        assert "request-id fake-req-" in err.message
    assert_no_secrets(err)
    assert ads.mutations() == []
    if not permanent:  # the fault is gone: the retry converges
        await action.apply(incident(clock))
        assert ads.status("111") == "ENABLED"


async def test_a_stale_access_token_is_refreshed_once_transparently(ads: FakeGoogleAds, make: Any) -> None:
    action = make()
    await action.observe()
    ads.revoke_access_tokens()  # expired early, or revoked server-side
    assert await action.observe() is False
    assert len(ads.calls_of("token")) == 2


@pytest.mark.parametrize("method", ["Search", "MutateCampaigns"])
async def test_a_hanging_call_times_out_as_transient_within_the_bound(
    ads: FakeGoogleAds, make: Any, clock: Any, method: str
) -> None:
    action = make(timeout="500ms")
    await action.observe()
    ads.fail_next("DEADLINE", method=method)
    started = time.monotonic()
    with pytest.raises(ActionError) as caught:
        await action.apply(incident(clock))
    assert time.monotonic() - started < 3
    assert not caught.value.permanent
    assert "DEADLINE_EXCEEDED" in caught.value.message and "actions.ads.timeout" in caught.value.message
    assert ads.status("111") == "PAUSED"


async def test_the_action_has_threads_of_its_own(make: Any) -> None:
    """A hung call elsewhere (Apprise) holds asyncio's shared pool (here its only thread): the ads
    are still switched."""
    action = make()
    loop, release = asyncio.get_running_loop(), threading.Event()
    loop.set_default_executor(ThreadPoolExecutor(1))
    hung = loop.run_in_executor(None, release.wait)
    try:
        assert await asyncio.wait_for(action.observe(), 10) is False
    finally:
        release.set()
        await hung
        action.close()


async def test_an_inaccessible_customer_is_permanent(make: Any) -> None:
    with pytest.raises(ActionError) as caught:
        await make(customer_id="9999999999").observe()
    err = caught.value
    assert err.permanent
    assert "USER_PERMISSION_DENIED" in err.message and "999-999-9999" in err.message
    assert_no_secrets(err)


async def test_a_wrong_developer_token_is_permanent_and_not_shown(ads: FakeGoogleAds, make: Any) -> None:
    cfg = ads.action_config()
    wrong = "wr0ngDevT0kenValue"
    with pytest.raises(ActionError) as caught:
        await make(credentials=cfg["credentials"] | {"developer_token": wrong}).observe()
    assert caught.value.permanent and "DEVELOPER_TOKEN_INVALID" in caught.value.message
    assert wrong not in str(caught.value)


async def test_unreachable_api_is_transient(ads: FakeGoogleAds, make: Any) -> None:
    action = make(endpoint="127.0.0.1:9", timeout="2s")  # discard port: nothing listens
    with pytest.raises(ActionError) as caught:
        await action.observe()
    assert not caught.value.permanent and "UNAVAILABLE" in caught.value.message


# -- setup ---------------------------------------------------------------------------------------


async def test_warm_builds_the_client_without_calling_the_api(ads: FakeGoogleAds, make: Any) -> None:
    await make().warm()
    assert ads.calls == []


async def test_missing_oauth_credentials_fail_permanently_at_warm(ads: FakeGoogleAds, make: Any) -> None:
    cfg = ads.action_config()
    with pytest.raises(ActionError) as caught:
        await make(credentials={"developer_token": cfg["credentials"]["developer_token"]}).warm()
    assert caught.value.permanent
    assert "credentials.client_id, credentials.client_secret, credentials.refresh_token" in caught.value.message


def test_campaign_ids_must_be_digits(ads: FakeGoogleAds) -> None:
    with pytest.raises(ValidationError):
        GoogleAdsConfig.model_validate(ads.action_config(campaign_ids=["111) OR (1=1"]))


def test_the_module_does_not_import_google_ads() -> None:
    code = (
        "import sys, failover.actions.google_ads, failover.settings; "
        "sys.exit('google.ads.googleads' in sys.modules or 'grpc' in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


# -- the mapping on its own (no network) ---------------------------------------------------------


def test_refresh_errors_map_by_retryability() -> None:
    from google.auth.exceptions import RefreshError, TransportError

    def mapped(err: BaseException) -> ActionError:
        return ads_error(err, doing="reading campaigns 111", key="actions.ads", customer="123-456-7890")

    assert mapped(RefreshError("invalid_grant: Bad Request", retryable=False)).permanent
    assert not mapped(RefreshError("server_error", retryable=True)).permanent
    assert not mapped(TransportError("connection refused")).permanent


def test_secrets_are_cut_from_any_message() -> None:
    err = ads_error(
        RuntimeError(f"boom {fake.DEVELOPER_TOKEN} and {fake.REFRESH_TOKEN}"),
        doing="reading campaigns 111",
        key="actions.ads",
        customer="123-456-7890",
        secrets=[fake.DEVELOPER_TOKEN, fake.REFRESH_TOKEN, ""],
    )
    assert_no_secrets(err)
    assert err.message.count("[redacted]") == 2
