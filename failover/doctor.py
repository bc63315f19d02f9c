"""Preflight: every action's ``check()``, timed, as ready / not ready with the reason."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from failover.actions.base import Action, ActionError

CHECK_DEADLINE = 60.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    portal: str
    action: str
    ready: bool
    detail: str
    seconds: float


async def run_checks(actions: dict[str, dict[str, Action]]) -> list[CheckResult]:
    """All checks concurrently; a hung one is cut off after CHECK_DEADLINE, never blocks the rest."""
    jobs = [(pid, name, act) for pid, acts in actions.items() for name, act in acts.items()]
    return list(await asyncio.gather(*(_one(pid, name, act) for pid, name, act in jobs)))


async def _one(pid: str, name: str, action: Action) -> CheckResult:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_DEADLINE):
            detail = await action.check()
        ok = True
    except ActionError as err:
        ok, detail = False, err.message
    except TimeoutError:
        ok, detail = False, f"no answer within {CHECK_DEADLINE:.0f}s"
    except Exception as err:  # report, don't crash the whole preflight
        ok, detail = False, f"internal error {type(err).__name__}"
    return CheckResult(pid, name, ok, detail, time.perf_counter() - started)
