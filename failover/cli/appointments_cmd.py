"""``portalguard appointments``: the appointment mirror — who is coming, even when the portal is down.

The appointments are medical personal data: shown to whoever may read the store (and its data key),
exported to files only the owner can read, never logged. ``sync`` runs one sync now, beside a running
service (SQLite serialises the writes; a sync is idempotent).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
from typing import Any

import click

from failover.cli.common import (
    App,
    chosen_portals,
    clinic_option,
    csv_text,
    fail,
    owner_only_file,
    patient_data,
    print_json,
    read_only,
    table,
)
from failover.mirror.dates import named_day
from failover.mirror.model import Mirrored

CSV_COLUMNS = ("portal", "id", "date", "start", "end", "name", "phone", "menu", "status", "source", "synced_at")
EXIT_SYNC_FAILED = 1


class _DayGroup(click.Group):
    """``appointments [DAY]`` shows a day; ``appointments sync|export`` are subcommands. A first word
    that is no subcommand (a day, an option, nothing) goes to ``show``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group("appointments", cls=_DayGroup)
def appointments_group() -> None:
    """The appointment mirror: the portal's upcoming appointments, copied while it is up.

    \b
    portalguard appointments [today|tomorrow|YYYY-MM-DD] [--portal P] [--json]
    portalguard appointments sync [--portal P]
    portalguard appointments export --csv FILE [--from D --to D]
    portalguard appointments mail-test --portal P FILE.eml
    """


@appointments_group.command("show")
@click.argument("day", required=False, default="today", metavar="[today|tomorrow|YYYY-MM-DD]")
@click.option("--portal", help="Only this portal's appointments.")
@clinic_option
@click.option("--json", "as_json", is_flag=True, help="A list of objects with ISO-8601 times (with offset).")
@click.pass_obj
@read_only
def show(obj: App, day: str, portal: str | None, clinic: str | None, as_json: bool) -> None:
    """The day's appointments by time (clinic time zone), cancelled ones included with their status."""
    wanted = _day(obj, day, "DAY")
    pids = chosen_portals(obj.settings, portal, clinic)
    with patient_data():
        rows = obj.store.appointments(pids, wanted, wanted)
    if as_json:
        print_json([as_json_row(a, obj) for a in rows])
        return
    states = [obj.store.mirror_state(p, _today(obj)) for p in _mirrored(obj, pids)]
    for state in states:
        last = obj.when(state.last_success) if state.last_success else "never"
        error = f" (last error: {state.last_error_kind})" if state.last_error_kind else ""
        click.echo(f"{state.portal}: last synced {last}{error}")
    if not rows:
        click.echo(f"no appointments in the mirror for {wanted.isoformat()}")
        return
    many = len(pids or obj.settings.portals) > 1  # which portal, only where there is a choice
    headers = ["time", "name", "phone", "menu", "status", *(["portal"] if many else [])]
    click.echo(table([_table_row(a, obj, many) for a in rows], headers))


@appointments_group.command("sync")
@click.option("--portal", help="Only this portal (default: every portal with a mirror).")
@click.pass_obj
def sync(obj: App, portal: str | None) -> None:
    """Sync now and print, per day, what was added, updated and cancelled; exit 1 if any day failed.

    Safe beside a running `portalguard run`: both write the same store, and a sync is idempotent.
    """
    from failover.service import mail_once, mirror_once

    pids = _mirrored(obj, obj.portal_ids(portal))
    if not pids:
        fail("no portal has a mirror: section (see the README, Know who is coming)", 2)
    reports = asyncio.run(mirror_once(obj.settings, pids))
    failed = False
    for pid, outcome in asyncio.run(mail_once(obj.settings, pids)):
        if isinstance(outcome, Exception):
            click.echo(f"{pid}: mailbox FAILED {outcome}")
            failed = True
            continue
        counts = ", ".join(f"{v} {k}" for k, v in sorted(outcome.outcomes.items())) or "no bookings"
        click.echo(
            f"{pid}: {outcome.mails} new mail(s) read: {counts}; {outcome.unread} unread (check the templates), "
            f"{outcome.ignored} from other senders"
        )
    for report in reports:
        added, updated, cancelled = report.totals()
        click.echo(f"{report.portal}: {len(report.changes)} day(s) synced in {report.duration:.1f}s", err=False)
        for row in _per_day(report):
            click.echo("  " + row)
        failed = failed or not report.ok
        click.echo(f"  total: +{added} added, ~{updated} updated, -{cancelled} cancelled")
    if failed:
        raise SystemExit(EXIT_SYNC_FAILED)


@appointments_group.command("export")
@click.option("--csv", "path", required=True, metavar="FILE", help="Where to write (- for stdout).")
@click.option("--from", "first", metavar="YYYY-MM-DD", help="First day (default today).")
@click.option("--to", "last", metavar="YYYY-MM-DD", help="Last day (default: the end of the mirror's window).")
@click.option("--portal")
@clinic_option
@click.pass_obj
@read_only
def export(obj: App, path: str, first: str | None, last: str | None, portal: str | None, clinic: str | None) -> None:
    """Write the mirror's appointments as CSV (UTF-8 with BOM for Excel; the file is readable by you only)."""
    pids = chosen_portals(obj.settings, portal, clinic)
    start = _day(obj, first, "--from") if first else _today(obj)
    end = _day(obj, last, "--to") if last else _today(obj) + dt.timedelta(days=_longest_window(obj) - 1)
    if end < start:
        raise click.BadParameter(f"{end} is before --from {start}", param_hint="--to")
    with patient_data():
        rows = obj.store.appointments(pids, start, end)
    with owner_only_file(path) as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for a in rows:
            d = as_json_row(a, obj)
            writer.writerow([csv_text(str(d[c] if d[c] is not None else "")) for c in CSV_COLUMNS])
    if path != "-":
        click.echo(f"wrote {len(rows)} appointment(s) {start}..{end} to {path} (readable by you only)", err=True)


@appointments_group.command("mail-test")
@click.option("--portal", required=True, help="The portal whose mirror.mail templates to try.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True), metavar="FILE.eml")
@click.pass_obj
def mail_test(obj: App, portal: str, file: str) -> None:
    """Show what the templates read from a saved booking mail (exit 1 if none matched).

    Save a mail from the portal as .eml (in Thunderbird: Save As; in Outlook on the web: Download),
    then tune mirror.mail.templates until every field reads. Nothing is written anywhere.
    """
    from failover.mirror.mail.decode import parse_mail
    from failover.mirror.mail.templates import read

    pid = obj.portal_ids(portal)[0]
    mirror = obj.settings.portals[pid].mirror
    if mirror is None or mirror.mail is None:
        fail(f"portals.{pid}.mirror.mail is not configured (see the README, Booking e-mails)", 2)
    raw = click.get_binary_stream("stdin").read() if file == "-" else open(file, "rb").read()  # noqa: SIM115
    mail = parse_mail(raw)
    reading = read(mirror.mail, mail, obj.wall(), obj.tz)
    click.echo(
        f"from:     {', '.join(mail.senders) or '(none)'}"
        + ("" if reading.allowed else "  — NOT in mirror.mail.from: the mirror skips this mail")
    )
    click.echo(f"subject:  {mail.subject}")
    click.echo(f"date:     {mail.date.astimezone(obj.tz).isoformat() if mail.date else '(none)'}")
    if reading.template is None:
        click.echo("template: none — no template's subject matches")
        click.echo("body (first lines, as the templates see it):")
        for line in mail.body.splitlines()[:15]:
            click.echo(f"  | {line}")
        raise SystemExit(1)
    click.echo(f"template: #{reading.template + 1} (kind: {reading.kind})")
    for name in ("id", "date", "time", "name", "phone", "menu"):
        if name in reading.fields:
            click.echo(f"  {name}: {reading.fields[name]}")
    booking = reading.effect
    if reading.problem is not None:
        click.echo(f"NOT READ: {reading.problem}")
        click.echo("body (first lines, as the templates see it):")
        for line in mail.body.splitlines()[:15]:
            click.echo(f"  | {line}")
        raise SystemExit(1)
    if booking is not None and getattr(booking, "start", None) is not None:
        end = f" – {booking.end.strftime('%H:%M')}" if booking.end else ""
        click.echo(f"appointment: {booking.start.strftime('%Y-%m-%d %H:%M')}{end}")
    click.echo("ok: the mirror reads this mail")


# -- helpers --------------------------------------------------------------------------------------


def status_of(a: Mirrored) -> str:
    return "booked" if not a.cancelled else "vanished" if a.vanished_at is not None else "cancelled"


def as_json_row(a: Mirrored, obj: App) -> dict[str, Any]:
    return {
        "portal": a.portal,
        "id": a.id,
        "date": a.day.isoformat(),
        "start": _iso(a.start, obj),
        "end": _iso(a.end, obj),
        "name": a.name,
        "phone": a.phone,
        "menu": a.menu,
        "status": status_of(a),
        "portal_status": a.status,
        "vanished_at": _iso(a.vanished_at, obj),
        "source": a.source,
        "synced_at": _iso(a.synced_at, obj),
    }


def _iso(ts: float | None, obj: App) -> str | None:
    return dt.datetime.fromtimestamp(ts, obj.tz).isoformat(timespec="minutes") if ts is not None else None


def _table_row(a: Mirrored, obj: App, with_portal: bool) -> list[str]:
    start = dt.datetime.fromtimestamp(a.start, obj.tz).strftime("%H:%M")
    end = dt.datetime.fromtimestamp(a.end, obj.tz).strftime("%H:%M") if a.end is not None else ""
    status = status_of(a)
    if status == "vanished":
        status = f"cancelled (gone from the list {obj.when(a.vanished_at)})"
    elif a.status:
        status = f"{status} ({a.status})"
    return [f"{start}-{end}" if end else start, a.name, a.phone, a.menu, status, *([a.portal] if with_portal else [])]


def _per_day(report: Any) -> list[str]:
    from failover.mirror.sync import summary

    lines = []
    for row in summary(report):
        if row["error"]:
            lines.append(f"{row['day']}: FAILED {row['error']} (kept as it was)")
        else:
            lines.append(f"{row['day']}: +{row['added']} ~{row['updated']} -{row['cancelled']}")
    return lines


def _today(obj: App) -> dt.date:
    return dt.datetime.fromtimestamp(obj.wall(), obj.tz).date()  # the date on the clinic's wall


def _day(obj: App, text: str, hint: str) -> dt.date:
    day = named_day(text, _today(obj))
    if day is None:
        example = "use today, tomorrow or 2026-12-02"
        raise click.BadParameter(f"{text!r} is not a day ({example})", param_hint=hint)
    return day


def _mirrored(obj: App, portals: list[str] | None) -> list[str]:
    return [p for p in portals or obj.settings.portals if obj.settings.portals[p].mirror is not None]


def _longest_window(obj: App) -> int:
    windows = [p.mirror.days_ahead for p in obj.settings.portals.values() if p.mirror is not None]
    return max(windows, default=14)
