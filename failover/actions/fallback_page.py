"""Action ``fallback_page``: flips the portal's page switch so ``/book`` serves the fallback page.

The switch lives in the store, and in the running service's memory (``ResilientStore``): the web
app answers ``/book`` from memory, so a full disk neither blocks the switch nor the redirect.
``observe`` does not trust the switch alone: it fetches our own ``/book/{portal}`` and sees what a
patient would get.
"""

from __future__ import annotations

from typing import Literal

from failover.actions.base import ActionContext, ActionError, Incident
from failover.links import location_header
from watchdog.config_types import StrictModel


class FallbackPageConfig(StrictModel):
    type: Literal["fallback_page"]


class FallbackPage:
    def __init__(self, name: str, config: FallbackPageConfig, deps: ActionContext) -> None:
        self.name = name
        self.deps = deps
        self.url = deps.links.own_url
        self._redirect = location_header(deps.links.book_url)  # as sent: non-ASCII percent-encoded

    async def observe(self) -> bool:
        import httpx  # on first use: loading the config (every CLI command does) must not load httpx

        try:
            resp = await self.deps.http.get(self.url, follow_redirects=False, timeout=5.0)
        except httpx.HTTPError as err:
            raise ActionError(
                f"fallback page: cannot reach our own {self.url} ({type(err).__name__}); is `portalguard run` up "
                f"and server.listen right?"
            ) from None
        if resp.status_code == 200:
            return True
        if resp.status_code in (302, 303, 307) and resp.headers.get("location") == self._redirect:
            return False
        raise ActionError(f"fallback page: {self.url} answered HTTP {resp.status_code}, neither page nor redirect")

    async def apply(self, incident: Incident) -> None:
        await self.deps.store.set_page(self.deps.portal_id, True)

    async def revert(self, incident: Incident) -> None:
        await self.deps.store.set_page(self.deps.portal_id, False)

    async def maintain(self, incident: Incident) -> None:
        return None

    async def check(self) -> str:
        if not await self.deps.store.writable():
            raise ActionError(f"fallback page: the store {self.deps.store.path} is not writable", permanent=True)
        state = "fallback page" if await self.observe() else "redirect to book_url"
        return f"{self.url} serves the {state}"

    async def drill(self, incident: Incident) -> str:
        """Patients keep the portal; staff see the fallback page on a preview link."""
        await self.check()
        query = self.deps.preview_query()
        # Checked on our own loopback address (works without the proxy), but the link printed is
        # the one staff can open from the clinic: server.public_url when it is set.
        resp = await self.deps.http.get(self.url + query, follow_redirects=False, timeout=5.0)
        if resp.status_code != 200:
            raise ActionError(f"fallback page: the preview {self.url}?preview=… answered HTTP {resp.status_code}")
        link = self.deps.links.fallback_url or self.url
        return f"preview: {link}{query} (patients still see the portal)"
