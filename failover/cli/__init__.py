"""The ``portalguard`` command line."""

from __future__ import annotations

import os

import click

from failover.cli.common import App, accept_config_option

# gRPC (inside google-ads) prints connection info lines to stderr unless told otherwise; set before
# it is first imported.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
from failover.cli.config_cmd import config_group
from failover.cli.demo_cmd import demo
from failover.cli.doctor_cmd import doctor
from failover.cli.drill_cmd import drill
from failover.cli.events_cmd import events, incident_group
from failover.cli.failover_cmd import failover_group
from failover.cli.maintenance_cmd import maintenance_group
from failover.cli.probe_cmd import probe
from failover.cli.requests_cmd import requests_group
from failover.cli.run_cmd import run
from failover.cli.status_cmd import status


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
    ctx.obj = App(config)


for command in (
    run,
    status,
    failover_group,
    maintenance_group,
    events,
    incident_group,
    requests_group,
    doctor,
    drill,
    demo,
    probe,
    config_group,
):
    main.add_command(command)
accept_config_option(main)
