"""``portalguard run``: the service."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from failover.cli.common import EXIT_CONFIG, App, fail
from failover.settings import Settings
from failover.settings.source import config_path


@click.command("run")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning"]), default="info", show_default=True)
@click.option(
    "--site",
    metavar="NAME",
    help="This instance's name among several on one PostgreSQL store (wins over $PORTALGUARD_SITE and site:).",
)
@click.pass_obj
def run(app: App, log_level: str, site: str | None) -> None:
    """Run the watchdog, the failover orchestrator, the fallback page and /metrics until SIGTERM/SIGINT.

    Logs verdict changes and every action; stops cleanly (actions in flight finish, state is saved).
    On a PostgreSQL store several instances (sites) may run: each probes and votes, one leads and acts.
    """
    from failover.store import StoreError, service_lock

    settings = app.settings  # validate before anything starts
    if site is not None:
        settings = _with_site(settings, site)
    try:  # then the store's service lock, before the service's heavy imports: a second run exits at once
        lock = service_lock(settings.store, site=settings.site).acquire()
    except StoreError as err:
        fail(str(err), EXIT_CONFIG)
    with lock:  # held until the process exits: two services on one store would both act
        _serve(settings, log_level, config_path(app.config_option))


def _with_site(settings: Settings, site: str) -> Settings:
    import re

    from failover.settings.model import SITE_PATTERN

    if not re.match(SITE_PATTERN, site):
        fail(f'--site "{site}": letters, digits, "-", "_" and "." (at most 63), e.g. --site vps-tokyo', EXIT_CONFIG)
    return settings.model_copy(update={"site": site})


def _serve(settings: Settings, log_level: str, config_file: Path) -> None:
    from zoneinfo import ZoneInfo

    from failover.logs import service_log_handler
    from failover.service import ServiceError, serve_until_signalled
    from failover.store import StoreError
    from failover.web.security import SecretError

    # A failure repeating every tick (a full disk, an attack) must not fill the disk with its own log.
    logging.basicConfig(level=log_level.upper(), handlers=[service_log_handler(ZoneInfo(settings.timezone))])
    for noisy in ("httpx", "httpcore", "apprise", "google", "grpc", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        asyncio.run(serve_until_signalled(settings, config_file))
    except (ServiceError, StoreError, SecretError) as err:
        fail(str(err), EXIT_CONFIG)
