"""Does the dispatcher's fairness guard keep normal tickets from waiting too long?

With heavy priority traffic a normal ticket can be overtaken again and again. The guard
(`dispatch.urgency(..., guard=1.5)`, on by default) sends a walk-in that has waited 1.5 × its
target before everything but due appointments. This runs the same simulated days with the
guard off and on (common random numbers) at 20% priority tickets and compares the tail of
normal tickets' waits, as multiples of their targets, and the mean wait of everybody.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from queue_server.simulation.arrivals import draw_visits, replication_rng
from queue_server.simulation.engine import _Day
from queue_server.simulation.metrics import PRIORITY_STRESS_SHARE
from queue_server.simulation.policies import RigiDispatch
from queue_server.simulation.scenario import Scenario

GUARD = 1.5  # in service targets
TAIL = 0.999


@dataclass(frozen=True, slots=True)
class FairnessSummary:
    guard: float | None
    days: int
    tickets: int
    mean_wait_s: float
    normal_tail_ratio: float  # p99.9 of a normal ticket's wait over its target
    normal_max_ratio: float


def compare_guard(
    scenario: Scenario, seed: int, days: int, guard: float = GUARD
) -> tuple[FairnessSummary, FairnessSummary]:
    """The same `days` with the guard off, then on, at 20% priority tickets."""
    waits: dict[float | None, list[np.ndarray]] = {None: [], guard: []}
    ratios: dict[float | None, list[np.ndarray]] = {None: [], guard: []}
    for replication in range(days):
        visits = draw_visits(scenario, replication_rng(seed, replication))
        for setting in (None, guard):
            day = _Day(scenario, visits, RigiDispatch(setting), PRIORITY_STRESS_SHARE, False)
            day.run()
            result = day.result("rigi")
            waits[setting].append(result.wait_s[result.counted])
            normal = result.counted & ~result.priority
            ratios[setting].append(result.wait_s[normal] / result.target_s[normal])
    return _summary(None, days, waits[None], ratios[None]), _summary(
        guard, days, waits[guard], ratios[guard]
    )


def _summary(
    guard: float | None, days: int, waits: list[np.ndarray], ratios: list[np.ndarray]
) -> FairnessSummary:
    all_waits, all_ratios = np.concatenate(waits), np.concatenate(ratios)
    return FairnessSummary(
        guard=guard,
        days=days,
        tickets=len(all_waits),
        mean_wait_s=float(all_waits.mean()),
        normal_tail_ratio=float(np.quantile(all_ratios, TAIL)),
        normal_max_ratio=float(all_ratios.max()),
    )


def main(argv: list[str]) -> int:
    """`queue-server simulate fairness [SCENARIO] [DAYS]`: the guard off and on, printed."""
    from queue_server.simulation.scenario import load_scenario

    name = argv[0] if argv else "tbilisi-hall"
    days = int(argv[1]) if len(argv) > 1 else 30
    off, on = compare_guard(load_scenario(name), 1, days)
    for summary in (off, on):
        label = "off" if summary.guard is None else f"{summary.guard:g}× target"
        print(
            f"guard {label}: {summary.days} days, {summary.tickets} tickets, mean wait "
            f"{summary.mean_wait_s / 60:.3f} min, normal tickets' p99.9 "
            f"{summary.normal_tail_ratio:.2f}× target, max {summary.normal_max_ratio:.2f}×"
        )
    print(f"mean wait {on.mean_wait_s / off.mean_wait_s - 1:+.2%} with the guard")
    return 0
