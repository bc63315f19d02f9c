"""``portalguard probe``: one round of probes now."""

from __future__ import annotations

import asyncio
import math
import random
import time

import click

from failover.cli.common import App, print_json, table
from watchdog.http_client import make_probe_client
from watchdog.metrics import WatchdogMetrics, canary_label
from watchdog.monitor import Monitor
from watchdog.probes import run_probe
from watchdog.result import FailureKind, ProbeResult
from watchdog.scheduler import ProbeJob, Scheduler


@click.command("probe")
@click.option("--portal", "portal", metavar="PORTAL", help="Only this portal (canaries are always probed).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def probe(app: App, portal: str | None, as_json: bool) -> None:
    """Probe every endpoint and canary once, now, and print what was found.

    Exit 0 if everything answered as expected, 1 if something is failing, 2 on a config error.
    Does not change any state: safe to run beside `portalguard run`.
    """
    wanted = set(app.portal_ids(portal))
    results = asyncio.run(_round(app, wanted))
    now = time.time()
    rows = [_row(job, res, now) for job, res in results]
    if as_json:
        print_json(rows)
    else:
        click.echo(
            table(
                [
                    [
                        r["portal"] or "(canary)",
                        r["endpoint"],
                        "ok" if r["ok"] else "FAIL",
                        str(r["status"] or "-"),
                        f"{r['ms']}",
                        "" if r["tls_days_left"] is None else str(r["tls_days_left"]),
                        r["failure"] or "",
                        r["detail"],
                    ]
                    for r in rows
                ],
                ["portal", "endpoint", "ok", "status", "ms", "tls_days", "failure", "detail"],
            )
        )
        for r in rows:
            if r.get("check"):
                click.echo(f"{r['portal']}/{r['endpoint']}: the staff login failed: check {r['check']}")
    raise SystemExit(0 if all(r["ok"] for r in rows) else 1)


async def _round(app: App, wanted: set[str]) -> list[tuple[ProbeJob, ProbeResult]]:
    from prometheus_client import CollectorRegistry

    s = app.settings
    monitor = Monitor(s, WatchdogMetrics(CollectorRegistry()), clock=lambda: 0.0)
    jobs = [j for j in monitor.jobs() if j.portal is None or j.portal in wanted]
    async with make_probe_client(s.probe) as client:

        async def run(job: ProbeJob) -> ProbeResult:
            return await run_probe(client, job.kind, job.target, job.timeout, s.probe)

        scheduler = Scheduler(jobs, run, lambda *_: None, s.probe.concurrency, 0.0, random.Random())
        return await scheduler.run_once()


def _row(job: ProbeJob, res: ProbeResult, now: float) -> dict[str, object]:
    row = {
        "portal": job.portal,
        "endpoint": job.endpoint if job.portal else canary_label(job.endpoint),
        "ok": res.ok,
        "status": res.status,
        "ms": round(res.duration * 1000),
        "tls_days_left": _days_left(res.tls_expiry, now),
        "failure": res.error_kind.value if res.error_kind else None,
        "detail": res.detail,
    }
    if res.error_kind is FailureKind.LOGIN:  # which credentials: a changed password is the usual cause
        key = f"portals.{job.portal}.endpoints.{job.endpoint}.login"
        row["check"] = f"{key}.username and {key}.password (was the password changed?)"
    return row


def _days_left(expiry: float | None, now: float) -> int | None:
    """Whole days until the certificate expires (None for http): rounded down, so 0 means "today"."""
    return None if expiry is None else math.floor((expiry - now) / 86400)
