"""The demo's terminal output: a progress line per phase and a growing timeline, elapsed seconds first.

Plain text that reads the same in a pipe or a CI log; styled only when click decides the output is
a terminal (or ``color=True`` is forced, e.g. to capture colors for a screenshot).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click

# kind -> click.style arguments: the colours say at a glance whether things get worse or better.
_STYLES: dict[str, dict[str, Any]] = {
    "scenario": {"fg": "blue", "bold": True},
    "bad": {"fg": "red", "bold": True},
    "warn": {"fg": "yellow"},
    "good": {"fg": "green", "bold": True},
    "action": {"fg": "cyan"},
    "staff": {"fg": "magenta"},
    "world": {"dim": True},
    "info": {},
}
MILESTONE = "✓"


@dataclass(slots=True)
class Entry:
    """One line of the timeline: something that happened, seen by the demo."""

    t: float  # seconds since the demo started
    source: str  # store (an event), ads, inbox, mail, web, scenario
    text: str
    style: str = "info"
    data: dict[str, Any] = field(default_factory=dict)  # what steps match on (event kind, topic...)
    milestone: str | None = None  # the scenario step this entry completed

    def as_json(self) -> dict[str, Any]:
        return {"t": round(self.t, 2), "source": self.source, "text": self.text, "step": self.milestone, **self.data}


class Timeline:
    def __init__(self, color: bool | None = None, echo: Callable[..., None] = click.echo) -> None:
        self.color = color
        self._echo = echo
        self.entries: list[Entry] = []
        self.steps: list[dict[str, Any]] = []  # completed scenario steps, in order

    def line(self, text: str = "", style: str = "info") -> None:
        self._echo(click.style(text, **_STYLES[style]) if text else "", color=self.color)

    def title(self, text: str) -> None:
        self._echo(click.style(text, bold=True), color=self.color)

    def phase(self, number: int, total: int, text: str) -> None:
        self.line()
        self._echo(click.style(f"[{number}/{total}] {text}", bold=True, underline=True), color=self.color)

    def note(self, text: str) -> None:
        """An indented line without time: URLs, hints."""
        self._echo(" " * 11 + text, color=self.color)

    def add(self, entry: Entry) -> None:
        self.entries.append(entry)

    def show(self, entry: Entry) -> None:
        mark = click.style(MILESTONE, fg="green", bold=True) if entry.milestone else " "
        when = f"+{entry.t:.1f}s"
        self._echo(f"  {when:>7} {mark} {click.style(entry.text, **_STYLES[entry.style])}", color=self.color)

    def completed(self, step: str, label: str, entry: Entry) -> None:
        entry.milestone = step
        self.steps.append({"step": step, "label": label, "t": round(entry.t, 2)})

    def as_json(self) -> dict[str, Any]:
        return {"steps": self.steps, "entries": [e.as_json() for e in self.entries]}
