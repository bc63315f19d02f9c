"""``portalguard staff add|passwd|remove|list``: the staff console's accounts."""

from __future__ import annotations

import getpass
import re
import sys

import click

from failover.cli.common import App, fail, print_json, read_only, table
from failover.staff_accounts import PasswordError, check_policy, hash_password
from failover.store import STAFF_ROLES

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


@click.group("staff")
def staff_group() -> None:
    """Staff accounts for the staff pages: a viewer sees, an operator also decides.

    Passwords are asked twice on a terminal; scripts pass one line on stdin with `--password-stdin`.
    Only a scrypt hash is stored. The config's `staff.username`/`staff.password` stays one operator account.
    """


@staff_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(STAFF_ROLES), default="viewer", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from one line of stdin (for scripts).")
@click.pass_obj
def add(app: App, name: str, role: str, password_stdin: bool) -> None:
    """Add the staff account NAME."""
    _check_name(name)
    if app.store.staff_account(name) is not None:
        fail(f"staff account {name!r} exists already (change its password with `portalguard staff passwd {name}`)")
    encoded = hash_password(_new_password(password_stdin))
    if not app.store.add_staff_account(name, role, encoded):
        fail(f"staff account {name!r} exists already (change its password with `portalguard staff passwd {name}`)")
    app.store.add_event("staff_account", None, op="add", account=name, role=role, by=_who())
    click.echo(f"staff account added: {name} ({role})")


@staff_group.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from one line of stdin (for scripts).")
@click.pass_obj
def passwd(app: App, name: str, password_stdin: bool) -> None:
    """Set a new password for the staff account NAME (it also lifts a login delay)."""
    _known(app, name)
    if not app.store.set_staff_password(name, hash_password(_new_password(password_stdin))):
        _unknown(name)
    app.store.add_event("staff_account", None, op="passwd", account=name, by=_who())
    click.echo(f"password changed: {name}")


@staff_group.command("remove")
@click.argument("name")
@click.pass_obj
def remove(app: App, name: str) -> None:
    """Remove the staff account NAME (its open sessions end at their next request)."""
    if not app.store.remove_staff_account(name):
        _unknown(name)
    app.store.add_event("staff_account", None, op="remove", account=name, by=_who())
    click.echo(f"staff account removed: {name}")


@staff_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@read_only
def list_(app: App, as_json: bool) -> None:
    """List the staff accounts: name, role, created (never a password or its hash)."""
    accounts = app.store.staff_accounts()
    if as_json:
        print_json([{"name": a.name, "role": a.role, "created": a.created, "updated": a.updated} for a in accounts])
        return
    if not accounts:
        click.echo("no staff accounts (add one with `portalguard staff add NAME --role operator`)")
        return
    click.echo(table([[a.name, a.role, app.when(a.created)] for a in accounts], ["name", "role", "created"]))


def _check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        fail(f"{name!r} cannot be an account name: use 1–64 letters, digits, '.', '_', '@' or '-'", 2)


def _known(app: App, name: str) -> None:
    if app.store.staff_account(name) is None:
        _unknown(name)


def _unknown(name: str) -> None:
    fail(f"no staff account {name!r} (see `portalguard staff list`)")


def _new_password(from_stdin: bool) -> str:
    """The new password, from stdin's first line or asked twice on a terminal; checked by the policy."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif _is_terminal():
        password = click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password")
    else:
        fail("no terminal to ask the password on: pass it on one line of stdin with --password-stdin", 2)
    try:
        check_policy(password)
    except PasswordError as err:
        fail(str(err), 2)
    return password


def _is_terminal() -> bool:
    return sys.stdin.isatty()


def _who() -> str:
    """Who ran the command, for the audit log: the operating-system user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
