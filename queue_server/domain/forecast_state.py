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

from queue_server.domain.dispatch import QueuedTicket

DEFAULT_CV = 0.6  # service-time variability assumed before a service has enough finished visits
MIN_OBSERVATIONS = 5  # finished visits of a service before its learned distribution is used
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
    visit of the day (not a moving mean of the last few), the configured time until a service
    has `MIN_OBSERVATIONS` of them."""

    configured_s: Mapping[str, float]
    default_cv: float = DEFAULT_CV
    _moments: dict[str, _Moments] = field(default_factory=dict)

    def observe(self, service_id: str, duration_s: float) -> None:
        m = self._moments.setdefault(service_id, _Moments())
        m.count += 1
        delta = duration_s - m.mean
        m.mean += delta / m.count
        m.m2 += delta * (duration_s - m.mean)

    def stats(self, service_id: str) -> ServiceTimeStats:
        m = self._moments.get(service_id)
        if m is None or m.count < MIN_OBSERVATIONS or m.mean <= 0.0:
            return ServiceTimeStats(self.configured_s.get(service_id, 300.0), self.default_cv)
        cv = math.sqrt(m.m2 / (m.count - 1)) / m.mean
        return ServiceTimeStats(m.mean, cv)

    def all_stats(self) -> dict[str, ServiceTimeStats]:
        services = set(self.configured_s) | set(self._moments)
        return {service_id: self.stats(service_id) for service_id in services}


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


@dataclass(frozen=True, slots=True)
class TicketForecast:
    """A waiting ticket's forecast from now: the median and the 90th percentile of its wait
    (None when it is not called within the horizon), and whether an open counter serves its
    service now, with when the next one opens when it does not."""

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


def _whole_minutes(seconds: float) -> int:
    """Rounded up: an honest forecast does not promise too little."""
    return int(-(-seconds // 60))
