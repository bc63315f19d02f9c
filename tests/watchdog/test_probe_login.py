"""The login probe against the simulator's admin side: CSRF token, session cookie, redirects."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import pytest

from failover.fakes.portal_simulator import PortalSimulator
from watchdog.probes.http import probe_http
from watchdog.probes.login import find_login_form, probe_login
from watchdog.result import FailureKind
from watchdog.targets import Endpoint, Expect, ProbeSettings

pytestmark = pytest.mark.anyio


def admin(sim: PortalSimulator, **login: object) -> Endpoint:
    username, password = sim.credentials
    spec = {"username": username, "password": password, "success_contains": ["ログアウト"], **login}
    return Endpoint.model_validate(
        {"url": sim.url("admin"), "expect": {"not_contains": ["メンテナンス中"]}, "login": spec}
    )


async def test_login_succeeds(sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings):
    result = await probe_login(client, admin(sim), 2.0, settings)
    assert result.ok, result
    assert result.status == 200  # the dashboard, after the 303
    assert sim.last_login_error is None
    assert sim.request_count("admin") == 3  # login page, POST, dashboard


@dataclass(frozen=True)
class Case:
    kind: FailureKind
    detail: str
    mode: str | None = None  # simulator mode of the admin endpoint
    login: dict[str, object] = field(default_factory=dict)
    timeout: float = 2.0


CASES = {
    "login-wrong-password": Case(FailureKind.LOGIN, "missing text 'ログアウト'", login={"password": "wrong-pw"}),
    "login-rejected": Case(FailureKind.LOGIN, "login not accepted", mode="login_rejected"),
    "login-success-text-absent": Case(FailureKind.LOGIN, "'予約管理'", login={"success_contains": ["予約管理"]}),
    "login-wrong-field-name": Case(FailureKind.LOGIN, "login not accepted", login={"username_field": "user"}),
    "http_status": Case(FailureKind.HTTP_STATUS, "HTTP 500", mode="error500"),
    "maintenance": Case(FailureKind.MAINTENANCE, "maintenance text", mode="maintenance"),
    "redirect": Case(FailureKind.REDIRECT, "other host error.invalid", mode="redirect"),
    "timeout": Case(FailureKind.TIMEOUT, "timed out", mode="hang", timeout=0.3),
    "connect": Case(FailureKind.CONNECT, "connection refused", mode="refuse"),
    "form-posts-to-other-host": Case(
        FailureKind.REDIRECT, "login form posts to other host", login={"form_action": "http://phish.invalid/login"}
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_failure_kinds(case: Case, sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings):
    if case.mode is not None:
        sim.set_mode(case.mode, endpoints=("admin",))
    result = await probe_login(client, admin(sim, **case.login), case.timeout, settings)
    assert result.error_kind is case.kind, result
    assert case.detail in result.detail
    assert sim.credentials[1] not in result.detail and "wrong-pw" not in result.detail


async def test_csrf_token_and_session_cookie_are_carried(
    sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings
):
    await probe_login(client, admin(sim, password="wrong-pw"), 2.0, settings)
    # The simulator got past its session and CSRF checks: only the credentials were wrong.
    assert sim.last_login_error == "credentials"


async def test_credentials_never_reach_another_host(
    sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings, offline_dns: list[str]
):
    await probe_login(client, admin(sim, form_action="http://phish.invalid/login"), 2.0, settings)
    assert offline_dns == []  # not even looked up


async def test_cookies_do_not_leak_between_probes(
    sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings
):
    assert (await probe_login(client, admin(sim), 2.0, settings)).ok
    assert not client.cookies  # the shared client kept nothing
    # A later probe of the dashboard is not logged in: it lands on the login page.
    dashboard = Endpoint(url=sim.url("admin", "/admin/dashboard"), expect=Expect(contains=["ログアウト"]))
    result = await probe_http(client, dashboard, 2.0, settings)
    assert result.error_kind is FailureKind.CONTENT


def test_the_password_form_is_preferred_over_a_search_form():
    page = """
    <form action="/search"><input name="q"><input type="hidden" name="lang" value="ja"></form>
    <form action="/session" method="post">
      <input type="hidden" name="csrf" value="t&amp;1"><input name="user"><input type="password" name="pw">
    </form>"""
    form = find_login_form(page, password_field="pw")
    assert form is not None
    assert form.action == "/session"
    assert form.hidden == {"csrf": "t&1"}


def test_without_a_password_input_the_first_form_is_taken():
    form = find_login_form('<form action="/a"></form><form action="/b"></form>', password_field="pw")
    assert form is not None and form.action == "/a"
    assert find_login_form("<p>no form</p>", password_field="pw") is None


async def test_an_https_login_is_never_posted_over_plain_http(settings: ProbeSettings) -> None:
    from watchdog.http_client import make_probe_client

    async with PortalSimulator(tls=True) as sim:
        insecure_action = sim.url("admin").replace("https://", "http://")
        endpoint = admin(sim, form_action=insecure_action)
        async with make_probe_client(settings, ssl_context=sim.client_ssl_context()) as client:
            before = sim.request_count("admin")
            result = await probe_login(client, endpoint, 2.0, settings)
        assert result.error_kind is FailureKind.LOGIN and "plain http" in result.detail
        assert sim.request_count("admin") == before + 1  # the login page only: no POST was made
