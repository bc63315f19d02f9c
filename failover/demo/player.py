"""Plays the scenario: shows each phase, makes its move, and waits for its steps on the timeline.

Waiting is polling (every ``POLL`` seconds) with a bound per step, never a fixed sleep: the demo
is as fast as portalguard is, and a step that never comes fails the demo naming that step.
"""

from __future__ import annotations

import asyncio
import time

from failover.demo.script import Phase, Step
from failover.demo.timeline import Entry, Timeline
from failover.demo.watch import Watcher

POLL = 0.2


class ScenarioFailed(Exception):
    def __init__(self, step: Step, waited: float, why: str = "") -> None:
        self.step = step
        reason = why or f"not seen within {waited:.0f} s"
        super().__init__(f'step "{step.label}" ({step.key}): {reason}')


class Interrupted(Exception):
    """Ctrl-C (or the caller's stop event) during the scenario."""


class Player:
    def __init__(
        self,
        timeline: Timeline,
        watcher: Watcher,
        service: asyncio.Task[None],
        stop: asyncio.Event,
    ) -> None:
        self.timeline = timeline
        self.watcher = watcher
        self.service = service
        self.stop = stop
        self._pending: list[Step] = []
        self._seen: dict[str, int] = {}  # step key -> index of the entry that completed it
        self._phase_start = 0  # index of the first entry of the current phase
        self._queued: list[Entry] = []  # the scenario's own lines, shown with the next poll

    # -- what the scenario's moves use ------------------------------------------------------------

    async def say(self, text: str, style: str = "scenario", **data: object) -> None:
        """A line from the scenario itself (``▶ …``); steps may match it (source ``scenario``)."""
        t = time.time() - self.watcher.started
        self._queued.append(Entry(t, "scenario", f"▶ {text}", style, dict(data)))
        await self.pump()

    async def hold(self, seconds: float, announce_every: float = 15.0) -> None:
        """Let time pass on purpose (the outage lasting), still showing what happens meanwhile."""
        deadline = time.monotonic() + seconds
        next_note = time.monotonic() + announce_every
        while (left := deadline - time.monotonic()) > 0:
            if time.monotonic() >= next_note and left > POLL:
                self.timeline.note(f"… {left:.0f} s left")
                next_note += announce_every
            await self._tick(min(POLL, left))

    # -- playing ----------------------------------------------------------------------------------

    async def play(self, phases: list[Phase]) -> None:
        for number, phase in enumerate(phases, 1):
            self.timeline.phase(number, len(phases), phase.title)
            self._phase_start = len(self.timeline.entries)
            self._pending = list(phase.resolved)
            if phase.start is not None:
                await phase.start()
            for step in phase.resolved:
                await self._wait_for(step)
            if phase.finish is not None:
                await phase.finish()

    async def idle(self) -> None:
        """After the scenario (``--keep-running``): keep showing the timeline until stopped."""
        while not self.stop.is_set() and not self.service.done():
            await self._tick(POLL, interruptible=False)

    async def _wait_for(self, step: Step) -> None:
        started = time.monotonic()
        while step.key not in self._seen:
            if time.monotonic() - started > step.bound:
                raise ScenarioFailed(step, step.bound)
            if self.service.done():
                raise ScenarioFailed(step, 0, "the portalguard service stopped: " + _why(self.service))
            await self._tick(POLL)

    async def _tick(self, seconds: float, *, interruptible: bool = True) -> None:
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
        except TimeoutError:
            pass
        else:
            if interruptible:
                raise Interrupted
        await self.pump()

    async def pump(self) -> None:
        """Take what is new, match it against the pending steps, show it."""
        new = sorted([*self._queued, *await self.watcher.poll()], key=lambda e: e.t)
        self._queued.clear()
        for entry in new:
            index = len(self.timeline.entries)
            self.timeline.add(entry)
            self._match(entry, index)
            self.timeline.show(entry)

    def _match(self, entry: Entry, index: int) -> None:
        # One entry completes at most one step: the first pending step it may follow and matches.
        for step in self._pending:
            floor = self._phase_start - 1 if step.after is None else self._seen.get(step.after)
            if floor is not None and index > floor and step.match(entry):
                self._seen[step.key] = index
                self._pending.remove(step)
                self.timeline.completed(step.key, step.label, entry)
                return


def _why(task: asyncio.Task[None]) -> str:
    if task.cancelled():
        return "cancelled"
    err = task.exception()
    return f"{type(err).__name__}: {err}" if err else "it returned"
