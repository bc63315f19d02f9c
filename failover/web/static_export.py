"""Each portal's fallback page as a static HTML file, for the reverse proxy to serve when
portalguard itself does not answer (stopped, crashed, its machine rebooting).

Without it, a service stopped during a failover leaves the ads running while ``/book`` answers
nothing: patients paid for arrive at an error page. The static copy says the same as the live page
minus the form (nothing could store it): the clinic's name, the phone as a ``tel:`` link, hours and
address, and a link to the portal for when it has recovered. Everything is inline (the CSS too):
the proxy serves one file and needs no other request to reach portalguard.

Files: ``PORTAL.html`` per portal and ``index.html`` (the only portal's page, or the group's list
of clinics with each one's call button). A manifest names what was written, so a portal removed
from the config loses its file at the next export, and nothing else in the directory is touched.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Template
from markupsafe import Markup

from failover.settings import Settings
from failover.web.i18n import DEFAULT_LANG, translator
from failover.web.pages import ASSETS, load_templates, tel_href

INDEX = "index.html"
MANIFEST = ".portalguard-pages"


@dataclass(frozen=True, slots=True)
class GroupClinic:
    """One clinic on the group's static list."""

    clinic: str
    phone: str
    tel_href: str
    book_url: str | None


def render_pages(settings: Settings, lang: str = DEFAULT_LANG) -> dict[str, str]:
    """File name -> HTML of every static page."""
    templates = load_templates()
    base = {
        "t": translator(lang),
        "lang": lang,
        "other_lang_url": None,  # one language per file: a switch would lead to the dead service
        "css": Markup((ASSETS / "app.css").read_text(encoding="utf-8")),  # our own file, not input
    }
    pages: dict[str, str] = {}
    for pid in settings.portals:
        clinic = settings.clinic_of(pid)
        pages[f"{pid}.html"] = templates["static.html"].render(
            **base,
            **_clinic_values(settings, pid, lang),
            clinics=None,
            book_url=str(settings.portals[pid].book_url),
            clinic=clinic,
        )
    if len(settings.portals) == 1:
        pages[INDEX] = pages[f"{next(iter(settings.portals))}.html"]
    else:
        pages[INDEX] = _group_page(settings, templates["static.html"], base, lang)
    return pages


def _clinic_values(settings: Settings, pid: str, lang: str) -> dict[str, str]:
    clinic = settings.clinic_of(pid)
    return {
        "clinic_name": clinic.text("name", lang),
        "clinic_hours": clinic.text("hours", lang),
        "clinic_address": clinic.text("address", lang),
        "tel_href": tel_href(clinic.phone),
    }


def _group_page(settings: Settings, template: Template, base: dict[str, object], lang: str) -> str:
    """Every portal's clinic with its call button (a clinic with two portals listed once)."""
    clinics: dict[str, GroupClinic] = {}
    for pid in settings.portals:
        clinic = settings.clinic_of(pid)
        name = clinic.text("name", lang)
        url = str(settings.portals[pid].book_url)
        clinics.setdefault(name, GroupClinic(name, clinic.phone, tel_href(clinic.phone), url))
    first = settings.clinic_of(next(iter(settings.portals)))
    return template.render(
        **base,
        clinic_name=settings.group_label(),
        clinic_hours="",
        clinic_address="",
        tel_href=tel_href(first.phone),
        clinic=first,
        clinics=list(clinics.values()),
        book_url=None,
    )


def export(settings: Settings, directory: Path) -> list[str]:
    """Write the pages into ``directory`` (created if missing); returns the names that changed.

    Each file is replaced atomically (written beside it, then renamed), so the proxy never serves a
    half-written page; a file whose content is unchanged is not rewritten."""
    directory.mkdir(parents=True, exist_ok=True)
    pages = render_pages(settings)
    changed = [name for name, html in pages.items() if _write_if_changed(directory / name, html)]
    previous = _manifest(directory)
    for gone in sorted(previous - pages.keys()):
        with contextlib.suppress(FileNotFoundError):
            (directory / gone).unlink()
        changed.append(gone)
    if previous != pages.keys():
        _write_if_changed(directory / MANIFEST, "".join(f"{name}\n" for name in sorted(pages)))
    return changed


def _write_if_changed(path: Path, text: str) -> bool:
    data = text.encode("utf-8")
    with contextlib.suppress(OSError):
        if path.read_bytes() == data:
            return False
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)  # the proxy's user reads it
    os.replace(tmp, path)
    return True


def _manifest(directory: Path) -> set[str]:
    try:
        text = (directory / MANIFEST).read_text(encoding="utf-8")
    except FileNotFoundError:
        return set()
    # Only names we could have written: a hand-edited manifest never deletes anything else.
    return {line for line in text.splitlines() if line.endswith(".html") and "/" not in line}
