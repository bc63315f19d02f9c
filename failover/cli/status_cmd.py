"""``portalguard status``: what the service knows and does, read from the store."""

from __future__ import annotations

from typing import Any

import click

from failover.cli.common import STALE_AFTER, App, print_json, read_only
from failover.cli.drill_record import last_drill


def status_data(app: App) -> dict[str, Any]:
    """The status document (also what `--json` prints): per portal id, plus the service."""
    store = app.reader
    now = store.clock()
    heartbeat = store.value("heartbeat")
    out: dict[str, Any] = {
        "service": {
            # Its clock, read on our monotonic one, is fresh; else (it published none) by our clock.
            "running": app.service_now() is not None or (heartbeat is not None and now - heartbeat < STALE_AFTER),
            "heartbeat": heartbeat,
        },
        "portals": {},
    }
    live = _sites(app, out)
    for pid in app.status_config.portals:
        out["portals"][pid] = _portal(app, pid, now)
        out["portals"][pid]["sites"] = live.get(pid, {})
    return out


def _sites(app: App, out: dict[str, Any]) -> dict[str, dict[str, str]]:
    """``service.leader`` and ``sites`` into ``out``; returns each portal's verdict per live site.
    Several instances write their heartbeats and the lease into the store; one instance alone
    writes neither, and is its own leader while it runs."""
    sites, verdicts, lease = app.reader.site_view()
    service = out["service"]
    if not sites:
        site = app.status_config.site
        service["leader"] = site if service["running"] else None
        out["sites"] = {
            site: {"alive": service["running"], "last_seen": service["heartbeat"], "leader": service["running"]}
        }
        return (
            {pid: {site: app.reader.portal(pid).verdict} for pid in app.status_config.portals}
            if service["running"]
            else {}
        )
    leader = lease.site if lease is not None and lease.held else None
    service["leader"] = leader
    # Several instances: the heartbeat is the leader's; any live site means the service runs.
    service["running"] = bool(service["running"]) or any(s.alive for s in sites)
    out["sites"] = {
        s.site: {
            "alive": s.alive,
            "last_seen": s.last_seen,
            "seen_ago": round(s.age, 1),
            "leader": s.site == leader,
            "host": s.host,
            "network_down": s.network_down,
        }
        for s in sites
    }
    alive = {s.site for s in sites if s.alive}
    per_portal: dict[str, dict[str, str]] = {}
    for v in verdicts:
        if v.site in alive:
            per_portal.setdefault(v.portal, {})[v.site] = v.health
    return per_portal


def _portal(app: App, pid: str, now: float) -> dict[str, Any]:
    store, config = app.reader, app.status_config.portals[pid]
    row = store.portal(pid)
    override = store.override(pid, now)
    window = store.active_maintenance(pid, now)
    actions = {a.action: a for a in store.actions(pid)}
    return {
        "name": config.name,
        "clinic": config.clinic,  # of a dental group
        "verdict": row.verdict,
        "verdict_since": row.verdict_since,
        "failover": row.failover,
        "failover_since": row.since,
        "reason": row.reason,
        "incident": row.incident,
        # A flapping hold (the orchestrator's): failover stays on although the portal is up.
        "hold": store.value(f"flapping_hold:{pid}") if row.failover else None,
        "override": None
        if override is None
        else {
            "mode": override.mode,
            "reason": override.reason,
            "expires": override.expires,
        },
        "maintenance": None
        if window is None
        else {
            "id": window.id,
            "mode": window.mode,
            "start": window.start,
            "end": window.end,
            "reason": window.reason,
        },
        "endpoints": {
            e.endpoint: {
                "ok": e.ok,
                "status": e.status,
                "failure": e.error_kind,
                "detail": e.detail,
                "since": e.since,
            }
            for e in store.endpoints(pid)
        },
        "actions": {name: _action(actions.get(name), row.failover) for name in config.actions},
        "last_drill": last_drill(store, pid),
        "mirror": _mirror(app, pid, now),
    }


def _mirror(app: App, pid: str, now: float) -> dict[str, Any] | None:
    """The appointment mirror at a glance: counts and times (never names: status is for everyone)."""
    config = app.status_config.portals[pid]
    if not config.mirror:
        return None
    import datetime as dt

    state = app.reader.mirror_state(pid, dt.datetime.fromtimestamp(now, app.tz).date())
    out: dict[str, Any] = {
        "last_success": state.last_success,
        "last_attempt": state.last_attempt,
        "booked": state.booked,
        "last_error_kind": state.last_error_kind,
        "last_error": state.last_error,
        "mail": None,
        "admin_source": config.mirror_admin,
    }
    if config.mirror_mail:
        mail = app.reader.mail_state(pid)
        out["mail"] = {
            "last_success": mail.last_success if mail else None,
            "last_attempt": mail.last_attempt if mail else None,
            "last_error_kind": mail.last_error_kind if mail else None,
            "last_error": mail.last_error if mail else None,
            "unread": mail.unread if mail else 0,
        }
    return out


def _action(row: Any, failover: bool) -> dict[str, Any]:
    if row is None:  # the service has not reconciled it yet
        return {
            "desired": "on" if failover else "off",
            "observed": "unknown",
            "last_error": None,
            "attempts": 0,
        }
    return {
        "desired": row.desired,
        "observed": row.observed,
        "last_error": row.last_error,
        "permanent": row.permanent,
        "attempts": row.attempts,
        "next_attempt": row.next_attempt or None,
    }


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@read_only
def status(app: App, as_json: bool) -> None:
    """Per portal: the verdict, failover state, each action's desired/observed state and last error,
    the override or maintenance window in force, and the last drill. Works while the service is stopped.
    """
    data = status_data(app)
    if as_json:
        print_json(data)
        return
    svc = data["service"]
    click.echo(
        f"service: {'running' if svc['running'] else 'NOT RUNNING'} (last heartbeat {app.when(svc['heartbeat'])})"
    )
    _echo_sites(app, data)
    for pid, p in data["portals"].items():
        click.echo("")
        state = "FAILOVER ON" if p["failover"] else "failover off"
        hold = p["hold"]
        why = "held on: switching too often" if hold else p["reason"]
        named = pid if p["name"] == pid else f"{p['name']} ({pid})"
        if p["clinic"] is not None:
            named = f"{app.status_config.portals[pid].clinic_name} — {named}"
        click.echo(
            f"{named}: {p['verdict'].upper()} since {app.when(p['verdict_since'])} — {state}"
            + (f" since {app.when(p['failover_since'])} ({why})" if p["failover"] else "")
        )
        if hold:
            ends = app.when(hold["until"]) if hold.get("until") else "not known"
            click.echo(
                f"  held on since {app.when(hold['since'])}: {hold['count']} failovers within an hour "
                f"(failover.max_switches_per_hour); ends at {ends} if the portal stays up — "
                f"decide sooner: portalguard failover on|off|auto {pid}"
            )
        if p["override"]:
            o = p["override"]
            until = f" until {app.when(o['expires'])}" if o["expires"] else " (until `failover auto`)"
            click.echo(f"  override: {o['mode']}{until} — {o['reason']}")
        if p["maintenance"]:
            m = p["maintenance"]
            click.echo(f"  maintenance #{m['id']} ({m['mode']}) until {app.when(m['end'])} — {m['reason']}")
        if len(data["sites"]) > 1:
            seen = ", ".join(f"{site} {verdict}" for site, verdict in sorted(p["sites"].items())) or "no live site"
            alone = " — one site decides alone" if len(p["sites"]) == 1 else ""
            click.echo(f"  sites: {seen} (combined: {p['verdict']}){alone}")
        for name, e in p["endpoints"].items():
            what = "ok" if e["ok"] else f"FAILING {e['failure']} {e['detail']}"
            click.echo(f"  endpoint {name}: {what} (since {app.when(e['since'])})")
        for name, a in p["actions"].items():
            mark = "✓" if a["desired"] == a["observed"] else "…"
            err = f" — error: {a['last_error']}" if a["last_error"] else ""
            click.echo(f"  {mark} action {name}: desired {a['desired']}, observed {a['observed']}{err}")
        if p["mirror"] is not None:
            click.echo(f"  mirror: {_mirror_line(app, p['mirror'])}")
            if p["mirror"]["mail"] is not None:
                click.echo(f"  mirror mailbox: {_mail_line(app, p['mirror']['mail'])}")
        click.echo(f"  last drill: {_drill_line(app, p['last_drill'])}")


def _echo_sites(app: App, data: dict[str, Any]) -> None:
    """Several instances: who leads, and which sites are heard of (one instance alone: nothing)."""
    sites = data["sites"]
    if len(sites) <= 1:
        return
    leader = data["service"]["leader"]
    click.echo(f"leader: {leader if leader else 'NONE (no instance holds the lease: nothing is switched)'}")
    for name, s in sorted(sites.items()):
        state = "alive" if s["alive"] else "SILENT (does not count)"
        role = ", leader" if s["leader"] else ""
        network = ", its own network is down (votes neither way)" if s.get("network_down") else ""
        click.echo(f"  site {name} on {s['host']}: {state}, last seen {s['seen_ago']:g} s ago{role}{network}")
    if sum(s["alive"] for s in sites.values()) == 1:
        click.echo("  one site alone is alive: it decides alone")


def _mirror_line(app: App, m: dict[str, Any]) -> str:
    if not m["admin_source"]:  # a mailbox-only mirror: no admin screen syncs to speak of
        return f"{m['booked']} booked appointment(s) from today on (from booking e-mails only)"
    synced = app.when(m["last_success"]) if m["last_success"] else "never"
    line = f"{m['booked']} booked appointment(s) from today on, last synced {synced}"
    # An error older than the last success is history: only a sync failing now is worth a line.
    if m["last_error_kind"] and (m["last_success"] or 0) < (m["last_attempt"] or 0):
        line += f" — last sync FAILED: {m['last_error_kind']} ({m['last_error']})"
    return line


def _mail_line(app: App, m: dict[str, Any]) -> str:
    checked = app.when(m["last_success"]) if m["last_success"] else "never"
    line = f"last read {checked}"
    if m["unread"]:
        line += f", {m['unread']} mail(s) no template could read (see /staff/appointments)"
    if m["last_error_kind"] and (m["last_success"] or 0) < (m["last_attempt"] or 0):
        line += f" — FAILING: {m['last_error_kind']} ({m['last_error']})"
    return line


def _drill_line(app: App, drill: dict[str, Any] | None) -> str:
    if not drill:
        return "never"
    if drill["ok"]:
        return f"passed at {app.when(drill['at'])}"
    last_ok = drill.get("last_ok_at")
    return f"FAILED at {app.when(drill['at'])}; last passed: {app.when(last_ok) if last_ok else 'never'}"
