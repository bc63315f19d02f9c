"""``portalguard store migrate``: a single instance's store copied into another (SQLite into PostgreSQL)."""

from __future__ import annotations

import click

from failover.cli.common import EXIT_CONFIG, App, fail, read_only


@click.group("store")
def store_group() -> None:
    """The store itself: copy a SQLite store into PostgreSQL."""


@store_group.command("migrate")
@click.option("--from", "source", required=True, metavar="STORE", help="The store to copy (a SQLite file or a URL).")
@click.option("--to", "target", required=True, metavar="STORE", help="The empty store to fill (postgresql://…).")
@click.option("--replace", is_flag=True, help="Empty the target first if it holds data (it is refused otherwise).")
@click.pass_obj
@read_only
def migrate(app: App, source: str, target: str, replace: bool) -> None:
    """Copy every table of one store into another, and verify each table's row count.

    For moving a single instance onto PostgreSQL: stop `portalguard run` (the copy refuses a store a
    service holds), run this, set `store:` to the URL (and `server.secret_file`), start it again.
    History, booking requests and the appointment mirror go over as stored (sealed data stays sealed:
    keep the same data_key). Both stores are brought to this portalguard's schema first. The config
    gives the data key (`-c`); its own `store:` is not used.
    """
    from failover.store import StoreError, service_lock
    from failover.store.copy import Copied, copy_store
    from failover.store.engine import shown
    from failover.store.sync import Store

    if shown(source) == shown(target):
        fail("--from and --to are the same store", EXIT_CONFIG)
    key = app.settings.sealing_key()

    def progress(c: Copied) -> None:
        click.echo(f"  {c.table}: {c.rows:,} row(s)")

    try:
        with service_lock(source), service_lock(target):
            src, dst = Store(source, data_key=key), Store(target, data_key=key)
            try:
                click.echo(f"copying {src.path} into {dst.path}")
                done = copy_store(src, dst, replace=replace, progress=progress)
            finally:
                src.close()
                dst.close()
    except StoreError as err:
        fail(str(err), EXIT_CONFIG)
    total = sum(c.rows for c in done)
    click.echo(f"done: {total:,} row(s) in {len(done)} table(s), every count verified")
    click.echo(f"next: set store: to {shown(target)} (and server.secret_file), then start portalguard run")
