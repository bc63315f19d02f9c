"""``portalguard maintenance add|list|remove``: planned portal maintenance."""

from __future__ import annotations

from dataclasses import asdict

import click

from failover.cli.common import App, duration_arg, fail, print_json, read_only, table


@click.group("maintenance")
def maintenance_group() -> None:
    """Planned maintenance windows of a portal.

    `--mode suppress` (default) keeps failover off during the window (a planned outage the clinic
    accepts); `--mode failover` switches the fallback on for the window.
    """


@maintenance_group.command("add")
@click.argument("portal")
@click.option("--start", required=True, help="now, +30m, or 2026-11-24T02:00 (clinic time zone).")
@click.option("--end", help="+2h (after start), or an ISO date-time.")
@click.option("--for", "for_", metavar="DURATION", help="Length instead of --end, e.g. 3h.")
@click.option("--mode", type=click.Choice(["suppress", "failover"]), default="suppress", show_default=True)
@click.option("--reason", default="", help="Shown in status and the audit log.")
@click.pass_obj
def add(app: App, portal: str, start: str, end: str | None, for_: str | None, mode: str, reason: str) -> None:
    """Add a maintenance window for PORTAL."""
    (pid,) = app.portal_ids(portal)
    if (end is None) == (for_ is None):
        fail("give exactly one of --end and --for", 2)
    now = app.store.clock()
    t0 = app.parse_time(start, now)
    t1 = t0 + duration_arg(for_) if for_ else app.parse_time(end or "", t0)
    if t1 <= t0:
        fail("the window ends before it starts", 2)
    if t1 <= now:
        fail("the window is entirely in the past", 2)
    wid = app.store.add_maintenance(pid, t0, t1, mode, reason)
    app.store.add_event("maintenance", pid, op="add", id=wid, mode=mode, start=t0, end=t1, reason=reason)
    click.echo(f"maintenance #{wid} for {pid}: {app.when(t0)} → {app.when(t1)} ({mode})")


@maintenance_group.command("list")
@click.option("--portal", help="Only this portal.")
@click.option("--all", "include_past", is_flag=True, help="Include past windows.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@read_only
def list_(app: App, portal: str | None, include_past: bool, as_json: bool) -> None:
    """List current and future maintenance windows."""
    if portal:
        app.portal_ids(portal)
    rows = app.store.maintenance(portal, include_past)
    if as_json:
        print_json([asdict(r) for r in rows])
        return
    if not rows:
        click.echo("no maintenance windows")
        return
    click.echo(
        table(
            [[str(r.id), r.portal, app.when(r.start), app.when(r.end), r.mode, r.reason] for r in rows],
            ["id", "portal", "start", "end", "mode", "reason"],
        )
    )


@maintenance_group.command("remove")
@click.argument("window_id", type=click.IntRange(1, 2**62))
@click.pass_obj
def remove(app: App, window_id: int) -> None:
    """Remove maintenance window WINDOW_ID (see `maintenance list`)."""
    if not app.store.remove_maintenance(window_id):
        fail(f"no maintenance window #{window_id} (see `portalguard maintenance list`)", 1)
    app.store.add_event("maintenance", None, op="remove", id=window_id)
    click.echo(f"maintenance #{window_id} removed")
