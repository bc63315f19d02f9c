"""``portalguard doctor``: preflight of every action."""

from __future__ import annotations

import asyncio
import time

import click
import httpx

from failover.cli.common import App, print_json, table
from failover.doctor import CheckResult, run_checks


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def doctor(app: App, as_json: bool) -> None:
    """Check that every configured action could work right now (credentials, campaigns and budgets,
    notification URLs, webhook reachability, our own /book page), without switching anything.

    Exit 0 if all are ready, 1 if any is not.
    """
    results = asyncio.run(_checks(app))
    if as_json:
        print_json([_dict(r) for r in results])
    else:
        click.echo(
            table(
                [
                    [r.portal, r.action, "ready" if r.ready else "NOT READY", f"{r.seconds:.1f}s", r.detail]
                    for r in results
                ],
                ["portal", "action", "state", "took", "detail"],
            )
        )
    raise SystemExit(0 if all(r.ready for r in results) else 1)


def _dict(r: CheckResult) -> dict[str, object]:
    return {
        "portal": r.portal,
        "action": r.action,
        "ready": r.ready,
        "detail": r.detail,
        "seconds": r.seconds,
    }


async def _checks(app: App) -> list[CheckResult]:
    from failover.service import (
        build_actions,  # heavy (web, probes): only when needed
        staff_directory,
    )
    from failover.staff import StaffAlerts
    from failover.store import AsyncStore

    # The actions are the service's: they use the async API.
    store = AsyncStore(app.settings.store, data_key=app.settings.sealing_key())
    try:
        async with httpx.AsyncClient(timeout=10.0) as http:
            staff = StaffAlerts(staff_directory(app.settings), store, time.time)
            return await run_checks(build_actions(app.settings, store, http, staff, time.time))
    finally:
        await store.close()
