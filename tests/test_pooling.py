"""Rigi's pool against the switching baseline on the same days: the ratio of the mean waits
and its confidence interval from paired days (issue 16)."""

from __future__ import annotations

import pytest

from queue_server.simulation.pooling import UNGUARDED, _paired, compare
from queue_server.simulation.scenario import load_scenario


def test_the_ratio_is_of_the_total_waits_and_its_interval_comes_from_the_paired_days() -> None:
    # Rigi's days are exactly 0.9 × the other's: the ratio is 0.9 and the interval has no width
    found = _paired([90.0, 180.0, 270.0], [100.0, 200.0, 300.0], [10, 20, 30], 5.0, 10.0)
    assert found.ratio == pytest.approx(0.9) and found.low == pytest.approx(found.high)
    assert found.rigi_mean_s == pytest.approx(540 / 60) and found.visits == 60
    # the days disagree about the ratio: the interval widens around the ratio of the totals
    noisy = _paired([80.0, 220.0, 270.0], [100.0, 200.0, 300.0], [10, 20, 30], 5.0, 10.0)
    assert noisy.ratio == pytest.approx(570 / 600)
    assert noisy.low < noisy.ratio < noisy.high and noisy.high - noisy.low > 0.1


def test_rigi_and_switching_are_compared_on_the_same_visitors() -> None:
    scenario = load_scenario("community-centre").with_utilisation(0.85)
    found = compare(scenario, seed=3, replications=3, others=("switching", UNGUARDED))
    switching, unguarded = found["switching"], found[UNGUARDED]
    assert switching.visits == unguarded.visits > 300
    assert switching.rigi_mean_s == unguarded.rigi_mean_s  # one Rigi run serves both
    assert switching.low <= switching.ratio <= switching.high
    assert switching.rigi_max_s < switching.switching_max_s  # pooling shortens the tail
