"""What the wait forecast reads of a branch: its waiting tickets, its counters with their rota,
the day's service-time distributions and the expected arrivals (`queue_server.domain.forecast`
plays them forward), and what it gives each waiting ticket. Plain data, so the server and the
simulator fill it alike."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from queue_server.domain.dispatch import QueuedTicket

DEFAULT_CV = 0.6  # service-time variability assumed before a service has enough finished visits
MIN_OBSERVATIONS = 5  # finished visits of a service before its learned distribution is used
PRIOR_VISITS = 5.0  # the configured service time counts as this many of the day's visits
HISTORY_PRIOR_VISITS = 20.0  # ... and the weeks before's, where known, as this many
MAX_RUNS = 256  # forward runs of a small branch's refresh
RUN_BUDGET = 32 * 256  # runs × size (`runs_for`) a refresh may spend: 32 runs of a busy hall
COUNTER_SIZE = 4  # a counter costs a run about as much as this many tickets
FALLBACK_SERVICE_S = 300.0  # a service with no configured time
DEFAULT_PAUSE_S = 30 * 60.0  # a counter's pause assumed before one has ended today
MIN_RETURN_S = 5 * 60.0  # a counter away longer than its typical pause: still this long
MAX_RESIDUAL_DRAWS = 8  # attempts to draw a service time longer than what already elapsed


@dataclass(frozen=True, slots=True)
class ServiceTimeStats:
    """A service-time distribution: log-normal with this mean and coefficient of variation."""

    mean_s: float
    cv: float = DEFAULT_CV

    def log_params(self) -> tuple[float, float]:
        """The mean and deviation of the log of the service time."""
        sigma2 = math.log1p(self.cv * self.cv)
        return math.log(self.mean_s) - sigma2 / 2, math.sqrt(sigma2)

    def draw(self, rng: random.Random) -> float:
        return rng.lognormvariate(*self.log_params())

    def draw_remaining(self, rng: random.Random, elapsed_s: float) -> float:
        """What is left of a visit that has lasted `elapsed_s` so far (a draw conditioned on
        lasting longer; a visit already far beyond its usual length ends soon)."""
        for _ in range(MAX_RESIDUAL_DRAWS):
            total = self.draw(rng)
            if total > elapsed_s:
                return total - elapsed_s
        return self.mean_s * self.cv * rng.random()


@dataclass(slots=True)
class _Moments:
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations (Welford)


@dataclass(slots=True)
class ServiceTimeLearner:
    """The day's service times per service, as a mean and a variability over every finished
    visit of the day (not a moving mean of the last few). With `prior_visits` 0, the
    configured time until a service has `MIN_OBSERVATIONS` of them; above 0, the configured
    time and variability count as that many visits already seen (a service with few visits
    today leans on them, one with many on its own)."""

    configured_s: Mapping[str, float]
    default_cv: float = DEFAULT_CV
    prior_visits: float = 0.0
    configured_cv: Mapping[str, float] = field(default_factory=dict)  # else `default_cv`
    prior_weight: Mapping[str, float] = field(default_factory=dict)  # else `prior_visits`
    _moments: dict[str, _Moments] = field(default_factory=dict)

    def observe(self, service_id: str, duration_s: float) -> None:
        m = self._moments.setdefault(service_id, _Moments())
        m.count += 1
        delta = duration_s - m.mean
        m.mean += delta / m.count
        m.m2 += delta * (duration_s - m.mean)

    def stats(self, service_id: str) -> ServiceTimeStats:
        m = self._moments.get(service_id)
        configured = self.configured_s.get(service_id, FALLBACK_SERVICE_S)
        cv = self.configured_cv.get(service_id, self.default_cv)
        weight = self.prior_weight.get(service_id, self.prior_visits)
        if weight > 0.0:
            return self._blended(m or _Moments(), configured, cv, weight)
        if m is None or m.count < MIN_OBSERVATIONS or m.mean <= 0.0:
            return ServiceTimeStats(configured, cv)
        cv = math.sqrt(m.m2 / (m.count - 1)) / m.mean
        return ServiceTimeStats(m.mean, cv)

    @staticmethod
    def _blended(m: _Moments, configured: float, cv: float, k: float) -> ServiceTimeStats:
        """The day's visits pooled with `k` visits of the configured distribution."""
        n = m.count
        mean = (n * m.mean + k * configured) / (n + k)
        prior_var = (cv * configured) ** 2
        spread = m.m2 + k * prior_var + n * k / (n + k) * (m.mean - configured) ** 2
        return ServiceTimeStats(mean, math.sqrt(spread / (n + k)) / mean)

    def all_stats(self) -> dict[str, ServiceTimeStats]:
        services = set(self.configured_s) | set(self._moments)
        return {service_id: self.stats(service_id) for service_id in services}


@dataclass(slots=True)
class PauseLearner:
    """How long the day's pauses last (counters away and back again), to tell when a counter
    away now returns when no rota says so: `DEFAULT_PAUSE_S` until one has ended."""

    default_s: float = DEFAULT_PAUSE_S
    _lengths: list[float] = field(default_factory=list)

    def observe(self, length_s: float) -> None:
        self._lengths.append(length_s)

    def typical_s(self) -> float:
        if not self._lengths:
            return self.default_s
        ordered = sorted(self._lengths)
        return ordered[len(ordered) // 2]

    def remaining_s(self, away_for_s: float) -> float:
        """When a counter away for `away_for_s` is expected back, from now."""
        return max(self.typical_s() - away_for_s, MIN_RETURN_S)


@dataclass(frozen=True, slots=True)
class ForecastCounter:
    """A counter as the forecast sees it. `duty` is its staffed periods of the day when the
    rota is known (it goes on a break after the visit in hand and serves whoever is left at
    the end of its last period); without one it stays as it is now."""

    id: str
    profile: Mapping[str, float]
    is_open: bool
    serving_service_id: str | None = None  # the service of the visit in hand, if any
    serving_for_s: float = 0.0
    duty: tuple[tuple[datetime, datetime], ...] = ()


@dataclass(frozen=True, slots=True)
class ArrivalRate:
    """Tickets expected for a service from `start` to `end`, `per_hour` of them, a share of
    them priority tickets: the ones that may overtake the tickets waiting now."""

    service_id: str
    start: datetime
    end: datetime
    per_hour: float
    target_wait_s: float
    priority_share: float = 0.0


@dataclass(frozen=True, slots=True)
class BranchState:
    """Everything the forecast reads of a branch at `now`."""

    now: datetime
    waiting: Sequence[QueuedTicket]
    counters: Sequence[ForecastCounter]
    service_times: Mapping[str, ServiceTimeStats]
    arrivals: Sequence[ArrivalRate] = ()
    no_show_share: float = 0.0
    no_show_timeout_s: float = 60.0
    # service → its target wait (s): the services whose wait for a walk-in taking a ticket now
    # is wanted too ("where can I go now?", the range promised at issue)
    newcomers: Mapping[str, float] = field(default_factory=dict)


class TicketForecast(NamedTuple):
    """A waiting ticket's forecast from now: the median and the 90th percentile of its wait
    (None when it is not called within the horizon), and whether an open counter serves its
    service now, with when the next one opens when it does not. A named tuple, not a frozen
    dataclass: a refresh makes one per waiting ticket, and a frozen dataclass costs twice as
    much to make (~0.3 ms of the demo hall's refresh)."""

    ticket_id: str
    median_s: float | None
    p90_s: float | None
    served_now: bool = True
    next_open_at: datetime | None = None

    @property
    def median_min(self) -> int | None:
        return None if self.median_s is None else _whole_minutes(self.median_s)

    @property
    def p90_min(self) -> int | None:
        return None if self.p90_s is None else _whole_minutes(self.p90_s)


def runs_for(state: BranchState, runs: int) -> int:
    """`runs`, or more for a small branch (few tickets and counters; up to `MAX_RUNS`, within
    what a busy hall's refresh costs): a median of 32 runs wobbles by a fifth of the spread of
    the wait, which in a three-counter centre is a good part of the error."""
    if runs <= 0:
        return runs
    size = len(state.waiting) + len(state.newcomers) + COUNTER_SIZE * len(state.counters)
    return max(runs, min(MAX_RUNS, RUN_BUDGET // max(size, 1)))


def _whole_minutes(seconds: float) -> int:
    """Rounded up: an honest forecast does not promise too little."""
    return int(-(-seconds // 60))
