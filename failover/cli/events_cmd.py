"""``portalguard events`` (the audit log) and ``portalguard incident report``."""

from __future__ import annotations

from dataclasses import asdict

import click

from failover.cli.common import App, duration_arg, print_json, read_only
from failover.incident import describe, report


@click.command("events")
@click.option("--portal", help="Only this portal (service-wide events are always shown).")
@click.option("--since", default="24h", show_default=True, help="How far back, e.g. 2h, 7d.")
@click.option("--kind", "kinds", multiple=True, help="Only these kinds (verdict, failover, action, notify, …).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@read_only
def events(app: App, portal: str | None, since: str, kinds: tuple[str, ...], as_json: bool) -> None:
    """The audit log: verdict changes, failovers, every action attempt, notifications, overrides."""
    if portal:
        app.portal_ids(portal)
    rows = app.store.events(None, since=app.store.clock() - duration_arg(since), kinds=kinds)
    rows = [e for e in rows if portal is None or e.portal in (portal, None)]
    if as_json:
        print_json([asdict(e) for e in rows])
        return
    if not rows:
        click.echo(f"no events in the last {since}")
    for e in rows:
        click.echo(f"{app.when(e.ts)}  {e.portal or '-':<16} {describe(e, app.when)}")


@click.group("incident")
def incident_group() -> None:
    """Incident reports built from the audit log."""


@incident_group.command("report")
@click.option("--portal", help="The portal (default: every portal).")
@click.pass_obj
@read_only
def incident_report(app: App, portal: str | None) -> None:
    """A Markdown timeline of the last outage: first failed probe, DOWN, each action with its time and
    result, notifications, recovery, total duration."""
    for pid in app.portal_ids(portal):
        click.echo(report(app.store, pid, app.when))
