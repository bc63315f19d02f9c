"""The ``portalguard`` command line.

Each subcommand's module is imported only when that command runs: ``COMMANDS`` names it and holds
its one-line help, so ``portalguard --help`` lists every command without loading pydantic, httpx,
Starlette or google-ads, and ``portalguard status`` loads the config and the store only.
"""

from __future__ import annotations

import importlib
import os
from typing import NamedTuple

import click

# gRPC (inside google-ads) prints connection info lines to stderr unless told otherwise; set before
# it is first imported.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


class LazyCommand(NamedTuple):
    module: str  # imported when the command is used
    attr: str  # the click command in it
    help: str  # the first sentence of its help, for the command list (a test keeps it in sync)


COMMANDS: dict[str, LazyCommand] = {
    "appointments": LazyCommand(
        "failover.cli.appointments_cmd",
        "appointments_group",
        "The appointment mirror: the portal's upcoming appointments, copied while it is up.",
    ),
    "config": LazyCommand(
        "failover.cli.config_cmd", "config_group", "Validate the config file, or print its JSON Schema."
    ),
    "demo": LazyCommand(
        "failover.cli.demo_cmd",
        "demo",
        "Play a booking portal outage and recovery on 127.0.0.1 only, with a temporary store: a simulated portal "
        "fails, portalguard switches on the fallback page, a (fake) Google Ads campaign, staff notifications and a "
        "webhook, then switches all off when the portal is back.",
    ),
    "doctor": LazyCommand(
        "failover.cli.doctor_cmd",
        "doctor",
        "Check that every configured action could work right now (credentials, campaigns and budgets, notification "
        "URLs, webhook reachability, our own /book page), without switching anything.",
    ),
    "drill": LazyCommand(
        "failover.cli.drill_cmd",
        "drill",
        "Rehearse PORTAL's failover with its real configured actions, harmlessly: Google Ads mutates with "
        "validate_only (no spend), staff notifications really sent but marked [訓練/DRILL], the fallback page shown "
        'only on a preview link, webhooks sent with "drill": true.',
    ),
    "events": LazyCommand(
        "failover.cli.events_cmd",
        "events",
        "The audit log: verdict changes, failovers, every action attempt, notifications, overrides.",
    ),
    "failover": LazyCommand(
        "failover.cli.failover_cmd",
        "failover_group",
        "Force failover on or off for a portal, or hand it back to the automatic verdict.",
    ),
    "incident": LazyCommand("failover.cli.events_cmd", "incident_group", "Incident reports built from the audit log."),
    "keygen": LazyCommand(
        "failover.cli.keygen_cmd",
        "keygen",
        "Print a new random data key: the key patient data (booking requests, the appointment mirror) is sealed "
        "with in the store.",
    ),
    "maintenance": LazyCommand(
        "failover.cli.maintenance_cmd", "maintenance_group", "Planned maintenance windows of a portal."
    ),
    "page": LazyCommand(
        "failover.cli.page_cmd",
        "page_group",
        "The fallback page's static copy, served by the reverse proxy when portalguard does not answer.",
    ),
    "probe": LazyCommand(
        "failover.cli.probe_cmd", "probe", "Probe every endpoint and canary once, now, and print what was found."
    ),
    "report": LazyCommand(
        "failover.cli.report_cmd",
        "report_group",
        "Reports from the stored history: each portal's availability over a month or dates.",
    ),
    "requests": LazyCommand(
        "failover.cli.requests_cmd",
        "requests_group",
        "Booking requests from the fallback page (patient data: handle with care).",
    ),
    "run": LazyCommand(
        "failover.cli.run_cmd",
        "run",
        "Run the watchdog, the failover orchestrator, the fallback page and /metrics until SIGTERM/SIGINT.",
    ),
    "staff": LazyCommand(
        "failover.cli.staff_cmd",
        "staff_group",
        "Staff accounts for the staff pages: a viewer sees, an operator also decides.",
    ),
    "status": LazyCommand(
        "failover.cli.status_cmd",
        "status",
        "Per portal: the verdict, failover state, each action's desired/observed state and last error, the override "
        "or maintenance window in force, and the last drill.",
    ),
    "store": LazyCommand(
        "failover.cli.store_cmd", "store_group", "The store itself: copy a SQLite store into PostgreSQL."
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands come from ``COMMANDS`` and are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            entry = COMMANDS[cmd_name]
            command: click.Command = getattr(importlib.import_module(entry.module), entry.attr)
            # The command module has imported the CLI's common part already: this costs nothing more.
            from failover.cli.common import accept_config_option

            accept_config_option(command)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, but with the help text from the table: listing must not import every command."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))
        rows = [(name, self._short_help(name, limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def _short_help(self, name: str, limit: int) -> str:
        # A stand-in command shortens the text exactly as the real one's docstring would be.
        loaded = self.commands.get(name)
        return (loaded or click.Command(name, help=COMMANDS[name].help)).get_short_help_str(limit)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "-c",
    "--config",
    "config",
    metavar="FILE",
    envvar="PORTALGUARD_CONFIG",
    show_envvar=True,
    help="The YAML config (default ./portalguard.yaml).",
)
@click.version_option(package_name="portalguard")
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """portalguard keeps a clinic bookable when its booking portal goes down: it watches the portal,
    and on a sustained outage switches on a fallback booking page, search ads and staff alerts —
    and switches them off again when the portal has recovered.
    """
    # Here, not at the top: the config machinery (pydantic) loads once a command runs, not for --help.
    from failover.cli.common import App

    ctx.obj = App(config)
