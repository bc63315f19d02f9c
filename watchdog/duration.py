"""Human durations in config and on the command line: ``15s``, ``2m``, ``1h30m``, ``7d``."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_SECONDS = 3650 * 86400.0  # ten years: anything longer is a typo, and would overflow time arithmetic
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(text: str) -> float:
    """Seconds in ``text`` (``15s``, ``2m``, ``1h30m``); ValueError with a hint otherwise."""
    compact = text.strip().replace(" ", "")
    parts = _PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f'"{text}" is not a duration (use 15s, 2m)')
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not seconds <= MAX_SECONDS:  # also catches inf from a very long number
        raise ValueError(f'"{text[:40]}" is longer than ten years (use at most 3650d)')
    return seconds


def format_duration(seconds: float) -> str:
    """The inverse, rounded to whole seconds: ``90`` -> ``1m30s``; under a second in ms: ``0.25`` -> ``250ms``."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if 0 < round(seconds * 1000) < 1000:  # a sub-second timeout or tick must not read "0s"
        return f"{round(seconds * 1000)}ms"
    rest = round(seconds)
    if rest == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)
