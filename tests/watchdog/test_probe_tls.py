"""TLS: certificate expiry read from the probe's own connection; untrusted certificates fail."""

from __future__ import annotations

import httpx
import pytest

from failover.fakes.portal_simulator import PortalSimulator
from watchdog.http_client import make_probe_client
from watchdog.probes.canary import probe_canary
from watchdog.probes.http import probe_http
from watchdog.probes.login import probe_login
from watchdog.result import FailureKind
from watchdog.targets import Endpoint, Expect, Login, ProbeSettings

pytestmark = pytest.mark.anyio


async def test_expiry_of_a_trusted_certificate(tls_sim: PortalSimulator, settings: ProbeSettings):
    endpoint = Endpoint(url=tls_sim.url("public"), expect=Expect(contains=["さくら歯科"]))
    async with make_probe_client(settings, ssl_context=tls_sim.client_ssl_context()) as client:
        result = await probe_http(client, endpoint, 2.0, settings)
    assert result.ok, result
    assert result.tls_expiry == tls_sim.cert_not_after


async def test_expiry_is_reported_with_a_failure_too(tls_sim: PortalSimulator, settings: ProbeSettings):
    tls_sim.set_mode("error500", endpoints=("public",))
    async with make_probe_client(settings, ssl_context=tls_sim.client_ssl_context()) as client:
        result = await probe_http(client, Endpoint(url=tls_sim.url("public")), 2.0, settings)
    assert result.error_kind is FailureKind.HTTP_STATUS
    assert result.tls_expiry == tls_sim.cert_not_after


async def test_login_over_https(tls_sim: PortalSimulator, settings: ProbeSettings):
    username, password = tls_sim.credentials
    login = Login(username=username, password=password, success_contains=["ログアウト"])
    async with make_probe_client(settings, ssl_context=tls_sim.client_ssl_context()) as client:
        result = await probe_login(client, Endpoint(url=tls_sim.url("admin"), login=login), 2.0, settings)
    assert result.ok, result
    assert result.tls_expiry == tls_sim.cert_not_after


PROBE_KINDS = {
    "http": lambda client, sim, settings: probe_http(client, Endpoint(url=sim.url("public")), 2.0, settings),
    "canary": lambda client, sim, settings: probe_canary(client, sim.url("public"), 2.0, settings),
}


@pytest.mark.parametrize("probe", PROBE_KINDS.values(), ids=PROBE_KINDS.keys())
async def test_an_untrusted_certificate_is_a_tls_failure(
    probe, tls_sim: PortalSimulator, client: httpx.AsyncClient, settings: ProbeSettings
):
    # ``client`` trusts the system CAs only: the simulator's self-signed certificate is refused.
    result = await probe(client, tls_sim, settings)
    assert result.error_kind is FailureKind.TLS
    assert result.detail == "certificate not trusted: self-signed certificate"
    assert result.tls_expiry is None
    assert tls_sim.request_count() == 0  # nothing was sent over the unverified connection
