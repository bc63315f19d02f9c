"""The clinic as patients and staff see it: name, phone, hours, address, time zone.

Plain display data from the config, handed to the fallback page, the staff messages and the
webhooks; it imports nothing of the application, so any layer may use it.
"""

from __future__ import annotations

import zoneinfo
from typing import Annotated

from pydantic import AfterValidator, Field

from watchdog.config_types import StrictModel


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f'"{value}" is not a time zone (use an IANA name like Asia/Tokyo)') from None
    return value


class Clinic(StrictModel):
    name: str = Field(min_length=1, description="Shown on the fallback page and in notifications.")
    phone: str = Field(pattern=r"^\+?[0-9][0-9\- ()]{5,20}$", description="Shown as a tel: link.")
    timezone: Annotated[str, AfterValidator(_timezone)] = "Asia/Tokyo"
    name_en: str = ""
    address: str = ""
    hours: str = Field("", description="Opening hours, free text, shown on the fallback page.")
    address_en: str = Field("", description="The address on the English page (else `address`).")
    hours_en: str = Field("", description="Opening hours on the English page (else `hours`).")
    website: str = ""

    def text(self, key: str, lang: str) -> str:
        """``name``/``address``/``hours`` in ``lang``: the ``_en`` variant on English pages when set."""
        english = getattr(self, f"{key}_en") if lang == "en" else ""
        return english or getattr(self, key)
