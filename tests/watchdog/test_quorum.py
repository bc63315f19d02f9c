"""The quorum rule of several vantage points (``watchdog/quorum.py``): examples from the HA issue,
and properties over every combination of site verdicts (hypothesis)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from watchdog.quorum import combine, needed_votes
from watchdog.verdict import Health

UP, DOWN, UNKNOWN, DEGRADED, RECOVERING = Health.UP, Health.DOWN, Health.UNKNOWN, Health.DEGRADED, Health.RECOVERING


def test_down_for_one_site_of_two_switches_nothing() -> None:
    c = combine({"vps": DOWN, "clinic": UP}, UP)
    assert (c.health, c.voters, c.down, c.up, c.needed, c.alone) == (UP, 2, 1, 1, 2, False)
    assert combine({"vps": DOWN, "clinic": UP}, DOWN).health is DOWN  # nor back: it keeps its state


def test_down_for_both_sites_is_down() -> None:
    assert combine({"vps": DOWN, "clinic": DOWN}, UP).health is DOWN


def test_a_site_without_network_does_not_vote_so_the_other_decides_alone() -> None:
    c = combine({"vps": DOWN, "clinic": UNKNOWN}, UP)
    assert (c.health, c.voters, c.alone) == (DOWN, 1, True)


def test_one_live_site_alone_decides_alone_whatever_the_configured_number() -> None:
    c = combine({"vps": DOWN}, UP, quorum=2)
    assert (c.health, c.needed, c.alone) == (DOWN, 1, True)


def test_a_number_quorum_among_three() -> None:
    sites = {"a": DOWN, "b": UP, "c": UP}
    assert combine(sites, UP, quorum=1).health is DOWN  # any one site suffices (and DOWN wins the tie)
    assert combine(sites, DOWN, quorum="majority").health is UP  # two of three say UP
    assert combine({"a": DOWN, "b": DOWN, "c": UP}, UP, quorum=3).health is UP  # three needed, two said


def test_no_voter_at_all_is_unknown() -> None:
    assert combine({"a": UNKNOWN, "b": UNKNOWN}, DOWN).health is UNKNOWN
    assert combine({}, UP).health is UNKNOWN


def test_majority_needed() -> None:
    assert [needed_votes("majority", n) for n in range(6)] == [0, 1, 2, 2, 3, 3]
    assert [needed_votes(2, n) for n in range(4)] == [0, 1, 2, 2]


health = st.sampled_from(list(Health))
sites = st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e"]), health, max_size=5)
quorums = st.one_of(st.just("majority"), st.integers(min_value=1, max_value=6))


@given(sites, health, quorums)
def test_down_and_up_each_need_a_quorum_and_down_wins_a_tie(verdicts: dict[str, Health], previous: Health, q) -> None:  # type: ignore[no-untyped-def]
    c = combine(verdicts, previous, q)
    if c.down >= c.needed > 0 and c.up >= c.needed:  # a number below a majority: both hold one
        assert c.health is DOWN  # in doubt, the fallback page
    if q == "majority":
        assert not (c.down >= c.needed > 0 and c.up >= c.needed)  # a majority cannot be had twice
    if c.health is DOWN and previous is not DOWN:
        assert c.down >= c.needed > 0
    if c.health is UP and previous is not UP:
        assert c.up >= c.needed > 0
    if c.voters and c.down < c.needed and c.up < c.needed:
        assert c.health is previous  # no quorum: unchanged


@given(sites, health)
def test_majority_needs_more_than_half_of_the_voters(verdicts: dict[str, Health], previous: Health) -> None:
    c = combine(verdicts, previous)
    assert c.voters == sum(h is not UNKNOWN for h in verdicts.values())
    if c.voters:
        assert 2 * c.needed > c.voters >= c.needed


@given(sites, health, quorums)
def test_degraded_and_recovering_sites_never_switch(verdicts: dict[str, Health], previous: Health, q) -> None:  # type: ignore[no-untyped-def]
    only_unsure = {s: h for s, h in verdicts.items() if h in (DEGRADED, RECOVERING)}
    if only_unsure:
        assert combine(only_unsure, previous, q).health is previous
