"""``portalguard requests``: the booking requests patients sent through the fallback page.

They are medical personal data: ``export`` writes files only the owner can read, and retention
(``booking.retention``, default 90 days) deletes them automatically (``failover.retention``).
Commands use ``ctx.obj.settings`` and ``ctx.obj.store`` only.
"""

from __future__ import annotations

import csv
import logging
from typing import IO, Any, Protocol

import click

from failover.cli.common import (
    chosen_portals,
    clinic_option,
    csv_text,
    duration_arg,
    owner_only_file,
    patient_data,
    print_json,
    read_only,
    table,
)
from failover.settings import Settings
from failover.store import REQUEST_STATUSES, BookingRequest, Store
from failover.web.forms import MAX_CHOICES
from failover.web.i18n import format_time
from watchdog.duration import format_duration

log = logging.getLogger("portalguard.requests")

CSV_COLUMNS = (
    "id",
    "received",
    "portal",
    "status",
    "updated",
    "name",
    "phone",
    "email",
    "visit",
    *(f"choice{n}" for n in range(1, MAX_CHOICES + 1)),
    "reason",
    "lang",
    "drill",
)
EVERY_ROW = 2**63 - 1  # SQLite's largest LIMIT: no limit


class _Context(Protocol):
    settings: Settings
    store: Store


@click.group("requests")
def requests_group() -> None:
    """Booking requests from the fallback page (patient data: handle with care)."""


@requests_group.command("list")
@click.option("--status", type=click.Choice(REQUEST_STATUSES), help="Only requests with this status.")
@click.option("--portal", help="Only this portal's requests.")
@clinic_option
@click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Every field, as JSON.")
@click.pass_obj
@read_only
def list_requests(
    obj: _Context, status: str | None, portal: str | None, clinic: str | None, limit: int, as_json: bool
) -> None:
    """Booking requests, newest first."""
    with patient_data():
        rows = obj.store.requests(status, chosen_portals(obj.settings, portal, clinic), limit)
    tz = obj.settings.timezone
    if as_json:
        print_json([_as_dict(r, tz) for r in rows])
        return
    if not rows:
        click.echo("no booking requests" + (f" with status {status}" if status else ""))
        return
    headers = ["#", "received", "portal", "status", "name", "phone", "visit", "preferred"]
    click.echo(table([_row(r, tz) for r in rows], headers))


@requests_group.command("export")
@click.option("--csv", "path", required=True, metavar="FILE", help="Where to write (- for stdout).")
@click.option("--status", type=click.Choice(REQUEST_STATUSES))
@click.option("--portal")
@clinic_option
@click.pass_obj
@read_only
def export(obj: _Context, path: str, status: str | None, portal: str | None, clinic: str | None) -> None:
    """Write booking requests as CSV (UTF-8 with BOM, so Excel shows Japanese correctly)."""
    # Every matching row: the store's default limit would cut a large export off without a word.
    with patient_data():
        rows = obj.store.requests(status, chosen_portals(obj.settings, portal, clinic), limit=EVERY_ROW)
    with owner_only_file(path) as out:
        write_csv(out, rows, obj.settings.timezone)
    if path != "-":
        click.echo(f"wrote {len(rows)} booking request(s) to {path} (readable by you only)", err=True)


@requests_group.command("purge")
@click.option(
    "--older-than",
    "older_than",
    metavar="AGE",
    help="e.g. 30d (default: booking.retention from the config).",
)
@click.pass_obj
def purge(obj: _Context, older_than: str | None) -> None:
    """Delete booking requests received more than AGE ago."""
    age = duration_arg(older_than) if older_than else obj.settings.booking.retention
    cutoff = obj.store.clock() - age
    purged = obj.store.purge_requests(cutoff)
    when = format_time(cutoff, obj.settings.timezone)
    click.echo(f"deleted {purged} booking request(s) older than {format_duration(age)} (received before {when})")


def write_csv(out: IO[str], rows: list[BookingRequest], timezone: str) -> None:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        d = r.data
        choices = [_choice(c) for c in d.get("preferred", [])][:MAX_CHOICES]
        choices += [""] * (MAX_CHOICES - len(choices))
        cells = [
            r.id,
            format_time(r.created, timezone),
            r.portal,
            r.status,
            format_time(r.updated, timezone) if r.updated else "",
            csv_text(d.get("name", "")),
            csv_text(d.get("phone", "")),
            csv_text(d.get("email", "")),
            d.get("visit", ""),
            *choices,
            csv_text(d.get("reason", "")),
            d.get("lang", ""),
            "yes" if d.get("drill") else "",
        ]
        writer.writerow(cells)


def _as_dict(r: BookingRequest, timezone: str) -> dict[str, Any]:
    return {
        "id": r.id,
        "portal": r.portal,
        "status": r.status,
        "received": format_time(r.created, timezone),
        "created": r.created,
        "updated": r.updated,
        "data": r.data,
    }


def _row(r: BookingRequest, timezone: str) -> list[str]:
    d = r.data
    preferred = ", ".join(_choice(c) for c in d.get("preferred", [])) or "-"
    name = " ".join(str(d.get("name", "")).split())  # one line per request in the table
    return [
        str(r.id),
        format_time(r.created, timezone),
        r.portal,
        r.status,
        name,
        d.get("phone", ""),
        d.get("visit", ""),
        preferred,
    ]


def _choice(choice: dict[str, str]) -> str:
    time_of_day = choice.get("time", "any")
    return choice.get("date", "") + ("" if time_of_day == "any" else f" {time_of_day}")
