"""Static checks of the shipped dashboards, Prometheus rules and deployment files."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dashboards import livestack

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "dashboards"
PROM_DIR = DASHBOARDS / "prometheus"
RULES = PROM_DIR / "rules.yml"
RULES_TEST = PROM_DIR / "rules_test.yml"
DEPLOY = REPO / "deploy"
DS = {"type": "prometheus", "uid": "${datasource}"}
ALERTS = {
    "StoreDown",
    "PortalDown",
    "PortalDownWhileSuppressed",
    "FailoverActive",
    "FailoverActionFailing",
    "ActionNotReady",
    "MonitorNetworkDegraded",
    "PortalguardStale",
    "TLSCertExpiringSoon",
    "MirrorStale",
    "NoLeader",
    "TwoLeaders",
    "SiteDown",
}


def run(*cmd: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def dashboard() -> dict[str, Any]:
    return livestack.load_dashboard()


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def alert_rules() -> list[dict[str, Any]]:
    return [r for r in livestack.load_rules() if "alert" in r]


# ------------------------------------------------------------------------------------------- promtool


@pytest.mark.prometheus
def test_promtool_check_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
def test_promtool_unit_tests_pass(promtool: str) -> None:
    result = run(promtool, "test", "rules", str(RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
def test_promtool_check_config(promtool: str) -> None:
    result = run(promtool, "check", "config", str(PROM_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


# -------------------------------------------------------------------------------------------- rules


def test_the_alerts_of_the_issue_exist() -> None:
    assert {r["alert"] for r in alert_rules()} == ALERTS


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_has_for_severity_and_instructions(rule: dict[str, Any]) -> None:
    assert rule.get("for"), "every alert waits (for:) so a blip never pages"
    assert rule["labels"]["severity"] in {"critical", "warning"}
    summary, description = rule["annotations"]["summary"], rule["annotations"]["description"]
    assert len(summary) < 140, "the summary is what a phone notification shows"
    assert ": " in summary, "the summary says what happened, then what to do"
    assert len(description) > 150 and "$labels." in summary + description


def unit_test_cases() -> dict[str, list[dict[str, Any]]]:
    cases: dict[str, list[dict[str, Any]]] = {}
    for group in yaml.safe_load(RULES_TEST.read_text(encoding="utf-8"))["tests"]:
        for case in group.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], []).append(case)
    return cases


@pytest.mark.parametrize("alert", sorted(ALERTS))
def test_every_alert_has_a_firing_and_a_silent_unit_test(alert: str) -> None:
    cases = unit_test_cases().get(alert, [])
    assert any(c["exp_alerts"] for c in cases), f"no rules_test.yml case where {alert} fires"
    assert any(not c["exp_alerts"] for c in cases), f"no rules_test.yml case where {alert} stays silent"


def test_every_recording_rule_has_a_unit_test() -> None:
    tested = RULES_TEST.read_text(encoding="utf-8")
    for rule in livestack.load_rules():
        if "record" in rule:
            assert rule["record"] in tested


# ---------------------------------------------------------------------------------------- dashboard


def test_dashboard_json_is_up_to_date() -> None:
    result = run(sys.executable, str(DASHBOARDS / "build.py"), "--check")
    assert result.returncode == 0, result.stderr


def test_dashboard_round_trips_through_the_sdk_models() -> None:
    """grafana-foundation-sdk ships no JSON schema; its typed 11.6 models are the schema instead.

    Decoding the JSON into them and encoding it back loses every key the models do not know, so
    the round trip must be lossless except for the Prometheus annotation fields the models lack.
    """
    from grafana_foundation_sdk.cog import plugins
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    plugins.register_default_plugins()
    original = dashboard()
    again = json.loads(json.dumps(Dashboard.from_json(original), cls=JSONEncoder))
    prometheus_only = {"step", "titleFormat", "textFormat", "tagKeys", "useValueForTime"}
    for annotation in original["annotations"]["list"]:
        for key in prometheus_only:
            annotation.pop(key, None)
    assert again == original


def test_every_panel_queries_the_datasource_variable() -> None:
    for panel in panels():
        assert panel["datasource"] == DS, panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids) and all(ref_ids), f"{panel['title']}: refIds {ref_ids}"
        for target in panel["targets"]:
            assert target["datasource"] == DS and target["expr"].strip(), panel["title"]


def test_no_datasource_uid_is_hard_coded() -> None:
    def uids(node: Any) -> list[str]:
        if isinstance(node, list):
            return [u for v in node for u in uids(v)]
        if not isinstance(node, dict):
            return []
        ds = node.get("datasource")
        own = [ds.get("uid", "")] if isinstance(ds, dict) else []
        return own + [u for v in node.values() for u in uids(v)]

    found = uids(dashboard())
    assert found and set(found) <= {"${datasource}", "-- Grafana --"}


def test_panel_ids_are_unique_and_titles_distinct() -> None:
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    titles = [p["title"] for p in panels()]
    assert len(titles) == len(set(titles))


def test_panels_tile_the_grid_without_overlap() -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        pos = panel["gridPos"]
        assert pos["w"] > 0 and pos["h"] > 0 and pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_the_panels_the_issue_asks_for_exist() -> None:
    by_title = {p["title"]: p for p in panels()}
    for title in (
        "Verdict now",
        "Uptime (24h / 7d / 30d)",
        "Probe success per endpoint",
        "Probe latency per endpoint",
        "Failure reasons",
        "Actions: desired vs observed",
        "Action errors",
        "Booking requests received",
        "Canary status",
        "TLS days left",
    ):
        assert title in by_title
    assert by_title["Failover state timeline"]["type"] == "state-timeline"
    uptime = " ".join(t["expr"] for t in by_title["Uptime (24h / 7d / 30d)"]["targets"])
    for window in ("24h", "7d", "30d"):
        assert f"portal:portalguard_portal_up:ratio_{window}" in uptime


def test_the_sites_row_shows_leader_heartbeats_and_each_sites_verdict() -> None:
    rows = [p["title"] for p in dashboard()["panels"] if p["type"] == "row"]
    assert "Sites" in rows
    by_title = {p["title"]: p for p in panels()}
    exprs = {t: " ".join(q["expr"] for q in by_title[t]["targets"]) for t in ("Leader", "Sites alive")}
    assert "portalguard_leader" in exprs["Leader"] and "by (site)" in exprs["Sites alive"]
    timeline = by_title["Verdict per site"]
    assert timeline["type"] == "state-timeline"
    (target,) = timeline["targets"]
    assert "portalguard_portal_site_state" in target["expr"] and "by (portal, site)" in target["expr"]
    assert "{{site}}" in target["legendFormat"]


def test_variables_portal_and_datasource() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    portal = variables["portal"]
    assert portal["type"] == "query" and portal["datasource"] == DS
    assert portal["query"] == "label_values(portalguard_portal_up, portal)"
    assert portal["multi"] and portal["includeAll"]


@pytest.mark.parametrize("query", list(livestack.panel_queries(dashboard())), ids=lambda q: q.id)
def test_queries_of_per_portal_metrics_filter_by_the_portal_variable(query: livestack.PanelQuery) -> None:
    labels = livestack.metric_labels()
    used = livestack.used_metric_names(query.expr)
    per_portal = {n for n in used if ":" in n or "portal" in labels.get(n, ())}  # recorded: by portal
    selectors = query.expr.count("portalguard_")
    if per_portal:
        assert query.expr.count('portal=~"$portal"') == selectors, f"{query.id} ignores $portal somewhere"


def test_failover_transitions_are_annotated() -> None:
    annotations = dashboard()["annotations"]["list"]
    prometheus = [a for a in annotations if a["datasource"] == DS]
    assert {a["name"] for a in prometheus} == {"Failover switched on", "Failover switched off"}
    for annotation in prometheus:
        assert "portalguard_failover_active" in annotation["expr"] and annotation["enable"]


# ------------------------------------------------------------------------------------- metric names


def expressions() -> list[tuple[str, str]]:
    found = [(f"panel {q.id}", q.expr) for q in livestack.panel_queries(dashboard())]
    found += [(f"annotation {n}", e) for n, e in livestack.annotation_queries(dashboard())]
    found += [(f"rule {r.get('alert') or r.get('record')}", r["expr"]) for r in livestack.load_rules()]
    return found


@pytest.mark.parametrize(("where", "expr"), expressions(), ids=[w for w, _ in expressions()])
def test_every_metric_name_used_is_exported(where: str, expr: str) -> None:
    recorded = {r["record"] for r in livestack.load_rules() if "record" in r}
    known = livestack.exported_metric_names() | recorded | {"up"}
    used = livestack.used_metric_names(expr)
    assert used, f"{where}: no metric found in {expr!r}"
    assert used <= known, f"{where} uses unknown metrics {sorted(used - known)}"


def test_every_exported_metric_is_shown_somewhere() -> None:
    used = set().union(*(livestack.used_metric_names(e) for _, e in expressions()))
    histograms_seen_via_bucket = {
        "portalguard_probe_schedule_lateness_seconds_count",
        "portalguard_probe_schedule_lateness_seconds_sum",
    }
    missing = livestack.exported_metric_names() - used - histograms_seen_via_bucket
    assert not missing, f"metrics no panel or rule shows: {sorted(missing)}"


# ------------------------------------------------------------------------------- provisioning, deploy


def test_grafana_provisioning_points_at_the_dashboard() -> None:
    ds = yaml.safe_load((DASHBOARDS / "provisioning/datasources/prometheus.yml").read_text(encoding="utf-8"))
    assert [d["type"] for d in ds["datasources"]] == ["prometheus"]
    providers = yaml.safe_load((DASHBOARDS / "provisioning/dashboards/portalguard.yml").read_text(encoding="utf-8"))
    path = providers["providers"][0]["options"]["path"]
    grafana = compose()["services"]["grafana"]
    assert any(v.endswith(f":{path}:ro") and "dashboards/grafana" in v for v in grafana["volumes"])


def test_alertmanager_routes_reach_defined_receivers() -> None:
    config = yaml.safe_load((DASHBOARDS / "alertmanager/alertmanager.yml").read_text(encoding="utf-8"))
    names = {r["name"] for r in config["receivers"]}
    route = config["route"]
    assert route["receiver"] in names
    assert all(r["receiver"] in names for r in route.get("routes", []))
    severities = {s for r in alert_rules() for s in [r["labels"]["severity"]]}
    assert any('severity="critical"' in m for r in route["routes"] for m in r["matchers"])
    assert severities == {"critical", "warning"}


def test_alertmanager_config_passes_amtool() -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        # make test installs it; in CI a missing tool is a failure, not a quiet skip.
        assert not os.environ.get("CI"), "amtool missing: `make deps-debian` installs prometheus-alertmanager"
        pytest.skip("amtool missing (Debian prometheus-alertmanager); the structure is checked above")
    result = run(amtool, "check-config", str(DASHBOARDS / "alertmanager/alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def fired_alerts() -> list[dict[str, str]]:
    """The labels of every alert rules_test.yml expects to fire (promtool checks them), alertname included."""
    return [
        {"alertname": name, **{k: str(v) for k, v in alert["exp_labels"].items()}}
        for name, cases in unit_test_cases().items()
        for case in cases
        for alert in case["exp_alerts"]
    ]


def _matches(matcher: str, labels: dict[str, str]) -> bool:
    # Alertmanager's matcher syntax as used in our config: name op "value"; regexes are anchored.
    name, op, value = re.fullmatch(r'(\w+)(=~|!~|!=|=)"(.*)"', matcher).groups()  # type: ignore[union-attr]
    got = labels.get(name, "")
    return {
        "=": got == value,
        "!=": got != value,
        "=~": re.fullmatch(value, got) is not None,
        "!~": re.fullmatch(value, got) is None,
    }[op]


def inhibited(target: dict[str, str], source: dict[str, str]) -> bool:
    """Alertmanager's inhibition: a missing label counts as empty, in `equal` too."""
    rules = yaml.safe_load((DASHBOARDS / "alertmanager/alertmanager.yml").read_text(encoding="utf-8"))
    return any(
        all(_matches(m, source) for m in rule["source_matchers"])
        and all(_matches(m, target) for m in rule["target_matchers"])
        and all(source.get(label, "") == target.get(label, "") for label in rule["equal"])
        for rule in rules["inhibit_rules"]
    )


def test_portalguard_stale_inhibits_the_alerts_it_makes_meaningless() -> None:
    stale = [a for a in fired_alerts() if a["alertname"] == "PortalguardStale"]
    others = [a for a in fired_alerts() if a["alertname"] != "PortalguardStale"]
    (gone,) = [a for a in stale if "instance" not in a]  # absent(up{job="portalguard"})
    assert others and all(inhibited(t, gone) for t in others), "absent() labels: job only, no instance"
    for source in (a for a in stale if "instance" in a):
        for target in others:
            # NoLeader, TwoLeaders and SiteDown speak for the whole job (no instance): one stale instance
            # must not hide them.
            same = target.get("instance", "") == source["instance"]
            assert inhibited(target, source) is same, (source, target)
    assert {a["alertname"] for a in others if "instance" not in a} >= {"NoLeader", "TwoLeaders", "SiteDown"}
    assert not any(inhibited(s, s) for s in stale), "the cause itself must stay visible"


def test_portal_down_while_suppressed_replaces_portal_down_of_its_portal_only() -> None:
    fired = fired_alerts()
    down = next(a for a in fired if a["alertname"] == "PortalDown")
    suppressed = next(
        a for a in fired if a["alertname"] == "PortalDownWhileSuppressed" and a["portal"] == down["portal"]
    )
    assert inhibited(down, suppressed), "one page for one portal, the one that says what to do"
    assert not inhibited({**down, "portal": "other"}, suppressed)
    assert not inhibited(suppressed, down) and not inhibited(suppressed, suppressed)


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_runs_the_whole_stack() -> None:
    services = compose()["services"]
    assert set(services) == {"portalguard", "prometheus", "alertmanager", "grafana"}
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_every_file_compose_mounts_exists() -> None:
    spec = compose()
    named = set(spec.get("volumes", {}))
    for name, service in spec["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source in named:
                continue
            assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
        build = service.get("build")
        if build:
            assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()


def test_the_container_config_is_valid_and_listens_beyond_loopback() -> None:
    from failover.settings.loader import load

    settings = load(DEPLOY / "container/portalguard.yaml", environ={})
    assert settings.server.listen.startswith("0.0.0.0:")
    assert settings.server.metrics_listen is not None
    port = settings.server.metrics_listen.rsplit(":", 1)[1]
    targets = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text(encoding="utf-8"))["scrape_configs"][0]
    assert targets["job_name"] == livestack.JOB
    assert targets["static_configs"][0]["targets"] == [f"portalguard:{port}"]
    assert settings.store.startswith("/var/lib/portalguard/")


def test_the_container_trusts_x_forwarded_for_from_the_compose_gateway_only() -> None:
    # A reverse proxy on the host reaches the container from the bridge gateway, not 127.0.0.1.
    from failover.settings.loader import load

    settings = load(DEPLOY / "container/portalguard.yaml", environ={})
    (ipam,) = compose()["networks"]["default"]["ipam"]["config"]
    assert ipaddress.ip_address(ipam["gateway"]) in ipaddress.ip_network(ipam["subnet"])
    assert ipam["gateway"] in settings.server.trusted_proxies
    assert all("/" not in p for p in settings.server.trusted_proxies), "trust the gateway, not the whole network"


def test_dockerfile_runs_as_non_root_from_a_venv() -> None:
    text = (DEPLOY / "container/Dockerfile").read_text(encoding="utf-8")
    assert "FROM python:3.11-slim" in text
    assert "python -m venv /opt/portalguard" in text
    assert "\nUSER portalguard" in text


def test_systemd_unit_is_hardened() -> None:
    unit = (DEPLOY / "systemd/portalguard.service").read_text(encoding="utf-8")
    for line in (
        "DynamicUser=yes",
        "StateDirectory=portalguard",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "EnvironmentFile=/etc/portalguard/portalguard.env",
        "ExecStart=/opt/portalguard/bin/portalguard -c /etc/portalguard/portalguard.yaml run",
    ):
        assert line in unit
    assert "RestrictAddressFamilies=" in unit and "SystemCallFilter=" in unit


def deploy_command_lines() -> dict[str, list[str]]:
    """The portalguard arguments each deploy file starts the service with."""
    unit = (DEPLOY / "systemd/portalguard.service").read_text(encoding="utf-8")
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    dockerfile = (DEPLOY / "container/Dockerfile").read_text(encoding="utf-8")
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    return {
        "systemd": exec_start.split()[1:],
        "Dockerfile": json.loads(cmd.removeprefix("CMD ")),
        "compose": compose()["services"]["portalguard"]["command"],
    }


@pytest.mark.parametrize("where", ["systemd", "Dockerfile", "compose"])
def test_deploy_files_start_portalguard_run_with_the_config(where: str) -> None:
    from click.testing import CliRunner

    from failover.cli import main

    args = deploy_command_lines()[where]
    assert args[-1] == "run" and args[args.index("-c") + 1] == "/etc/portalguard/portalguard.yaml"
    result = CliRunner().invoke(main, [*args, "--help"])  # parses the options without starting
    assert result.exit_code == 0, result.output


def test_systemd_unit_verifies() -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze missing")
    result = run(analyze, "verify", str(DEPLOY / "systemd/portalguard.service"))
    # The only complaint allowed: portalguard is not installed at /opt/portalguard on this machine.
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "/opt/portalguard/bin/portalguard is not executable" not in line
    ]
    assert not problems, "\n".join(problems)
