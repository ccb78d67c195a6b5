"""The wait forecast's cost per branch refresh: the demo hall (Tbilisi, 30 counters) at its
11:00 peak with 200 waiting, the server's number of forward runs, CPU time of the refreshing
thread. Issue 16's goal: ≤ 5 ms mean and ≤ 50 ms p99. `python -m benchmarks.forecast_bench`."""

from __future__ import annotations

import numpy as np

from queue_server.domain.forecast import DEFAULT_RUNS, warm_up
from queue_server.simulation.forecast_check import refresh_cost
from queue_server.simulation.scenario import load_scenario

WAITING = 200
REFRESHES = 50
GOAL_MEAN_MS, GOAL_P99_MS = 5.0, 50.0


def measure(refreshes: int = REFRESHES) -> tuple[float, float]:
    """Mean and p99 of the CPU milliseconds per refresh, the compiled runs loaded first (as
    the server does at start-up)."""
    warm_up()
    costs = refresh_cost(load_scenario("tbilisi-hall"), WAITING, refreshes, DEFAULT_RUNS)
    return float(costs.mean()), float(np.quantile(costs, 0.99))


def main() -> None:
    mean, p99 = measure()
    met = mean <= GOAL_MEAN_MS and p99 <= GOAL_P99_MS
    print(
        f"forecast refresh, {WAITING} waiting, {DEFAULT_RUNS} runs: mean {mean:.1f} ms, "
        f"p99 {p99:.1f} ms of CPU (goal ≤ {GOAL_MEAN_MS:g} / ≤ {GOAL_P99_MS:g} ms): "
        f"{'met' if met else 'short'}"
    )


if __name__ == "__main__":
    main()
