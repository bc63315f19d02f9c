"""Every dashboard query and every rule, executed by a real Prometheus against live metrics.

Prometheus (Debian's binary) scrapes ``metrics_target`` (a real ``portalguard run`` process against the
portal simulator, see ``tests/dashboards/realtarget.py``) every second and evaluates rules.yml every second.
The target is driven through the stages of ``livestack.STAGES``: an outage (the portal answers 500,
failover ON, patients send booking requests, one webhook action fails and its preflight too), the
recovery, the portal down again while failover is kept off by hand, the monitor's own network going
down, and finally the process killed with SIGKILL. Each expression must parse and return data by its
stage.

``NOT_EXPORTED`` names the series the real service cannot export in this test yet; the expressions
using them are strict xfails (so the entry must go once the service exports them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from tests.dashboards import livestack

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

PORTAL_VALUES = (".*", "epark-shibuya")  # the "All" value, and one portal picked in the dropdown
# When an expression can first return data; everything else returns data during the outage.
STAGE = {
    "annotation Failover switched off": "recovered",
    "alert PortalDownWhileSuppressed": "kept_off",
    "alert MonitorNetworkDegraded": "network_down",
    "alert PortalguardStale": "dead",
}
TIMEOUT = 30.0
# Series the real service cannot export here yet, and why.
_NO_MAILBOX = (
    "the live target reads no mailbox (that needs Dovecot); the mail source's metrics are checked against a "
    "real Dovecot in tests/mirror/test_mail_imap.py"
)
NOT_EXPORTED: dict[str, str] = {
    "portalguard_mirror_mail_last_success_timestamp_seconds": _NO_MAILBOX,
    "portalguard_mirror_mail_unparsed_total": _NO_MAILBOX,
    "portalguard_mirror_mail_ignored_total": _NO_MAILBOX,
}
# Expressions the real service cannot make true within this test, and why (strict xfail: they must
# parse and return nothing; their firing is proven by promtool's unit tests in rules_test.yml).
_ONE_SITE = (
    "the live target is one instance on a SQLite store: always its own leader, its own site always up "
    "(several sites on one PostgreSQL store are needed)"
)
NOT_REACHED: dict[str, str] = {
    "alert MirrorStale": "needs 3 x mirror.every (at least 3 min) without a successful sync while the portal is up",
    "alert MirrorStale (never_synced)": "the target's mirror syncs at start; a never-synced mirror needs 30 min",
    "alert StoreDown": "the live target's store keeps answering; the gauge going to 0 is proven against a halted "
    "PostgreSQL in tests/e2e/test_postgres_process.py",
    "alert NoLeader": _ONE_SITE,
    "alert TwoLeaders": _ONE_SITE,
    "alert SiteDown": _ONE_SITE,
}
GAP_TIMEOUT = 3.0  # a known gap: long enough to see data that does arrive (the outage stage took seconds)


@dataclass(frozen=True)
class Case:
    id: str
    expr: str
    kind: str  # instant | range
    stage: str

    @property
    def gap(self) -> str | None:
        """Why this expression cannot return data from the real service yet (None: it must)."""
        reasons = [NOT_EXPORTED[n] for n in sorted(livestack.used_metric_names(self.expr)) if n in NOT_EXPORTED]
        reasons += [NOT_REACHED[self.id]] if self.id in NOT_REACHED else []
        return "; ".join(reasons) or None

    def param(self) -> object:
        marks = [pytest.mark.xfail(strict=True, raises=TimeoutError, reason=self.gap)] if self.gap else []
        return pytest.param(self, id=self.id, marks=marks)


def cases() -> list[Case]:
    dashboard = livestack.load_dashboard()
    found: list[Case] = []
    for q in livestack.panel_queries(dashboard):
        for portal in PORTAL_VALUES if "$portal" in q.expr else ("",):
            suffix = f" portal={portal}" if portal else ""
            kind = "instant" if q.instant else "range"
            found.append(Case(f"panel {q.id}{suffix}", q.expr.replace("$portal", portal), kind, "outage"))
    for name, expr in livestack.annotation_queries(dashboard):
        found.append(Case(f"annotation {name}", expr, "range", "outage"))
    for rule in livestack.load_rules():
        name = f"alert {rule['alert']}" if "alert" in rule else f"record {rule['record']}"
        if "reason" in rule.get("labels", {}):  # two rules of one alert, told apart by their reason
            name += f" ({rule['labels']['reason']})"
        found.append(Case(name, rule["expr"], "instant", "outage"))
    found = [Case(c.id, c.expr, c.kind, STAGE.get(c.id, c.stage)) for c in found]
    return sorted(found, key=lambda c: livestack.STAGES.index(c.stage))  # stable: the file's order


def test_stage_overrides_name_real_expressions() -> None:
    assert set(STAGE) | set(NOT_REACHED) <= {c.id for c in cases()}


def test_every_metric_used_is_in_the_live_exposition(live: livestack.LiveStack) -> None:
    live.reach("outage")
    exported = {
        s["metric"]["__name__"]
        for s in live.prom.query(f'group by (__name__) ({{job="{livestack.JOB}",__name__=~"portalguard_.+"}})')
    }
    used = set()
    for case in cases():
        used |= {n for n in livestack.used_metric_names(case.expr) if n.startswith("portalguard_")}
    assert used - exported == set(NOT_EXPORTED), (
        f"used but not exported by the target: {sorted(used - exported)}; known gaps: {sorted(NOT_EXPORTED)}"
    )


@pytest.mark.parametrize("case", [c.param() for c in cases()])
def test_expression_returns_data(live: livestack.LiveStack, case: Case) -> None:
    try:
        live.reach(case.stage)
    except TimeoutError as err:  # not the TimeoutError a known gap expects
        pytest.fail(f"the scenario did not reach {case.stage!r}: {err}")

    def result() -> list[dict[str, object]]:
        now = time.time()
        expr = livestack.substitute(case.expr, range_s=now - live.started, interval_s=5)
        if case.kind == "instant":
            return live.prom.query(expr)
        return live.prom.query_range(expr, live.started, now, step=1)

    try:
        livestack.wait_until(result, GAP_TIMEOUT if case.gap else TIMEOUT, f"{case.id} to return data")
    except livestack.QueryError as err:
        pytest.fail(f"{case.id}: Prometheus rejected the query: {err}\n{case.expr}")
    except TimeoutError as err:
        if case.gap:
            raise  # the expected failure (strict xfail): it parsed, and returned nothing
        pytest.fail(f"{err}\n{case.expr}")
