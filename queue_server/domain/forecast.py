"""Wait forecasts by simulation: run the real dispatcher forward from a branch's state.

A formula for the wait misses what decides it in a busy hall: priority and short-target tickets
that arrive later and overtake, counters coming back from lunch, side-service weights, and the
spread of the service times ahead. So the branch's day is played forward `runs` times from its
current state, with service times drawn from the distributions learned today and arrivals drawn
from the known rates, each free counter asking `dispatch.call_next` whom to call. One run gives
every waiting ticket of the branch a wait; over the runs each gets a median and a 90th
percentile. The random generator is seeded, so the same state gives the same forecast.

Speed: within one queue (a service, its target and a class) walk-ins keep the dispatcher's order
for as long as they wait, the fairness guard on or off (it puts the longest waiting first, and
among guarded tickets the one that has used more of its target), so a counter only needs to offer
`call_next` the head of each of its queues, plus the few appointments and transferred tickets.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from queue_server.domain.dispatch import FAIRNESS_GUARD, QueuedTicket
from queue_server.domain.forecast_plan import NEWCOMER_PREFIX, BranchPlan, newcomer_id
from queue_server.domain.forecast_state import (
    DEFAULT_CV,
    ArrivalRate,
    BranchState,
    ForecastCounter,
    PauseLearner,
    ServiceTimeLearner,
    ServiceTimeStats,
    TicketForecast,
)
from queue_server.domain.tickets import Priority

if TYPE_CHECKING:  # the engine imports numba (half a second): only a process that forecasts
    from queue_server.domain.forecast_engine import Floats

__all__ = [
    "DEFAULT_CV",
    "DEFAULT_RUNS",
    "NEWCOMER_PREFIX",
    "ArrivalRate",
    "BranchState",
    "ForecastCounter",
    "PauseLearner",
    "ServiceTimeLearner",
    "ServiceTimeStats",
    "TicketForecast",
    "forecast_branch",
    "newcomer_id",
]

DEFAULT_RUNS = 32
# The upper end shown as "9 in 10 are called within": the runs' 86th percentile, calibrated
# on the forecast check (their 90th covered 93% of the Tbilisi hall's waits, the 87th 92%:
# the runs spread a little wider than the days do).
MEDIAN, UPPER = 0.5, 0.86


def forecast_branch(
    state: BranchState,
    runs: int = DEFAULT_RUNS,
    seed: int = 0,
    guard: float | None = FAIRNESS_GUARD,
) -> dict[str, TicketForecast]:
    """Every waiting ticket's forecast (by ticket id), from `runs` forward runs, and each of
    `state.newcomers`' under `newcomer_id(service)`: the wait of a walk-in issued now. `guard`
    is the dispatcher's fairness guard, as the branch's "call next" uses it."""
    if not state.waiting and not state.newcomers:
        return {}
    from queue_server.domain.forecast_draws import forward_runs  # imports numba

    plan = BranchPlan(state, guard)
    waits = forward_runs(plan.arrays(), runs, seed)
    medians, uppers = _quantiles(waits, (MEDIAN, UPPER))
    status = plan.service_status
    return {
        ticket.id: TicketForecast(ticket.id, median, upper, *status(ticket))
        for ticket, median, upper in zip(plan.tickets, medians, uppers, strict=True)
    }


MATERIAL_CHANGE_S = 60.0  # a forecast moving less than this (and ...
MATERIAL_SHARE = 0.15  # ... than this share of what was shown) is not pushed to phones


def changed_materially(shown: TicketForecast | None, new: TicketForecast) -> bool:
    """Whether a phone showing `shown` should be told `new`: whether a counter serves it now
    or when the next one opens changed, or the median or the p90 moved by a minute and 15%
    of what was shown. Not every refresh: a range that wobbles by seconds is noise."""
    if shown is None:
        return True
    if shown.served_now != new.served_now or shown.next_open_at != new.next_open_at:
        return True
    return _moved(shown.median_s, new.median_s) or _moved(shown.p90_s, new.p90_s)


def _moved(shown_s: float | None, new_s: float | None) -> bool:
    if shown_s is None or new_s is None:
        return shown_s is not new_s
    return abs(new_s - shown_s) >= max(MATERIAL_CHANGE_S, MATERIAL_SHARE * shown_s)


def warm_up() -> None:
    """Compile the forward runs (or load them from numba's cache on disk) with a one-ticket
    forecast, so the first real refresh does not pay for it."""
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    ticket = QueuedTicket("warm-up", "service", Priority.NORMAL, moment, 600.0)
    counter = ForecastCounter("counter", {"service": 1.0}, True)
    forecast_branch(BranchState(moment, [ticket], [counter], {}), runs=1)


def _quantiles(waits: Floats, qs: tuple[float, ...]) -> list[list[float | None]]:
    """Each column's q-quantile for each q in `qs`, linear between neighbours at q x (n + 1),
    so that it means the same with any number of runs; None when infinite. The columns at
    once (one sort, numpy's arithmetic: the same doubles as one column at a time in Python)."""
    ordered = np.sort(waits, axis=0)
    last = ordered.shape[0] - 1
    found = []
    for q in qs:
        position = min(max(q * (last + 2) - 1, 0.0), float(last))
        low = int(position)
        lows, highs = ordered[low], ordered[min(low + 1, last)]
        with np.errstate(invalid="ignore"):  # inf - inf: replaced below
            values: list[float | None] = (lows + (highs - lows) * (position - low)).tolist()
        # an infinite upper neighbour: the lower one if the quantile falls exactly on it
        for index in np.flatnonzero(np.isinf(highs)).tolist():
            below = float(lows[index])
            values[index] = None if position > low or math.isinf(below) else below
        found.append(values)
    return found
