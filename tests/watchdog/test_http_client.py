"""The probe client's trust: public CAs by default, plus ``probe.ca_file`` for a private CA."""

from __future__ import annotations

from pathlib import Path

import pytest

from failover.fakes.portal_simulator import PortalSimulator
from watchdog.http_client import make_probe_client
from watchdog.probes import probe_http
from watchdog.result import FailureKind
from watchdog.targets import Endpoint, ProbeSettings

pytestmark = pytest.mark.anyio


async def test_a_private_ca_is_trusted_only_when_configured(tmp_path: Path) -> None:
    async with PortalSimulator(tls=True, tls_days=12) as sim:
        ca = tmp_path / "ca.pem"
        ca.write_bytes(sim.cert_pem or b"")
        endpoint = Endpoint(url=sim.url("public"))
        async with make_probe_client(ProbeSettings()) as plain:
            refused = await probe_http(plain, endpoint, 5.0, ProbeSettings())
        trusting = ProbeSettings(ca_file=str(ca))
        async with make_probe_client(trusting) as client:
            accepted = await probe_http(client, endpoint, 5.0, trusting)
    assert refused.error_kind is FailureKind.TLS
    assert accepted.ok and accepted.tls_expiry == pytest.approx(sim.cert_not_after, abs=1)


def test_a_file_without_certificates_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("hello", encoding="utf-8")
    with pytest.raises(ValueError, match=r"not-a-cert.pem\" holds no PEM CA certificate"):
        ProbeSettings(ca_file=str(bad))
