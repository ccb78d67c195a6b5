"""Rigi's pool against visitors who pick the shortest line and switch to a free counter.

Both are work-conserving: no counter idles while someone it serves waits. With one service and
exponential service times (M/M/c) the number of people in the hall then moves the same way
under either, so their mean waits are equal in expectation and a single run can only show noise
around a ratio of 1. This runs both on the same days (common random numbers: the same arrivals,
services and service times, each visit keeping its own service time whoever calls it), and
gives the ratio of the mean waits with a 95% confidence interval from the paired days (the
delta method on each day's total wait), and the ratio of the longest waits.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np

from queue_server.simulation.arrivals import draw_visits, replication_rng
from queue_server.simulation.engine import _Day, simulate_day
from queue_server.simulation.policies import RigiDispatch
from queue_server.simulation.scenario import Scenario

CONFIDENCE = 0.95
POOLING_LOAD = 0.85  # the offered load at which the issue sets the pooling goals


@dataclass(frozen=True, slots=True)
class PairedRatio:
    """Rigi against switching over the same days: mean and longest wait, and the ratio of the
    means with its confidence interval."""

    replications: int
    visits: int
    rigi_mean_s: float
    switching_mean_s: float
    ratio: float
    low: float
    high: float
    rigi_max_s: float
    switching_max_s: float


UNGUARDED = "rigi_unguarded"  # Rigi's dispatcher with the fairness guard off


def compare_with_switching(scenario: Scenario, seed: int, replications: int) -> PairedRatio:
    """Both policies on `replications` independent days of `scenario` (common random numbers)."""
    return compare(scenario, seed, replications, ("switching",))["switching"]


def compare(
    scenario: Scenario, seed: int, replications: int, others: tuple[str, ...]
) -> dict[str, PairedRatio]:
    """Rigi (its guard on) against each of `others` (policy names, or `UNGUARDED`) on the same
    `replications` independent days of `scenario` (common random numbers)."""
    sums: dict[str, list[float]] = {name: [] for name in ("rigi", *others)}
    longest = dict.fromkeys(sums, 0.0)
    counts = []
    for replication in range(replications):
        visits = draw_visits(scenario, replication_rng(seed, replication))
        for name in sums:
            if name == UNGUARDED:
                day = _Day(scenario, visits, RigiDispatch(None), scenario.priority_share, False)
                day.run()
                result = day.result(name)
            else:
                result = simulate_day(scenario, visits, name)
            waits = result.wait_s[result.counted]  # the same visits are counted under each
            sums[name].append(float(waits.sum()))
            longest[name] = max(longest[name], float(waits.max(initial=0.0)))
        counts.append(len(waits))
    return {
        name: _paired(sums["rigi"], sums[name], counts, longest["rigi"], longest[name])
        for name in others
    }


def _paired(
    rigi_sums: list[float],
    switching_sums: list[float],
    counts: list[int],
    rigi_max: float,
    switching_max: float,
) -> PairedRatio:
    """The ratio of the two total waits and its interval: each day's residual
    rigi − ratio × switching has mean 0, and its spread over the days (paired, so the days'
    common ups and downs cancel) over the mean switching total is the ratio's standard error."""
    rigi, switching = np.array(rigi_sums), np.array(switching_sums)
    days, visits = len(rigi), sum(counts)
    ratio = float(rigi.sum() / switching.sum())
    residual = rigi - ratio * switching
    spread = float(residual.std(ddof=1)) if days > 1 else math.inf
    error = spread / math.sqrt(days) / float(switching.mean())
    z = statistics.NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)
    return PairedRatio(
        replications=days,
        visits=visits,
        rigi_mean_s=float(rigi.sum()) / visits,
        switching_mean_s=float(switching.sum()) / visits,
        ratio=ratio,
        low=ratio - z * error,
        high=ratio + z * error,
        rigi_max_s=rigi_max,
        switching_max_s=switching_max,
    )


def main(argv: list[str]) -> int:
    """`queue-server simulate pooling [SCENARIO] [DAYS] [SEED] [POLICY,...]`: Rigi against
    switching (or the policies named; `rigi_unguarded` is Rigi with the guard off) at an
    offered load of 0.85, printed with the interval."""
    from queue_server.simulation.scenario import load_scenario

    name = argv[0] if argv else "mmc"
    days = int(argv[1]) if len(argv) > 1 else 50
    seed = int(argv[2]) if len(argv) > 2 else 1
    others = tuple(argv[3].split(",")) if len(argv) > 3 else ("switching",)
    scenario = load_scenario(name)
    if abs(scenario.offered_load() - POOLING_LOAD) >= 0.01:
        scenario = scenario.with_utilisation(POOLING_LOAD)
    for other, found in compare(scenario, seed, days, others).items():
        print(
            f"{name} at load {POOLING_LOAD}: {found.replications} days, {found.visits} visits; "
            f"mean wait Rigi {found.rigi_mean_s:.1f} s, {other} {found.switching_mean_s:.1f} s; "
            f"Rigi ÷ {other} {found.ratio:.4f} (95% CI {found.low:.4f}–{found.high:.4f}); "
            f"longest {found.rigi_max_s / 60:.1f} / {found.switching_max_s / 60:.1f} min = "
            f"{found.rigi_max_s / found.switching_max_s:.2f}×"
        )
    return 0
