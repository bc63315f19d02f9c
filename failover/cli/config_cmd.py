"""``portalguard config check|schema``."""

from __future__ import annotations

import json

import click

from failover.cli.common import App
from failover.settings import Settings
from failover.settings.model import GROUP_ALERTS
from failover.settings.source import config_path
from watchdog.duration import format_duration


@click.group("config")
def config_group() -> None:
    """Validate the config file, or print its JSON Schema."""


@config_group.command("check")
@click.pass_obj
def check(app: App) -> None:
    """Validate the config exactly as `run` does; exit 0 if usable, 2 with the reasons if not.

    Prints a short summary (no secrets): portals, endpoints, canaries, actions.
    """
    s = app.settings
    click.echo(f"{config_path(app.config_option)}: OK")
    for cid, c in s.group().items():
        books = ", ".join(s.portals_of(cid))
        label = "clinic" if s.clinic is not None else f"clinic {cid}"
        click.echo(f"{label}: {c.name} ({c.phone}, {c.timezone})" + ("" if s.clinic else f"; portals {books}"))
    click.echo(f"canaries: {len(s.canaries)}" + ("" if s.canaries else " (none: network outages can't be told apart)"))
    for pid, p in s.portals.items():
        eps = ", ".join(f"{name}{' (login)' if ep.login else ''}" for name, ep in p.endpoints.items())
        click.echo(
            f"portal {pid}: endpoints {eps}; trigger {p.trigger}; every {format_duration(p.interval)}; "
            f"down after {p.down_after.failures}×/{format_duration(p.down_after.seconds)}, "
            f"up after {p.up_after.successes}×/{format_duration(p.up_after.seconds)}; "
            f"actions {', '.join(s.portal_actions(pid)) or 'none'}"
            + (f"; clinic {s.clinic_id(pid)}" if s.clinics else "")
        )
    for name, a in s.all_actions().items():
        click.echo(
            f"action {name}: {a.type}"
            + (" (the group's staff_alerts:, on every portal)" if name == GROUP_ALERTS and s.staff_alerts else "")
        )
    click.echo(f"store: {s.store}; web: {s.server.listen}; metrics: {s.server.metrics_listen or s.server.listen}")


@config_group.command("schema")
def schema() -> None:
    """Print the config's JSON Schema (for editor autocompletion of the YAML)."""
    doc = Settings.model_json_schema()
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "portalguard configuration"
    click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
