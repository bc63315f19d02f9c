"""Who staff are, as plain data: the Apprise targets of each notify action and which portal uses
which actions, plus what every message links to. Built from the settings by the notify action
(``failover.service.staff_directory``): this package never reads the settings itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from failover.redact import url_origin


@dataclass(frozen=True, slots=True)
class Target:
    """One Apprise URL of one notify action."""

    action: str  # the notify action's name
    index: int  # position in its ``urls``
    url: str  # secret: never logged, stored or shown (``where`` is)
    language: str  # "ja" | "en"
    timeout: float  # seconds Apprise may take

    @property
    def id(self) -> str:
        return f"{self.action}#{self.index}"

    @property
    def where(self) -> str:
        return f"actions.{self.action}.urls[{self.index}] ({url_origin(self.url)})"


@dataclass(frozen=True, slots=True)
class StaffDirectory:
    actions: Mapping[str, tuple[Target, ...]]  # notify action name -> its targets
    portals: Mapping[str, tuple[str, ...]]  # portal id -> the names of its notify actions
    clinic: str
    timezone: str
    staff_url: str  # the link to /staff in every message
    public_url: str | None  # for the fallback page's link; None: no link (a loopback one would mislead)
    names: Mapping[str, str] = field(default_factory=dict)  # portal id -> the name people read (default the id)

    def targets(self, portal: str | None, via: str | None = None) -> list[Target]:
        """The targets of ``via``, else of the portal's notify actions, else of every notify action."""
        if via is not None:
            names: tuple[str, ...] = (via,)
        elif portal is not None:
            names = self.portals.get(portal, ())
        else:
            names = tuple(self.actions)
        return [t for name in names for t in self.actions.get(name, ())]

    def target(self, target_id: str) -> Target | None:
        """The target a queued row names; None if the configuration no longer has it."""
        action, _, index = target_id.rpartition("#")
        targets = self.actions.get(action, ())
        return targets[int(index)] if index.isdigit() and int(index) < len(targets) else None
