"""``portalguard demo``: watch a whole outage and recovery on 127.0.0.1, in about 90 seconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from failover.cli.common import fail

if TYPE_CHECKING:
    from failover.fakes.portal_simulator import PortalSimulator

_MODES = ("error500", "maintenance", "hang", "refuse")
T = TypeVar("T")


@click.command("demo")
@click.option("--keep-running", is_flag=True, help="After the scenario, leave everything up until Ctrl-C.")
@click.option(
    "--json-timeline",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    metavar="FILE",
    help="Also write the timeline, steps, report and summary as JSON to FILE.",
)
@click.option(
    "--outage-seconds",
    type=click.FloatRange(min=0, max=3600),
    default=60.0,
    show_default=True,
    help="How long the outage lasts once every measure is on (time to try the fallback page).",
)
@click.option("--outage-mode", type=click.Choice(_MODES), default="error500", show_default=True)
@click.option("--language", type=click.Choice(["ja", "en"]), default="ja", show_default=True, help="Of staff messages.")
@click.option("--color/--no-color", default=None, help="Colors (default: only on a terminal).")
@click.option(
    "--simulator-only",
    is_flag=True,
    help="Only run the simulated portal until Ctrl-C, and print a config snippet that watches it.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="--simulator-only: its public port (0: any).")
@click.option("--admin-port", type=click.IntRange(0, 65535), default=0, help="--simulator-only: its admin port.")
@click.option(
    "--control-port", type=click.IntRange(0, 65535), default=0, help="--simulator-only: its control (canary) port."
)
def demo(
    keep_running: bool,
    json_timeline: Path | None,
    outage_seconds: float,
    outage_mode: str,
    language: str,
    color: bool | None,
    simulator_only: bool,
    port: int,
    admin_port: int,
    control_port: int,
) -> None:
    """Play a booking portal outage and recovery on 127.0.0.1 only, with a temporary store: a simulated
    portal fails, portalguard switches on the fallback page, a (fake) Google Ads campaign, staff
    notifications and a webhook, then switches all off when the portal is back. Ends with the
    incident report. Needs no config; touches nothing outside this machine.

    Exits 1, naming the step, if the scenario did not complete.
    """
    _quiet_logs()
    if simulator_only:
        try:
            asyncio.run(_with_signals(lambda stop: _simulator_only(stop, port, admin_port, control_port)))
        except OSError as err:  # a port in use
            fail(f"the simulator could not start: {err}")
        return
    from failover.demo import DemoOptions, run_demo
    from failover.demo.loopback import NotLoopback
    from failover.demo.runner import INTERRUPTED, write_json
    from failover.demo.timeline import Timeline

    options = DemoOptions(outage_seconds, outage_mode, language, keep_running)
    try:
        result = asyncio.run(_with_signals(lambda stop: run_demo(options, Timeline(color), stop)))
    except (NotLoopback, OSError, RuntimeError) as err:  # the stage or the service could not start
        fail(f"demo could not start: {err}")
    if json_timeline is not None:
        write_json(json_timeline, result)
    if not result.ok:
        fail(f"demo did not complete: {result.error}", 130 if result.error == INTERRUPTED else 1)


async def _with_signals(main: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Run ``main(stop)``; Ctrl-C or SIGTERM set ``stop``, so everything is stopped in order."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await main(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)


SNIPPET_START = "# --- portalguard.yaml for this simulator (portalguard config check accepts it) ---"
SNIPPET_END = "# --- end ---"


async def _simulator_only(stop: asyncio.Event, port: int = 0, admin_port: int = 0, control_port: int = 0) -> None:
    from failover.fakes.portal_simulator import PortalSimulator

    sim = PortalSimulator("127.0.0.1", port=port, admin_port=admin_port, control_port=control_port)
    async with sim:
        control = f"{sim.control_url}/_sim/mode"
        user, password = sim.credentials
        click.echo(f"simulated booking portal  {sim.url('public')}")
        click.echo(f"simulated admin login     {sim.url('admin')}  ({user} / {password})")
        click.echo(f'break it                  curl -X POST {control} -d \'{{"mode": "error500"}}\'')
        click.echo(f'repair it                 curl -X POST {control} -d \'{{"mode": "healthy"}}\'')
        click.echo("")
        click.echo(SNIPPET_START)
        click.echo(simulator_config(sim), nl=False)
        click.echo(SNIPPET_END)
        click.echo("running until Ctrl-C")
        await stop.wait()


def simulator_config(sim: PortalSimulator) -> str:
    """A whole config watching ``sim`` (a ``PortalSimulator``): its endpoints, its canary and
    book_url, a fallback page and a local store; edit and extend it."""
    import yaml

    from failover.fakes.portal_simulator import CANARY_PATH

    doc = {
        "clinic": {"name": sim.clinic_name, "phone": "03-1234-5678"},
        "store": "./portalguard-simulator.db",
        "canaries": [sim.control_url + CANARY_PATH],
        "actions": {"page": {"type": "fallback_page"}},
        "portals": {
            "simulator": {
                "endpoints": sim.endpoints_config(),
                "book_url": sim.url("public"),
                "actions": ["page"],
            }
        },
    }
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _quiet_logs() -> None:
    # The timeline is the demo's output: only real errors from the service and libraries go to stderr.
    # gRPC's C core logs at INFO (e.g. GOAWAY when the fake Ads server stops) unless told before import.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    logging.basicConfig(level=logging.ERROR, format="portalguard demo: %(name)s: %(message)s")
