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
from dataclasses import dataclass, field

import numpy as np

from queue_server.domain.dispatch import QueuedTicket
from queue_server.domain.estimate import ServiceTimes
from queue_server.domain.forecast import (
    DEFAULT_RUNS,
    ArrivalRate,
    BranchState,
    ForecastCounter,
    PauseLearner,
    ServiceTimeLearner,
    ServiceTimeStats,
    forecast_branch,
)
from queue_server.domain.forecast_state import HISTORY_PRIOR_VISITS, PRIOR_VISITS, runs_for
from queue_server.domain.tickets import Priority
from queue_server.simulation.arrivals import Visits, draw_visits, replication_rng
from queue_server.simulation.engine import _at, _Counter, _Day, _estimates, make_policy
from queue_server.simulation.scenario import Scenario

RATE_WINDOW_S = 3600.0  # arrival rates are read from the issues of the last hour
MIN_RATE_WINDOW_S = 900.0  # ... or since the day's first issue, but at least this long
DEFAULT_NO_SHOW_SHARE = 0.04  # assumed until enough calls have been seen
MIN_CALLS_FOR_SHARES = 50
RATE_DAYS = 8  # as the server: the same weekday over eight weeks
TIME_DAYS = 56  # ... and every day of them for the service times
HISTORY_SEED = 7919  # the unscored days before come from another stream than the scored ones


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
class Inputs:
    """What the forecast is given, each a thing the server can know; the defaults are what the
    server gives it (`store.forecast_inputs`), the others are there to compare."""

    rota: bool = True  # the counters' planned hours and breaks, as the organisation states them
    pauses: bool = False  # without a rota: a counter away returns after the day's typical pause
    prior_visits: float = PRIOR_VISITS  # the configured service time as this many visits
    pooled_rates: bool = True  # arrivals: the branch's last hour split by today's service mix
    more_runs: bool = True  # a small branch gets more forward runs (`forecast_state.runs_for`)
    history_rates: bool = True  # arrivals by service and hour of the earlier days' tickets
    # the earlier days' service times as the prior, worth this many of today's visits (0: no)
    history_times: float = HISTORY_PRIOR_VISITS
    # simulator-only, to bound what better inputs could win: the true service-time
    # distributions (`oracle_times`), and arrival rates by hour (`oracle_rates`)
    oracle_times: bool = False
    oracle_rates: bool = False


@dataclass(frozen=True, slots=True)
class ForecastCheck:
    scenario: str
    days: int
    forecast: ForecastScore
    today: ForecastScore  # estimate_wait on the same tickets
    refresh_ms: np.ndarray  # CPU time of each forecast of the branch
    waiting_sizes: np.ndarray  # tickets waiting at each forecast
    # each scored ticket: issued at (s after midnight), counters on duty then, forecast, actual
    issued_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    on_duty: np.ndarray = field(default_factory=lambda: np.zeros(0))
    medians: np.ndarray = field(default_factory=lambda: np.zeros(0))
    actual: np.ndarray = field(default_factory=lambda: np.zeros(0))


class _ForecastDay(_Day):
    """A simulated day that forecasts the branch at every `stride`-th issue."""

    def __init__(
        self,
        scenario: Scenario,
        visits: Visits,
        stride: int,
        runs: int,
        seed: int,
        inputs: Inputs = Inputs(),
    ) -> None:
        super().__init__(
            scenario, visits, make_policy("rigi", scenario, visits), scenario.priority_share, False
        )
        self.stride, self.runs, self.seed, self.inputs = stride, runs, seed, inputs
        self.learner = ServiceTimeLearner(
            {s.id: s.mean_service_s for s in scenario.services}, prior_visits=inputs.prior_visits
        )
        self.history: _History | None = None
        self.pauses = PauseLearner()
        self.off_since: dict[int, float] = {}  # counters away (after their first period)
        self.on_duty_at_sample: list[int] = []
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
            state = self._state(now, waiting)
            runs = runs_for(state, self.runs) if self.inputs.more_runs else self.runs
            result = forecast_branch(state, runs, self.seed + visit)
            self.refresh_ms.append((time.thread_time() - started) * 1000)
            self.sizes.append(len(waiting))
            self.on_duty_at_sample.append(sum(c.on_duty for c in self.counters))
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
        was_on = counter.on_duty
        super()._finish_visit(counter, now)
        self._note_off(counter, now, was_on)

    def _end_duty(self, counter: _Counter, now: float, *, last_of_day: bool) -> None:
        was_on = counter.on_duty
        super()._end_duty(counter, now, last_of_day=last_of_day)
        if not last_of_day:
            self._note_off(counter, now, was_on)

    def _come_on_duty(self, counter: _Counter, now: float) -> None:
        """A counter back from a pause: the server sees how long it was away."""
        away_since = self.off_since.pop(counter.index, None)
        if away_since is not None and not counter.on_duty:
            self.pauses.observe(now - away_since)
        super()._come_on_duty(counter, now)

    def _note_off(self, counter: _Counter, now: float, was_on: bool) -> None:
        if was_on and not counter.on_duty and now < self.scenario.close_s:
            self.off_since[counter.index] = now

    def _duty(self, counter: _Counter, plan_duty: tuple[tuple[float, float], ...], now: float):
        """The counter's hours as the forecast is told them: the planned rota, or (`pauses`)
        a counter away back after the day's typical pause, or nothing."""
        if self.inputs.rota:
            return tuple((_at(a), _at(b)) for a, b in plan_duty)
        away_since = self.off_since.get(counter.index)
        if self.inputs.pauses and away_since is not None and not counter.on_duty:
            back = now + self.pauses.remaining_s(now - away_since)
            return ((_at(back), _at(max(self.scenario.close_s, back + 1.0))),)
        return ()

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
                    duty=self._duty(counter, plan.duty, now),
                )
            )
        share = self.priority_issued / self.issued if self.issued else 0.0
        window = min(RATE_WINDOW_S, max(now - scenario.open_s, 1.0))
        recent = {
            sid: len(times) - bisect_left(times, now - window)
            for sid, times in self.issued_s.items()
        }
        end = scenario.close_s
        if self.inputs.pooled_rates:  # as the server: `store.forecasts.Forecasts._arrivals`
            first = min((times[0] for times in self.issued_s.values() if times), default=now)
            window = max(min(RATE_WINDOW_S, now - first), MIN_RATE_WINDOW_S)
            mix = {sid: len(times) + 1.0 for sid, times in self.issued_s.items()}
            total_mix, total_recent = sum(mix.values()), sum(recent.values())
            per_hour = {sid: total_recent * 3600.0 / window * mix[sid] / total_mix for sid in mix}
            end = now + RATE_WINDOW_S
        else:
            per_hour = {sid: count * 3600.0 / window for sid, count in recent.items()}
        arrivals = [
            ArrivalRate(
                service_id=service.id,
                start=_at(now),
                end=_at(end),
                per_hour=per_hour[service.id],
                target_wait_s=service.target_wait_s,
                priority_share=share,
            )
            for service in scenario.services
        ]
        if self.inputs.oracle_rates:
            arrivals = self._hourly_arrivals(now, self._true_counts(), share)
        elif self.inputs.history_rates and self.history is not None and self.history.days:
            arrivals = self._hourly_arrivals(now, self.history.rates(), share)
        no_show = (
            self.no_shows / self.calls
            if self.calls >= MIN_CALLS_FOR_SHARES
            else DEFAULT_NO_SHOW_SHARE
        )
        return BranchState(
            now=_at(now),
            waiting=waiting,
            counters=counters,
            service_times=(
                {
                    sv.id: ServiceTimeStats(sv.mean_service_s, sv.service_cv)
                    for sv in scenario.services
                }
                if self.inputs.oracle_times
                else self.learner.all_stats()
            ),
            arrivals=arrivals,
            no_show_share=no_show,
            no_show_timeout_s=scenario.no_show_timeout_s,
        )

    def _true_counts(self) -> np.ndarray:
        """Visits expected per service and opening hour (simulator-only: the oracle)."""
        weights = np.asarray(self.scenario.arrival_profile, dtype=float)
        daily = np.array([service.daily_visits for service in self.scenario.services])
        return np.outer(daily, weights / weights.sum())

    def _hourly_arrivals(self, now: float, counts: np.ndarray, share: float) -> list[ArrivalRate]:
        """Arrivals from now to closing at `counts` per service and opening hour."""
        scenario = self.scenario
        rates = []
        for index, service in enumerate(scenario.services):
            for hour in range(counts.shape[1]):
                start = scenario.open_s + hour * 3600.0
                end = min(start + 3600.0, scenario.close_s)
                if end <= now or counts[index, hour] <= 0.0:
                    continue
                rates.append(
                    ArrivalRate(
                        service_id=service.id,
                        start=_at(max(start, now)),
                        end=_at(end),
                        per_hour=counts[index, hour] * 3600.0 / (end - start),
                        target_wait_s=service.target_wait_s,
                        priority_share=share,
                    )
                )
        return rates


@dataclass(slots=True)
class _History:
    """The days before, as the server's reports hold them (`store.forecast_inputs`): tickets
    per service and opening hour of the last `RATE_DAYS` days (the same weekday of the last
    eight weeks), and the service times of the last `TIME_DAYS`."""

    shape: tuple[int, int]
    counts: list[np.ndarray] = field(default_factory=list)
    served: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    @property
    def days(self) -> int:
        return len(self.counts[-RATE_DAYS:])

    def rates(self) -> np.ndarray:
        return np.mean(self.counts[-RATE_DAYS:], axis=0)

    def learner(self, scenario: Scenario, inputs: Inputs) -> ServiceTimeLearner:
        """Today's learner: the earlier days' service times as its prior (`history_times`)."""
        configured = {s.id: s.mean_service_s for s in scenario.services}
        if inputs.history_times <= 0.0 or not self.served:
            return ServiceTimeLearner(configured, prior_visits=inputs.prior_visits)
        before = ServiceTimeLearner(configured)
        for services, durations in self.served[-TIME_DAYS:]:
            for service, duration in zip(services.tolist(), durations.tolist(), strict=True):
                before.observe(scenario.services[service].id, duration)
        stats = before.all_stats()
        return ServiceTimeLearner(
            {**configured, **{sid: times.mean_s for sid, times in stats.items()}},
            prior_visits=inputs.prior_visits,
            configured_cv={sid: times.cv for sid, times in stats.items()},
            prior_weight=dict.fromkeys(stats, inputs.history_times),
        )

    def add(self, scenario: Scenario, visits: Visits) -> None:
        hours = ((visits.arrival_s - scenario.open_s) // 3600).astype(np.int64)
        hours = np.clip(hours, 0, self.shape[1] - 1)
        counts = np.zeros(self.shape)
        np.add.at(counts, (visits.service, hours), 1.0)
        self.counts.append(counts)
        shown = ~visits.no_show
        self.served.append((visits.service[shown], visits.service_s[shown]))


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
    inputs: Inputs = Inputs(),
    history_days: int = 0,
) -> ForecastCheck:
    """Forecast every `stride`-th issue over `days` simulated days and score it, with
    `history_days` unscored days before them (what the server's reports hold of the weeks
    before: the earlier days' arrivals and service times)."""
    medians, p90s, today, actual, costs, sizes = [], [], [], [], [], []
    issued, on_duty = [], []
    hours = len(scenario.arrival_profile)
    history = _History((len(scenario.services), hours))
    for earlier in range(history_days):
        history.add(scenario, draw_visits(scenario, replication_rng(seed + HISTORY_SEED, earlier)))
    for replication in range(first_day, first_day + days):
        visits = draw_visits(scenario, replication_rng(seed, replication))
        day = _ForecastDay(scenario, visits, stride, runs, seed, inputs)
        day.history = history
        day.learner = history.learner(scenario, inputs)
        day.run()
        result = day.result("rigi")
        for i, visit in enumerate(day.sampled):
            if not result.counted[visit] or not math.isfinite(day.medians[i]):
                continue
            medians.append(day.medians[i])
            p90s.append(day.p90s[i])
            today.append(day.today[i])
            actual.append(result.wait_s[visit])
            issued.append(float(visits.arrival_s[visit]))
            on_duty.append(day.on_duty_at_sample[i])
        costs += day.refresh_ms
        sizes += day.sizes
        history.add(scenario, visits)
    real = np.array(actual)
    return ForecastCheck(
        scenario=scenario.name,
        days=days,
        forecast=_score(np.array(medians), real, np.array(p90s)),
        today=_score(np.array(today), real, None),
        refresh_ms=np.array(costs),
        waiting_sizes=np.array(sizes),
        issued_s=np.array(issued),
        on_duty=np.array(on_duty),
        medians=np.array(medians),
        actual=real,
    )


def refresh_cost(
    scenario: Scenario,
    waiting: int,
    refreshes: int,
    runs: int = DEFAULT_RUNS,
    seed: int = 1,
    newcomers: bool = True,
    scale_runs: bool = False,
) -> np.ndarray:
    """Milliseconds of CPU (this thread's: the machine's other load does not count) per
    branch refresh with about `waiting` tickets waiting: the hall at its
    11:00 peak, every counter open and busy, the waiting tickets spread over the services by
    their daily visits and over the last half hour, arrivals at the scenario's 11:00 rate;
    with `newcomers`, a newcomer's forecast for every service too, as the server asks; with
    `scale_runs`, more runs for few tickets, as the server does (`forecast_state.runs_for`)."""
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
        probes = {s.id: s.target_wait_s for s in scenario.services} if newcomers else {}
        state = BranchState(_at(now_s), tickets, counters, times, arrivals, 0.04, 60.0, probes)
        started = time.thread_time()
        forecast_branch(state, runs_for(state, runs) if scale_runs else runs, seed + refresh)
        costs.append((time.thread_time() - started) * 1000)
    return np.array(costs)
