"""``portalguard drill PORTAL``: rehearse a failover against the real actions, without effect."""

from __future__ import annotations

import asyncio
import time

import click
import httpx

from failover.cli.common import App, fail, print_json, table
from failover.cli.drill_record import record_drill
from failover.drill import for_the_log, rehearse
from failover.store import AsyncStore


@click.command("drill")
@click.argument("portal")
@click.option("--json", "as_json", is_flag=True)
@click.option("--force", is_flag=True, help="Rehearse even while PORTAL is in failover (staff get [訓練] messages).")
@click.pass_obj
def drill(app: App, portal: str, as_json: bool, force: bool) -> None:
    """Rehearse PORTAL's failover with its real configured actions, harmlessly: Google Ads mutates
    with validate_only (no spend), staff notifications really sent but marked [訓練/DRILL], the
    fallback page shown only on a preview link, webhooks sent with "drill": true.

    Prints pass/fail per action with timings, records the drill (see `status`), exits 1 on any failure.
    Refuses (exit 1) while PORTAL is in failover unless --force: patients then see the fallback page,
    not the portal, and a [訓練] message in the middle of a real outage only confuses staff.
    """
    (pid,) = app.portal_ids(portal)
    if app.store.portal(pid).failover and not force:
        fail(
            f"{pid} is in failover right now (a real outage or an override): a drill would send [訓練/DRILL] "
            "messages in the middle of it and its result would say patients see the portal, which they do not. "
            "Run it once the portal is back, or add --force",
            1,
        )
    results = asyncio.run(_drill(app, pid))
    ok = all(r["ok"] for r in results)
    now = app.store.clock()
    app.store.add_event("drill", pid, ok=ok, results=for_the_log(results))
    record_drill(app.store, pid, ok, now)
    if as_json:
        print_json({"portal": pid, "ok": ok, "actions": results})
    else:
        rows = [[r["action"], "pass" if r["ok"] else "FAIL", f"{r['seconds']:.2f}s", r["detail"]] for r in results]
        click.echo(table(rows, ["action", "result", "took", "detail"]))
        click.echo(f"drill {'PASSED' if ok else 'FAILED'} for {pid}")
    raise SystemExit(0 if ok else 1)


async def _drill(app: App, pid: str) -> list[dict[str, object]]:
    from failover.service import build_actions, staff_directory
    from failover.staff import StaffAlerts

    # The actions are the service's: they use the async API.
    store = AsyncStore(app.settings.store, data_key=app.settings.sealing_key())
    try:
        async with httpx.AsyncClient(timeout=10.0) as http:
            staff = StaffAlerts(staff_directory(app.settings), store, time.time)
            actions = build_actions(app.settings, store, http, staff, time.time)[pid]
            return await rehearse(actions, pid, time.time())
    finally:
        await store.close()
