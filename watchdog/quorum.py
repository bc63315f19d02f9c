"""Several vantage points, one verdict: the quorum rule that combines each site's verdict of a portal.

Each instance (a *site*: a VPS, a machine at a clinic) probes every portal from its own network and
judges it with the verdict state machine of ``watchdog/verdict.py``. This module is the pure rule that
turns those per-site verdicts into the one the failover acts on; no I/O, no clock of its own (which
sites are alive is decided by the caller from their heartbeats).

- Only live sites vote, and a site that sees no canary (its own network is down, verdict UNKNOWN)
  votes neither way: trouble at one site is not the portal's.
- DOWN when at least ``needed`` voters judge it DOWN, UP when at least ``needed`` judge it UP, else
  the combined verdict keeps its state (so one site's flapping never switches failover).
- No voter at all (every live site's network is down): UNKNOWN, as for one instance whose canaries
  all fail (the failover decision keeps its state on UNKNOWN).
- ``needed`` is a majority of the voters (``quorum: majority``), or the configured number, never more
  than there are voters: one live site alone decides alone, and ``alone`` says so.
- A number below a majority (``quorum: 1`` of three sites) can give both DOWN and UP a quorum: DOWN
  wins. The number is "the sites that must judge a portal DOWN", and in doubt the fallback page is
  the safe side (a needless failover costs some ad spend; a missed one costs the clinic its bookings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from watchdog.verdict import Health

Quorum = int | Literal["majority"]


@dataclass(frozen=True, slots=True)
class Combined:
    """The combined verdict of one portal, and how it was reached (for ``status`` and metrics)."""

    health: Health
    voters: int  # live sites that judged (not UNKNOWN)
    down: int
    up: int
    needed: int  # votes a change needs now (0: no voter, nothing changes)

    @property
    def alone(self) -> bool:
        """One site decides alone (the others are silent, or see no network)."""
        return self.voters == 1


def needed_votes(quorum: Quorum, voters: int) -> int:
    """The votes a change needs among ``voters``: a strict majority, or the number, capped at ``voters``."""
    if voters <= 0:
        return 0
    wanted = voters // 2 + 1 if quorum == "majority" else quorum
    return max(1, min(wanted, voters))


def combine(verdicts: Mapping[str, Health], previous: Health, quorum: Quorum = "majority") -> Combined:
    """The portal's verdict from the live sites' ``verdicts`` (site -> health); ``previous`` is the
    combined verdict so far, kept when no quorum agrees."""
    votes = [h for h in verdicts.values() if h is not Health.UNKNOWN]
    down = sum(h is Health.DOWN for h in votes)
    up = sum(h is Health.UP for h in votes)
    needed = needed_votes(quorum, len(votes))
    if not votes:  # no site sees the network: as one instance whose canaries all fail
        health = Health.UNKNOWN
    elif down >= needed:
        health = Health.DOWN
    elif up >= needed:
        health = Health.UP
    else:
        health = previous
    return Combined(health, len(votes), down, up, needed)
