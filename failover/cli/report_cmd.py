"""``portalguard report availability``: each portal's availability over a month or dates."""

from __future__ import annotations

from dataclasses import replace

import click

from failover.cli.common import EXIT_CONFIG, App, chosen_portals, clinic_option, fail, print_json, read_only
from failover.report.build import reports
from failover.report.period import Period, PeriodError, days, month, this_month
from failover.report.render import View, csv_report, json_report, markdown


@click.group("report")
def report_group() -> None:
    """Reports from the stored history: each portal's availability over a month or dates."""


@report_group.command("availability")
@click.option("--month", "month_text", metavar="YYYY-MM", help="A month of the clinic's calendar (default: this one).")
@click.option("--from", "from_date", metavar="YYYY-MM-DD", help="The first day (local), with --to.")
@click.option("--to", "to_date", metavar="YYYY-MM-DD", help="The last day (local), included: to its end.")
@click.option("--portal", help="Only this portal (default: every portal).")
@clinic_option
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "json"]), default="md", show_default=True)
@click.option("--outages", is_flag=True, help="With --format csv: one row per outage instead of one per portal.")
@click.option("--language", type=click.Choice(["en", "ja"]), default="en", show_default=True, help="Of the Markdown.")
@click.pass_obj
@read_only
def availability(
    app: App,
    month_text: str | None,
    from_date: str | None,
    to_date: str | None,
    portal: str | None,
    clinic: str | None,
    fmt: str,
    outages: bool,
    language: str,
) -> None:
    """Per portal: availability (time up ÷ time observed), time unobserved (the service stopped or our
    own network down: neither up nor down), each outage with its start, end, duration and cause, total
    and longest downtime, mean time to recovery, first failed probe to failover, booking requests during
    outages, minutes the ads ran. Times in the clinic's zone; a period still running ends now."""
    if outages and fmt != "csv":
        fail("--outages is for --format csv (Markdown and JSON list every outage anyway)", EXIT_CONFIG)
    portals = chosen_portals(app.settings, portal, clinic) or list(app.settings.portals)
    now = app.now()
    wall = chosen_period(app, month_text, from_date, to_date, app.to_wall(now))
    period = replace(wall, start=app.from_wall(wall.start), end=app.from_wall(wall.end))  # on the service's clock
    found = reports(app.settings, app.store, portals, period, now)
    names = {pid: app.settings.portals[pid].name or pid for pid in portals}
    view = View(app.tz, app.to_wall, names)
    if fmt == "json":
        print_json(json_report(found, period, view))
    elif fmt == "csv":
        click.echo(csv_report(found, view, outages), nl=False)
    else:
        click.echo(markdown(found, period, view, language), nl=False)


def chosen_period(app: App, month_text: str | None, from_date: str | None, to_date: str | None, now: float) -> Period:
    """The local period asked for (wall times); a bad one exits 2 saying what to type."""
    if month_text is not None and (from_date or to_date):
        fail("give --month or --from/--to, not both", EXIT_CONFIG)
    if (from_date is None) != (to_date is None):
        fail("--from and --to go together (both local dates; --to is included)", EXIT_CONFIG)
    try:
        if from_date is not None and to_date is not None:
            return days(from_date, to_date, app.tz)
        return month(month_text or this_month(now, app.tz), app.tz)
    except PeriodError as err:
        fail(str(err), EXIT_CONFIG)
