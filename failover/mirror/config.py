"""A portal's ``mirror:`` section: how often, how far ahead, how long kept, and from which source:
the admin screen (``source``), the booking mails (``mail``, ``failover.mirror.mail.config``), or both.

The union of source types derives from ``failover.mirror.sources.SOURCES``: a source added there is a
config type here. ``failover.settings`` holds it as ``FailoverPortal.mirror`` and asks
``endpoint_problem`` whether the portal's endpoints can serve it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Union
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from failover.mirror.mail.config import MailSource
from failover.mirror.sources import SOURCES
from failover.mirror.sources.base import admin_endpoint
from watchdog.config_types import Duration, StrictModel, at_least

if TYPE_CHECKING:
    from watchdog.targets import Endpoint

# One arm per kind of the sources table, told apart by ``type``.
SourceConfig = Annotated[Union[tuple(kind.config for kind in SOURCES.values())], Field(discriminator="type")]  # noqa: UP007
SOURCE_TYPES = tuple(SOURCES)

MAX_DAYS_AHEAD = 62


class MirrorSettings(StrictModel):
    every: Annotated[Duration, at_least(60.0, "each sync logs into the portal's admin screen")] = Field(
        600.0, description="Sync interval while the portal is up."
    )
    days_ahead: int = Field(14, ge=1, le=MAX_DAYS_AHEAD, description="Today .. today + days_ahead - 1 (clinic zone).")
    retention: Annotated[Duration, at_least(86400.0, "staff look up yesterday's appointments")] = Field(
        7 * 86400.0, description="An appointment is deleted this long after its start."
    )
    source: SourceConfig | None = Field(None, description="The admin screen (or feed) the mirror lists days from.")
    mail: MailSource | None = Field(None, description="The portal's booking mails, read from the clinic's mailbox.")

    @model_validator(mode="after")
    def _a_source(self) -> MirrorSettings:
        if self.source is None and self.mail is None:
            raise ValueError(
                "needs a source: (the admin screen: admin_html, admin_csv or ics) or mail: (the portal's "
                "booking mails), or both"
            )
        return self

    def endpoint_problem(self, endpoints: Mapping[str, Endpoint]) -> str | None:
        """Why ``endpoints`` cannot serve this mirror, as ``key: message`` under ``mirror``; None if they can."""
        source = self.source
        if source is None or not SOURCES[source.type].login:
            return None
        name = admin_endpoint(endpoints, source.endpoint)
        if name is None and source.endpoint is not None:
            what = "is not an endpoint" if source.endpoint not in endpoints else "has no login:"
            return (
                f"mirror.source.endpoint: {source.endpoint} {what} (name an endpoint whose login: staff use, "
                "or leave endpoint out for the first admin endpoint with a login)"
            )
        if name is None:
            return (
                f"mirror: source {source.type} reads the admin screen through the staff login: add an "
                "endpoints.admin (or admin-<name>) endpoint with login:, or use source type ics"
            )
        endpoint = endpoints[name]
        hosts = {urlsplit(endpoint.url).hostname, *(h.lower() for h in endpoint.allow_redirect_hosts)}
        if urlsplit(source.url).hostname not in hosts:
            return (
                f"mirror.source.url: must be on the host of endpoints.{name} (or one of its "
                "allow_redirect_hosts): the staff session's cookies go nowhere else"
            )
        return None
