"""``portalguard keygen``: a new data key, for sealing patient data in the store."""

from __future__ import annotations

import click


@click.command("keygen")
def keygen() -> None:
    """Print a new random data key: the key patient data (booking requests, the appointment mirror) is
    sealed with in the store.

    The key alone goes to stdout, one line on where to put it to stderr. Needs no config.
    """
    from failover.crypto import DataKey

    text, key = DataKey.generate()
    click.echo(text)
    click.echo(
        f"key {key.key_id}: put PORTALGUARD_DATA_KEY=<the key> in the service's environment file (chmod 600; "
        "systemd EnvironmentFile=, compose env_file:) and `data_key: ${PORTALGUARD_DATA_KEY}` in portalguard.yaml; "
        "keep a copy apart from the store's backups: without it the sealed data cannot be read.",
        err=True,
    )
