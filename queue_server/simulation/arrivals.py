"""A day of visits: Poisson arrivals per service with an hourly profile, and what each visit
will need. Drawn once per replication and shared by every policy (common random numbers), so
the policies are compared on exactly the same visitors."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from queue_server.simulation.scenario import Scenario


@dataclass(frozen=True, slots=True)
class Visits:
    """Visits sorted by arrival; parallel arrays, one entry per visit."""

    arrival_s: np.ndarray
    service: np.ndarray  # index into scenario.services
    service_s: np.ndarray
    priority_draw: np.ndarray  # uniform: a visit is priority when draw < the priority share
    no_show: np.ndarray

    def __len__(self) -> int:
        return len(self.arrival_s)

    def is_priority(self, share: float) -> np.ndarray:
        return self.priority_draw < share


def draw_visits(scenario: Scenario, rng: np.random.Generator) -> Visits:
    """Draw one day: for every service and opening hour, Poisson(rate) arrivals spread
    uniformly over the hour (a piecewise-constant Poisson process)."""
    weights = np.asarray(scenario.arrival_profile, dtype=float)
    weights = weights / weights.sum()
    times: list[np.ndarray] = []
    kinds: list[np.ndarray] = []
    for index, service in enumerate(scenario.services):
        for hour, weight in enumerate(weights):
            start = scenario.open_s + hour * 3600.0
            end = min(start + 3600.0, scenario.close_s)
            count = rng.poisson(service.daily_visits * weight)
            times.append(rng.uniform(start, end, size=count))
            kinds.append(np.full(count, index, dtype=np.int64))
    arrival = np.concatenate(times) if times else np.empty(0)
    service_index = np.concatenate(kinds) if kinds else np.empty(0, dtype=np.int64)
    order = np.argsort(arrival, kind="stable")
    arrival, service_index = arrival[order], service_index[order]
    n = len(arrival)
    means = np.array([s.mean_service_s for s in scenario.services])[service_index]
    if scenario.distribution == "exponential":
        durations = rng.exponential(means, size=n)
    else:
        cvs = np.array([s.service_cv for s in scenario.services])[service_index]
        sigma2 = np.log1p(cvs**2)
        durations = rng.lognormal(np.log(means) - sigma2 / 2, np.sqrt(sigma2), size=n)
    return Visits(
        arrival_s=arrival,
        service=service_index,
        service_s=durations,
        priority_draw=rng.random(n),
        no_show=rng.random(n) < scenario.no_show_share,
    )


def replication_rng(seed: int, replication: int) -> np.random.Generator:
    """An independent, reproducible stream for each (seed, replication)."""
    return np.random.default_rng([seed, replication])


def erlang_c_wait(arrival_rate: float, mean_service_s: float, servers: int) -> float:
    """Mean wait in an M/M/c queue (Erlang C), in seconds."""
    offered = arrival_rate * mean_service_s
    if offered >= servers:
        return math.inf
    # Erlang B by its stable recursion, then C from B.
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered * blocking / (k + offered * blocking)
    rho = offered / servers
    wait_probability = blocking / (1 - rho + rho * blocking)
    return wait_probability * mean_service_s / (servers - offered)
