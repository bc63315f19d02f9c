"""``portalguard page export``: the static copies of the fallback pages, for the reverse proxy."""

from __future__ import annotations

from pathlib import Path

import click

from failover.cli.common import EXIT_CONFIG, App, fail, read_only


@click.group("page")
def page_group() -> None:
    """The fallback page's static copy, served by the reverse proxy when portalguard does not answer."""


@page_group.command("export")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.pass_obj
@read_only
def export(app: App, directory: Path | None) -> None:
    """Write each portal's fallback page as a static HTML file into DIRECTORY.

    DIRECTORY defaults to `server.static_fallback_dir`, which `run` also keeps up to date whenever the
    config changes. The pages show the clinic's name, the phone as a tel: link, hours and address,
    and a link to the portal; the booking form is replaced by the phone call (nothing could store it
    while portalguard is down). Files: PORTAL.html per portal and index.html. Needs no secrets.

    Serve them from the reverse proxy on 502/503/504: deploy/nginx/portalguard.conf,
    deploy/caddy/Caddyfile.
    """
    from failover.web.static_export import export as export_pages

    settings = app.settings
    target = directory or settings.server.static_fallback_dir
    if target is None:
        fail(
            "no directory: give one (portalguard page export /var/lib/portalguard/static) or set "
            "server.static_fallback_dir in the config",
            EXIT_CONFIG,
        )
    try:
        changed = export_pages(settings, target)
    except OSError as err:
        fail(f"cannot write the static pages into {target}: {err.strerror or err} (check the path and its permissions)")
    names = sorted(settings.portals)
    click.echo(f"{target}: {len(names) + 1} page(s) (index.html, {', '.join(f'{n}.html' for n in names)})")
    click.echo(f"changed: {', '.join(changed)}" if changed else "unchanged: every page was up to date")
