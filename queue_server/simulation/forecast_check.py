"""How good is the wait forecast? Forecast at issue in simulated days, compare with the real wait.

A simulated day runs under the real dispatcher. At every `stride`-th issued ticket the branch is
forecast (`queue_server.domain.forecast`) from only what the server can know at that moment:
the tickets waiting, which counters are open and how long each has been serving (not how long
the visit will last), the counters' rota, service-time distributions learned from the visits
finished so far today, the arrival rate of each service over the last hour and the priority and
no-show shares seen so far. The forecast's median and 90th percentile for the issued ticket are
kept and compared with its wait once the day has run. Today's `estimate_wait` is scored on the
same tickets.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from dataclasses import dataclass

import numpy as np

from queue_server.domain.dispatch import QueuedTicket
from queue_server.domain.estimate import ServiceTimes
from queue_server.domain.forecast import (
    DEFAULT_RUNS,
    ArrivalRate,
    BranchState,
    ForecastCounter,
    ServiceTimeLearner,
    forecast_branch,
)
from queue_server.domain.tickets import Priority
from queue_server.simulation.arrivals import Visits, draw_visits, replication_rng
from queue_server.simulation.engine import _at, _Counter, _Day, _estimates, make_policy
from queue_server.simulation.scenario import Scenario

RATE_WINDOW_S = 3600.0  # arrival rates are read from the issues of the last hour
DEFAULT_NO_SHOW_SHARE = 0.04  # assumed until enough calls have been seen
MIN_CALLS_FOR_SHARES = 50


@dataclass(frozen=True, slots=True)
class ForecastScore:
    """Errors of one estimator over the sampled tickets (seconds)."""

    tickets: int
    mean_wait_s: float
    mae_s: float
    p90_abs_error_s: float
    bias_s: float  # forecast minus actual
    coverage: float  # share called within the forecast's p90 (NaN for a point estimate)

    @property
    def relative_mae(self) -> float:
        return self.mae_s / self.mean_wait_s if self.mean_wait_s else math.nan


@dataclass(frozen=True, slots=True)
class ForecastCheck:
    scenario: str
    days: int
    forecast: ForecastScore
    today: ForecastScore  # estimate_wait on the same tickets
    refresh_ms: np.ndarray  # CPU time of each forecast of the branch
    waiting_sizes: np.ndarray  # tickets waiting at each forecast


class _ForecastDay(_Day):
    """A simulated day that forecasts the branch at every `stride`-th issue."""

    def __init__(
        self, scenario: Scenario, visits: Visits, stride: int, runs: int, seed: int
    ) -> None:
        super().__init__(
            scenario, visits, make_policy("rigi", scenario, visits), scenario.priority_share, False
        )
        self.stride, self.runs, self.seed = stride, runs, seed
        self.learner = ServiceTimeLearner({s.id: s.mean_service_s for s in scenario.services})
        self.issued_s: dict[str, list[float]] = {sid: [] for sid in self.service_ids}
        self.issued = self.priority_issued = self.calls = self.no_shows = 0
        self.sampled: list[int] = []
        self.medians: list[float] = []
        self.p90s: list[float] = []
        self.today: list[float] = []
        self.refresh_ms: list[float] = []
        self.sizes: list[int] = []

    def _arrive(self, visit: int, now: float) -> None:
        sid = self.service_ids[self.kinds[visit]]
        self.issued_s[sid].append(now)
        self.issued += 1
        self.priority_issued += int(self.priority[visit])
        sample = visit % self.stride == 0
        if sample and self.rigi is not None:
            # estimate_wait sees the line with the new ticket in it, as the server's issuing does
            self.rigi.add(visit, self._ticket(visit, now), self.views)
            waiting = self.rigi.waiting()
            ticket = next(t for t in waiting if t.id == f"{visit:07d}")
            times = ServiceTimes(configured_s=self.times.configured_s)
            times.learned_s, times.observations = self.times.learned_s, self.times.observations
            today, _ = _estimates(
                ticket, self.rigi, self.counters, self.capable[sid], times, _at(now)
            )
            started = time.thread_time()
            result = forecast_branch(self._state(now, waiting), self.runs, self.seed + visit)
            self.refresh_ms.append((time.thread_time() - started) * 1000)
            self.sizes.append(len(waiting))
            mine = result[ticket.id]
            self.sampled.append(visit)
            self.medians.append(math.inf if mine.median_s is None else mine.median_s)
            self.p90s.append(math.inf if mine.p90_s is None else mine.p90_s)
            self.today.append(today)
            self._remove(visit)
        super()._arrive(visit, now)

    def _ticket(self, visit: int, now: float) -> QueuedTicket:
        return QueuedTicket(
            id=f"{visit:07d}",
            service_id=self.service_ids[self.kinds[visit]],
            priority=Priority.PRIORITY if self.priority[visit] else Priority.NORMAL,
            queued_at=_at(now),
            target_wait_s=float(self.targets[visit]),
        )

    def _remove(self, visit: int) -> None:
        """Take the sampled ticket out again: `super()._arrive` issues it for real."""
        assert self.rigi is not None
        pools = self.rigi._pools
        del pools[self.service_ids[self.kinds[visit]]][visit]
        del self.rigi._visit_of[f"{visit:07d}"]

    def _finish_visit(self, counter: _Counter, now: float) -> None:
        self.calls += 1
        if self.no_show[counter.visit]:
            self.no_shows += 1
        else:
            self.learner.observe(
                self.service_ids[self.kinds[counter.visit]], now - counter.busy_since
            )
        super()._finish_visit(counter, now)

    def _state(self, now: float, waiting: list[QueuedTicket]) -> BranchState:
        scenario = self.scenario
        counters = []
        for counter, plan in zip(self.counters, scenario.counters, strict=True):
            busy = counter.busy and counter.on_duty
            counters.append(
                ForecastCounter(
                    id=counter.id,
                    profile=counter.profile,
                    is_open=counter.on_duty,
                    serving_service_id=(
                        self.service_ids[self.kinds[counter.visit]] if busy else None
                    ),
                    serving_for_s=now - counter.busy_since if busy else 0.0,
                    duty=tuple((_at(a), _at(b)) for a, b in plan.duty),
                )
            )
        share = self.priority_issued / self.issued if self.issued else 0.0
        window = min(RATE_WINDOW_S, max(now - scenario.open_s, 1.0))
        arrivals = []
        for service in scenario.services:
            times = self.issued_s[service.id]
            recent = len(times) - bisect_left(times, now - window)
            arrivals.append(
                ArrivalRate(
                    service_id=service.id,
                    start=_at(now),
                    end=_at(scenario.close_s),
                    per_hour=recent * 3600.0 / window,
                    target_wait_s=service.target_wait_s,
                    priority_share=share,
                )
            )
        no_show = (
            self.no_shows / self.calls
            if self.calls >= MIN_CALLS_FOR_SHARES
            else DEFAULT_NO_SHOW_SHARE
        )
        return BranchState(
            now=_at(now),
            waiting=waiting,
            counters=counters,
            service_times=self.learner.all_stats(),
            arrivals=arrivals,
            no_show_share=no_show,
            no_show_timeout_s=scenario.no_show_timeout_s,
        )


def _score(estimates: np.ndarray, actual: np.ndarray, upper: np.ndarray | None) -> ForecastScore:
    errors = estimates - actual
    coverage = float(np.mean(actual <= upper)) if upper is not None else math.nan
    return ForecastScore(
        tickets=len(actual),
        mean_wait_s=float(actual.mean()),
        mae_s=float(np.abs(errors).mean()),
        p90_abs_error_s=float(np.quantile(np.abs(errors), 0.9)),
        bias_s=float(errors.mean()),
        coverage=coverage,
    )


def check_forecast(
    scenario: Scenario,
    seed: int,
    days: int,
    stride: int,
    runs: int = DEFAULT_RUNS,
    *,
    first_day: int = 0,
) -> ForecastCheck:
    """Forecast every `stride`-th issue over `days` simulated days and score it."""
    medians, p90s, today, actual, costs, sizes = [], [], [], [], [], []
    for replication in range(first_day, first_day + days):
        visits = draw_visits(scenario, replication_rng(seed, replication))
        day = _ForecastDay(scenario, visits, stride, runs, seed)
        day.run()
        result = day.result("rigi")
        for i, visit in enumerate(day.sampled):
            if not result.counted[visit] or not math.isfinite(day.medians[i]):
                continue
            medians.append(day.medians[i])
            p90s.append(day.p90s[i])
            today.append(day.today[i])
            actual.append(result.wait_s[visit])
        costs += day.refresh_ms
        sizes += day.sizes
    real = np.array(actual)
    return ForecastCheck(
        scenario=scenario.name,
        days=days,
        forecast=_score(np.array(medians), real, np.array(p90s)),
        today=_score(np.array(today), real, None),
        refresh_ms=np.array(costs),
        waiting_sizes=np.array(sizes),
    )


def refresh_cost(
    scenario: Scenario, waiting: int, refreshes: int, runs: int = DEFAULT_RUNS, seed: int = 1
) -> np.ndarray:
    """Milliseconds of CPU (this thread's: the machine's other load does not count) per
    branch refresh with about `waiting` tickets waiting: the hall at its
    11:00 peak, every counter open and busy, the waiting tickets spread over the services by
    their daily visits and over the last half hour, arrivals at the scenario's 11:00 rate."""
    rng = np.random.default_rng(seed)
    now_s = scenario.open_s + 2 * 3600.0
    weights = np.array([s.daily_visits for s in scenario.services], dtype=float)
    hour_share = scenario.arrival_profile[2] / sum(scenario.arrival_profile)
    arrivals = [
        ArrivalRate(
            service_id=s.id,
            start=_at(now_s),
            end=_at(scenario.close_s),
            per_hour=s.daily_visits * hour_share,
            target_wait_s=s.target_wait_s,
            priority_share=scenario.priority_share,
        )
        for s in scenario.services
    ]
    times = {
        s.id: ServiceTimeLearner({s.id: s.mean_service_s}).stats(s.id) for s in scenario.services
    }
    costs = []
    for refresh in range(refreshes):
        kinds = rng.choice(len(scenario.services), size=waiting, p=weights / weights.sum())
        queued = np.sort(rng.uniform(now_s - 1800.0, now_s, size=waiting))
        tickets = [
            QueuedTicket(
                id=f"{refresh}-{i}",
                service_id=scenario.services[kind].id,
                priority=Priority.PRIORITY
                if rng.random() < scenario.priority_share
                else Priority.NORMAL,
                queued_at=_at(float(at)),
                target_wait_s=scenario.services[kind].target_wait_s,
            )
            for i, (kind, at) in enumerate(zip(kinds, queued, strict=True))
        ]
        counters = [
            ForecastCounter(
                id=c.id,
                profile=c.profile,
                is_open=True,
                serving_service_id=next(iter(c.profile)),
                serving_for_s=float(rng.uniform(0, 300)),
                duty=tuple((_at(a), _at(b)) for a, b in c.duty),
            )
            for c in scenario.counters
        ]
        state = BranchState(_at(now_s), tickets, counters, times, arrivals, 0.04, 60.0)
        started = time.thread_time()
        forecast_branch(state, runs, seed + refresh)
        costs.append((time.thread_time() - started) * 1000)
    return np.array(costs)
