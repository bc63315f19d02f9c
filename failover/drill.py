"""A drill: a portal's configured actions rehearsed without effect (Google Ads ``validate_only``,
staff messages marked [訓練/DRILL], the fallback page on a preview link only, webhooks with
``"drill": true``), each with its result and time. Run by ``portalguard drill`` and by the staff
console (through the running service's own actions)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from failover.actions.base import Action, ActionError, Incident

ACTION_TIMEOUT = 60.0
Rehearse = Callable[[str], Awaitable[list[dict[str, Any]]]]  # portal -> its results (the console's hook)


async def rehearse(actions: Mapping[str, Action], pid: str, now: float) -> list[dict[str, Any]]:
    """Every action's drill at once: ``{action, ok, detail, seconds}`` each."""
    incident = Incident(pid, 0, "drill (rehearsal)", now, drill=True)
    return list(await asyncio.gather(*(_one(name, a.drill(incident)) for name, a in actions.items())))


async def _one(name: str, work: Awaitable[Any]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(ACTION_TIMEOUT):
            detail, ok = await work, True
    except ActionError as err:
        detail, ok = err.message, False
    except TimeoutError:
        detail, ok = f"no answer within {ACTION_TIMEOUT:.0f}s", False
    return {"action": name, "ok": ok, "detail": detail, "seconds": round(time.perf_counter() - started, 3)}


def for_the_log(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The results as the audit log keeps them: a preview link's token lets anyone see the fallback
    page, so it is shown to staff but never kept."""
    return [{**r, "detail": re.sub(r"preview=\S+", "preview=…", str(r["detail"]))} for r in results]


def next_record(previous: Mapping[str, Any] | None, ok: bool, now: float) -> dict[str, Any]:
    """The drill record after this drill: the last one and the last *passed* one (a failed drill
    must not hide since when the portal has gone without a passing rehearsal)."""
    last_ok = None
    if previous:  # records from before last_ok_at existed: a passed drill is its own last pass
        last_ok = previous.get("last_ok_at", previous["at"] if previous.get("ok") else None)
    return {"at": now, "ok": ok, "last_ok_at": now if ok else last_ok}
