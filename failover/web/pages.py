"""The pages' templates and the helpers they need, without the web framework.

Shared by the app (pages served live) and the static export (``portalguard page export``), which
must render the same clinic block and call button without importing Starlette.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
ASSETS = HERE / "static"
PAGES = (
    "book.html",
    "done.html",
    "error.html",
    "chooser.html",
    "staff.html",
    "login.html",
    "appointments.html",
    "static.html",
    "overview.html",
    "decide.html",
    "confirm.html",
    "history.html",
    "incident.html",
    "drill.html",
    "report.html",
)


def tel_href(phone: str) -> str:
    """The ``tel:`` link of a phone number as written in the config ("03-1234-5678")."""
    return "tel:" + "".join(c for c in phone if c.isdigit() or c in "+-")


def load_templates(directory: Path = TEMPLATES) -> dict[str, Template]:
    env = Environment(
        loader=FileSystemLoader(directory),
        autoescape=True,  # every value is escaped, whatever its origin
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    return {name: env.get_template(name) for name in PAGES}
