"""``portalguard failover on|off|auto PORTAL``: manual override, applied by the service within 2 s."""

from __future__ import annotations

import click

from failover.cli.common import App, duration_arg
from watchdog.duration import format_duration


@click.group("failover")
def failover_group() -> None:
    """Force failover on or off for a portal, or hand it back to the automatic verdict.

    The override is written to the store; the running service applies it within 2 seconds.
    It wins over maintenance windows and the verdict until it expires or `failover auto`.
    """


MAX_OFF = 7 * 86400.0  # an "off" override longer than a week is forgotten, not decided


def _off_for(for_: str | None, yes_really: bool) -> str | None:
    """An "off" override switches protection off: it must say for how long (at most 7 days), and
    "never" needs ``--yes-really``. Returns the duration to pass on (None: never)."""
    if for_ is None:
        raise click.UsageError(
            "failover off needs --for DURATION (at most 7d), e.g. --for 2h: a forgotten override would leave "
            "the portal unprotected. For an override without end: --for never --yes-really"
        )
    if for_.strip().lower() == "never":
        if not yes_really:
            raise click.UsageError(
                "--for never keeps failover off until `failover auto`, through any outage: add --yes-really"
            )
        return None
    if duration_arg(for_) > MAX_OFF:
        raise click.BadParameter(f'"{for_}" is longer than 7d (use --for never --yes-really)', param_hint="--for")
    return for_


def _set(app: App, portal: str, mode: str, reason: str, for_: str | None) -> None:
    (pid,) = app.portal_ids(portal)
    now = app.store.clock()
    expires = now + duration_arg(for_) if for_ else None
    app.store.set_override(pid, mode, reason, expires)
    app.store.clear_permanent_errors(pid)  # a human decided: actions stopped by an error try again
    app.store.add_event("override", pid, mode=mode, reason=reason, expires=expires)
    until = (
        f" for {format_duration(expires - now)} (until {app.when(expires)})" if expires else " until `failover auto`"
    )
    click.echo(f"{pid}: failover forced {mode.upper()}{until}.")


_reason = click.option("--reason", required=True, help="Why (kept in the audit log; shown in status).")
_for = click.option("--for", "for_", metavar="DURATION", help="Expire after this long, e.g. 2h (default: never).")


@failover_group.command("on")
@click.argument("portal")
@_reason
@_for
@click.pass_obj
def force_on(app: App, portal: str, reason: str, for_: str | None) -> None:
    """Force failover ON: fallback page, ads and staff notice, whatever the verdict says."""
    _set(app, portal, "on", reason, for_)


@failover_group.command("off")
@click.argument("portal")
@_reason
@click.option(
    "--for",
    "for_",
    metavar="DURATION",
    help="Required: expire after this long, at most 7d (e.g. 2h); `never` only with --yes-really.",
)
@click.option("--yes-really", is_flag=True, help="Allow --for never (failover stays off until `failover auto`).")
@click.pass_obj
def force_off(app: App, portal: str, reason: str, for_: str | None, yes_really: bool) -> None:
    """Force failover OFF (e.g. a known false alarm), whatever the verdict says.

    Staff are told once per incident if the portal goes DOWN meanwhile.
    """
    _set(app, portal, "off", reason, _off_for(for_, yes_really))


@failover_group.command("auto")
@click.argument("portal")
@click.pass_obj
def auto(app: App, portal: str) -> None:
    """Remove the override: the verdict (and maintenance windows) decide again."""
    (pid,) = app.portal_ids(portal)
    removed = app.store.clear_override(pid)
    app.store.add_event("override", pid, mode="auto")
    click.echo(f"{pid}: automatic." if removed else f"{pid}: was already automatic.")
