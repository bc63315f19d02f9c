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
    clinic: str  # what messages about the whole instance say (the network, the store): every clinic
    timezone: str
    staff_url: str  # the link to /staff in every message
    public_url: str | None  # for the fallback page's link; None: no link (a loopback one would mislead)
    names: Mapping[str, str] = field(default_factory=dict)  # portal id -> the name people read (default the id)
    clinics: Mapping[str, str] = field(default_factory=dict)  # portal id -> its clinic's name
    group: str | None = None  # the notify action of the group's own targets (on every portal), if any

    def clinic_of(self, portal: str | None) -> str:
        """The clinic a message speaks for: the portal's, or every clinic for the whole instance."""
        return self.clinics.get(portal, self.clinic) if portal is not None else self.clinic

    def targets(self, portal: str | None, via: str | None = None) -> list[Target]:
        """The targets of ``via``, else of the portal's notify actions, else of every notify action;
        a URL that two of them share gets the message once."""
        if via is not None:
            names: tuple[str, ...] = (via,)
        elif portal is not None:
            names = self.portals.get(portal, ())
        else:
            names = tuple(self.actions)
        taken = self._clinic_urls(portal) if via is not None and via == self.group else set()
        return _once([t for name in names for t in self.actions.get(name, ())], taken)

    def covered(self, portal: str | None, via: str | None) -> bool:
        """True when ``via`` is the group's action and the portal's own actions tell all its targets."""
        group = self.actions.get(via or "", ()) if via is not None and via == self.group else ()
        return bool(group) and {t.url for t in group} <= self._clinic_urls(portal)

    def _clinic_urls(self, portal: str | None) -> set[str]:
        """The URLs the portal's own notify actions already tell: the group's copy would repeat them."""
        own = (n for n in self.portals.get(portal, ()) if n != self.group) if portal is not None else ()
        return {t.url for name in own for t in self.actions.get(name, ())}

    def target(self, target_id: str) -> Target | None:
        """The target a queued row names; None if the configuration no longer has it."""
        action, _, index = target_id.rpartition("#")
        targets = self.actions.get(action, ())
        return targets[int(index)] if index.isdigit() and int(index) < len(targets) else None


def _once(targets: list[Target], taken: set[str]) -> list[Target]:
    """``targets`` without the URLs in ``taken`` and without a second target of the same URL."""
    seen = set(taken)
    out = []
    for t in targets:
        if t.url not in seen:
            seen.add(t.url)
            out.append(t)
    return out
