"""The verdict FSM stepped through scripted sequences with a fake clock (times are plain numbers).

A script is ``"t OBS health | t OBS health | ..."``: at time ``t`` the observation ``OBS`` arrives and
the verdict must then be ``health``. OBS is ``F`` (the portal fails), ``S`` (it answers), ``N`` (every
canary fails and so does the portal), ``n`` (every canary fails, the portal answers), ``f`` (the portal
fails and no canary has answered since its failure streak began) or ``C`` (such a canary answers now:
not an observation of the portal).
Unless a case says otherwise: ``down_after = 3 failures / 30 s``, ``up_after = 4 successes / 60 s``.
"""

from __future__ import annotations

import random

import pytest

from watchdog.targets import Recovery, Threshold
from watchdog.verdict import Health, Observation, Verdict, confirm_network, portal_failing, step

DOWN_AFTER = Threshold(failures=3, seconds=30)
UP_AFTER = Recovery(successes=4, seconds=60)
OBS = {
    "F": Observation(failing=True),
    "S": Observation(failing=False),
    "N": Observation(failing=True, network_down=True),
    "n": Observation(failing=False, network_down=True),
    "f": Observation(failing=True, network_confirmed=False),
}


def run(
    script: str,
    start: Verdict | None = None,
    down_after: Threshold = DOWN_AFTER,
    up_after: Recovery = UP_AFTER,
) -> tuple[list[str], list[str]]:
    """Steps the script; returns (expected healths, actual healths) for one readable assert."""
    v = start or Verdict.start(0.0)
    expected, actual = [], []
    for item in script.split("|"):
        t, obs, health = item.split()
        v = confirm_network(v, float(t)) if obs == "C" else step(v, OBS[obs], float(t), down_after, up_after)
        expected.append(f"{t} {obs} {health}")
        actual.append(f"{t} {obs} {v.health.value}")
    return expected, actual


SCRIPTS = {
    # -- to DOWN: N failures AND T seconds, both ----------------------------------------------------
    "sustained-failure-is-down": "0 S up | 15 F degraded | 30 F degraded | 45 F down | 60 F down",
    "exactly-n-and-t-is-enough": "0 S up | 10 F degraded | 25 F degraded | 40 F down",
    "n-failures-too-fast-stay-degraded": (
        "0 S up | 1 F degraded | 2 F degraded | 3 F degraded | 4 F degraded | 5 F degraded | 30 F degraded | 31 F down"
    ),
    "t-elapsed-with-too-few-failures": "0 S up | 10 F degraded | 100 F degraded | 101 F down",
    "first-look-failing-counts-from-then": "0 F degraded | 15 F degraded | 30 F down",
    "first-look-healthy-is-up-at-once": "0 S up | 15 S up",
    # -- blips and flapping -------------------------------------------------------------------------
    "blip-is-never-down": "0 S up | 15 F degraded | 30 S up | 45 S up",
    "blip-resets-the-count": (
        "0 S up | 15 F degraded | 30 F degraded | 44 S up | 45 F degraded | 60 F degraded | 74 F degraded | 75 F down"
    ),
    "two-of-three-failing-is-never-down": (
        "0 F degraded | 15 F degraded | 30 S up | 45 F degraded | 60 F degraded | 75 S up"
        " | 90 F degraded | 105 F degraded | 120 S up"
    ),
    # -- recovery: M successes AND R seconds --------------------------------------------------------
    "recovery-needs-m-and-r": (
        "0 F degraded | 15 F degraded | 30 F down | 40 S recovering | 55 S recovering | 70 S recovering"
        " | 85 S recovering | 100 S up"
    ),
    "m-successes-too-fast-keep-recovering": (
        "0 F degraded | 15 F degraded | 30 F down | 31 S recovering | 32 S recovering | 33 S recovering"
        " | 34 S recovering | 35 S recovering | 90 S recovering | 91 S up"
    ),
    "r-elapsed-with-too-few-successes": (
        "0 F degraded | 15 F degraded | 30 F down | 31 S recovering | 200 S recovering | 201 S recovering | 202 S up"
    ),
    "failure-during-recovering-is-down-again": (
        "0 F degraded | 15 F degraded | 30 F down | 45 S recovering | 60 S recovering | 75 F down"
        " | 90 S recovering | 105 S recovering | 120 S recovering | 135 S recovering | 150 S up"
    ),
    # -- canaries down: UNKNOWN, never DOWN ---------------------------------------------------------
    "canaries-down-is-unknown": "0 S up | 15 N unknown | 30 N unknown | 45 n unknown | 600 N unknown",
    "failures-during-canary-loss-do-not-count": (
        "0 S up | 15 F degraded | 30 F degraded | 40 N unknown | 45 N unknown | 46 F degraded"
        " | 50 F degraded | 75 F degraded | 76 F down"
    ),
    "degraded-then-canary-loss-never-down": (
        "0 S up | 15 F degraded | 30 F degraded | 45 N unknown | 60 N unknown | 75 N unknown | 90 N unknown"
    ),
    "after-canaries-return-settled-up-success-is-up": "0 S up | 15 N unknown | 30 S up",
    "after-canaries-return-settled-up-failure-counts-from-scratch": (
        "0 S up | 15 N unknown | 30 F degraded | 45 F degraded | 59 F degraded | 60 F down"
    ),
    "after-canaries-return-settled-down-failure-is-down": (
        "0 F degraded | 15 F degraded | 30 F down | 45 N unknown | 60 F down"
    ),
    "after-canaries-return-settled-down-success-starts-recovering": (
        "0 F degraded | 15 F degraded | 30 F down | 45 N unknown | 60 S recovering | 75 S recovering"
        " | 90 S recovering | 119 S recovering | 120 S up"
    ),
    # -- no canary since the streak began: held in DEGRADED, never DOWN -----------------------------
    "unconfirmed-failures-are-held-degraded": "0 S up | 15 f degraded | 30 f degraded | 45 f degraded | 600 f degraded",
    "confirmation-releases-a-held-portal-at-once": "0 S up | 15 f degraded | 30 f degraded | 45 f degraded | 47 C down",
    "confirmation-before-the-thresholds-counts-nothing": (
        "0 S up | 15 f degraded | 40 f degraded | 50 C degraded | 51 C degraded | 55 F down"
    ),
    "a-confirmed-failure-after-the-hold-is-down": "0 S up | 15 f degraded | 30 f degraded | 45 f degraded | 60 F down",
    "held-then-answering-is-up": "0 S up | 15 f degraded | 30 f degraded | 45 f degraded | 50 S up | 55 C up",
    "held-then-canary-loss-is-unknown-never-down": (
        "0 S up | 15 f degraded | 30 f degraded | 45 f degraded | 50 N unknown | 55 C unknown | 60 f degraded"
    ),
    "confirmation-moves-nothing-else": "0 S up | 5 C up | 15 F degraded | 20 C degraded | 30 F degraded | 45 F down",
    "recovering-failure-is-down-without-confirmation": (
        "0 F degraded | 15 F degraded | 30 F down | 45 S recovering | 60 f down"
    ),
    "canary-loss-during-recovering-restarts-recovery": (
        "0 F degraded | 15 F degraded | 30 F down | 40 S recovering | 55 S recovering | 70 S recovering"
        " | 80 n unknown | 85 S recovering | 100 S recovering | 115 S recovering | 144 S recovering"
        " | 145 S up"
    ),
}


@pytest.mark.parametrize("script", list(SCRIPTS.values()), ids=list(SCRIPTS))
def test_scripted_sequence(script: str) -> None:
    expected, actual = run(script)
    assert actual == expected


RESTART = {
    # Restarted while in failover: recovery needs full hysteresis, one failure is DOWN again.
    "success-starts-recovering": ("0 S recovering | 15 S recovering | 30 S recovering | 59 S recovering | 60 S up"),
    "failure-is-down-at-once": "0 F down | 15 S recovering",
    "canaries-still-down-stay-unknown": "0 N unknown | 15 n unknown | 30 F down",
}


@pytest.mark.parametrize("script", list(RESTART.values()), ids=list(RESTART))
def test_restart_in_failover_keeps_recovery_hysteretic(script: str) -> None:
    expected, actual = run(script, start=Verdict.start(0.0, settled=Health.DOWN))
    assert actual == expected


def test_start_is_unknown_with_what_it_falls_back_to() -> None:
    assert Verdict.start(5.0) == Verdict(Health.UNKNOWN, 5.0, None)
    assert Verdict.start(5.0, settled=Health.DOWN).settled is Health.DOWN


@pytest.mark.parametrize(
    ("down_after", "up_after", "script"),
    [
        (Threshold(failures=1, seconds=0), Recovery(successes=1, seconds=0), "0 S up | 1 F down | 2 S up"),
        (Threshold(failures=1, seconds=20), UP_AFTER, "0 S up | 1 F degraded | 20 F degraded | 21 F down"),
        (
            Threshold(failures=5, seconds=0),
            UP_AFTER,
            "0 F degraded | 0 F degraded | 0 F degraded | 0 F degraded | 0 F down",
        ),
    ],
    ids=["one-and-zero-is-immediate", "one-failure-but-t-seconds", "n-failures-in-no-time"],
)
def test_thresholds_at_their_limits(down_after: Threshold, up_after: Recovery, script: str) -> None:
    expected, actual = run(script, down_after=down_after, up_after=up_after)
    assert actual == expected


def test_since_and_settled_change_only_on_transitions() -> None:
    v = Verdict.start(0.0)
    trail = []
    for t, obs in [(0, "S"), (15, "F"), (30, "F"), (45, "F"), (60, "F"), (75, "S"), (90, "N")]:
        v = step(v, OBS[obs], float(t), DOWN_AFTER, UP_AFTER)
        trail.append((v.health.value, v.since, v.settled.value if v.settled else None))
    assert trail == [
        ("up", 0.0, "up"),
        ("degraded", 15.0, "up"),
        ("degraded", 15.0, "up"),
        ("down", 45.0, "down"),
        ("down", 45.0, "down"),
        ("recovering", 75.0, "down"),
        ("unknown", 90.0, "down"),
    ]


def test_flapping_for_hours_never_fails_over() -> None:
    """Fail, fail, answer at a 15 s interval for four hours: each failure run stays below N."""
    v = Verdict.start(0.0)
    seen = set()
    for i in range(4 * 3600 // 15):
        v = step(v, OBS["S" if i % 3 == 2 else "F"], i * 15.0, DOWN_AFTER, UP_AFTER)
        seen.add(v.health)
    assert seen == {Health.UP, Health.DEGRADED}


def test_slow_flapping_never_fails_over() -> None:
    """Failures spanning far more than T, but never N in a row."""
    v = Verdict.start(0.0)
    for i in range(2000):
        v = step(v, OBS["S" if i % 2 else "F"], i * 60.0, DOWN_AFTER, UP_AFTER)
        assert v.health is not Health.DOWN


# -- invariants over random sequences -------------------------------------------------------------


def _random_case(seed: int) -> tuple[Threshold, Recovery, Verdict, list[tuple[float, str]]]:
    rng = random.Random(seed)
    down_after = Threshold(failures=rng.randint(1, 5), seconds=rng.choice([0, 10, 30, 60]))
    up_after = Recovery(successes=rng.randint(1, 5), seconds=rng.choice([0, 20, 60, 120]))
    start = Verdict.start(0.0, settled=rng.choice([None, Health.UP, Health.DOWN]))
    p_fail, p_net = rng.uniform(0.1, 0.9), rng.choice([0.0, 0.05, 0.2])
    t, script = 0.0, []
    for _ in range(600):
        t += rng.choice([0.0, 0.5, 1.0, 5.0, 15.0, 30.0])
        r = rng.random()
        obs = ("N" if rng.random() < 0.5 else "n") if r < p_net else ("F" if r < p_net + p_fail else "S")
        script.append((t, obs))
    return down_after, up_after, start, script


@pytest.mark.parametrize("seed", range(40), ids=[f"seed{s}" for s in range(40)])
def test_invariants_over_random_sequences(seed: int) -> None:
    down_after, up_after, v, script = _random_case(seed)
    fails: list[float] = []  # times of the current run of failing observations (canaries up)
    oks: list[float] = []  # times of the current run of good observations (canaries up)
    for t, obs in script:
        before = v
        v = step(v, OBS[obs], t, down_after, up_after)
        if obs in "Nn":
            fails, oks = [], []
            assert v.health is Health.UNKNOWN, "never DOWN (nor anything else) while the network is down"
            continue
        fails, oks = ([*fails, t], []) if obs == "F" else ([], [*oks, t])
        sustained_failure = len(fails) >= down_after.failures and t - fails[0] >= down_after.seconds
        sustained_success = len(oks) >= up_after.successes and t - oks[0] >= up_after.seconds
        if v.health is Health.DOWN and before.health is not Health.DOWN and before.settled is not Health.DOWN:
            assert sustained_failure, f"a new outage at {t} without N failures spanning T"
        if v.health is Health.UP and before.settled is Health.DOWN:
            assert sustained_success, f"recovered at {t} without M successes spanning R"
        if sustained_failure:
            assert v.health is Health.DOWN, f"sustained failure at {t} not judged DOWN"
        if sustained_success:
            assert v.health is Health.UP, f"sustained success at {t} not judged UP"
        if v.health in (Health.UP, Health.DOWN):
            assert v.settled is v.health
        assert v.since <= t


# -- which endpoints count ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "failing_by_role", "failing"),
    [
        ("public", {"public": True, "admin": False}, True),
        ("public", {"public": False, "admin": True}, False),
        ("public", {"admin": True}, False),
        ("public", {}, False),
        ("admin", {"public": False, "admin": True}, True),
        ("admin", {"public": True, "admin": False}, False),
        ("admin", {"public": True}, False),
        ("any", {"public": False, "admin": True}, True),
        ("any", {"public": True}, True),
        ("any", {"public": False, "admin": False}, False),
        ("any", {}, False),
        ("all", {"public": True, "admin": True}, True),
        ("all", {"public": True, "admin": False}, False),
        ("all", {"public": False, "admin": True}, False),
        ("all", {"public": True}, False),
        ("all", {}, False),
    ],
    ids=[
        "public-public-fails",
        "public-admin-only-fails-keeps-up",
        "public-no-public-result-yet",
        "public-no-results",
        "admin-admin-fails",
        "admin-public-only-fails",
        "admin-no-admin-result-yet",
        "any-admin-fails",
        "any-public-fails-admin-missing",
        "any-none-fail",
        "any-no-results",
        "all-both-fail",
        "all-admin-answers",
        "all-public-answers",
        "all-admin-missing",
        "all-no-results",
    ],
)
def test_portal_failing(trigger: str, failing_by_role: dict[str, bool], failing: bool) -> None:
    assert portal_failing(trigger, failing_by_role) is failing
