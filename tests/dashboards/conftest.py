"""Fixtures for the dashboard, rules and deployment tests.

``metrics_target`` is what Prometheus scrapes: a real ``portalguard run`` process against the portal
simulator, the fake Google Ads API and a notification receiver (``tests/dashboards/realtarget.py``), driven
through ``livestack.STAGES`` (outage, recovery, down while kept off by hand, our own network down, the
process killed).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.dashboards import livestack, realtarget


def require_binary(name: str) -> str:
    """The path of a Debian Prometheus tool; a missing one fails the test (it never skips silently)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is missing: run `make deps-debian` (installs Debian's prometheus package)")
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_binary("promtool")


@pytest.fixture(scope="module")
def metrics_target() -> Iterator[realtarget.RealPortalguard]:
    target = realtarget.RealPortalguard(portal="epark-shibuya")
    try:
        yield target
    finally:
        target.stop()


@pytest.fixture(scope="module")
def live(metrics_target: livestack.Target) -> Iterator[livestack.LiveStack]:
    require_binary("prometheus")
    with livestack.Prometheus(metrics_target.address) as prom:
        yield livestack.LiveStack(prom, metrics_target)
