"""The staff console's availability report (``/staff/report``): its downloads, Markdown and CSV.
The page itself is ``templates/report.html``; the figures come from ``failover/report/``."""

from __future__ import annotations

from starlette.responses import Response

from failover.report.availability import Availability
from failover.report.period import Period
from failover.report.render import View, csv_report, markdown

MEDIA_TYPES = {"md": "text/markdown; charset=utf-8", "csv": "text/csv; charset=utf-8"}


def download(reports: list[Availability], period: Period, view: View, language: str, fmt: str) -> Response:
    """The month's report as a file: Markdown in the page's language, or CSV (with a BOM: Excel then
    reads it as UTF-8) of one row per portal."""
    body = markdown(reports, period, view, language) if fmt == "md" else "\ufeff" + csv_report(reports, view)
    name = f"availability-{period.label}.{fmt}"
    headers = {"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"}
    return Response(body.encode("utf-8"), media_type=MEDIA_TYPES[fmt], headers=headers)
