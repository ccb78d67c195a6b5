"""Run replications of a scenario under every policy and summarise what the visitors lived."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from queue_server.simulation.arrivals import draw_visits, erlang_c_wait, replication_rng
from queue_server.simulation.engine import DayResult, simulate_day
from queue_server.simulation.policies import POLICY_NAMES
from queue_server.simulation.scenario import Scenario

PRIORITY_STRESS_SHARE = 0.20  # the share of priority tickets in the starvation check
ERLANG_WARMUP_S = 24 * 3600.0  # near ρ = 0.95 a queue forgets its empty start only slowly
POLICY_LABELS = {
    "round_robin": "Round-robin binding at the kiosk",
    "per_counter": "One line per counter",
    "switching": "Shortest line, switching to a free counter",
    "pooled": "Pooled FCFS per service",
    "rigi": "Rigi dispatcher",
}


@dataclass(frozen=True, slots=True)
class PolicySummary:
    policy: str
    visits: int
    mean_wait_s: float
    p90_wait_s: float
    max_wait_s: float
    within_target: float  # share of served visits called within their service's target
    utilisation: float  # busy time over staffed time, all counters
    stress_max_normal_wait_s: float  # longest wait of a normal ticket at 20% priority traffic
    stress_worst_normal_ratio: float  # the same, as a multiple of its service target

    @property
    def label(self) -> str:
        return POLICY_LABELS[self.policy]


@dataclass(frozen=True, slots=True)
class EstimatorSummary:
    tickets: int
    mean_wait_s: float
    mae_s: float
    bias_s: float  # estimate minus actual: positive means the estimate promised too long a wait
    naive_mae_s: float
    naive_bias_s: float


@dataclass(slots=True)
class ScenarioRun:
    scenario: Scenario
    seed: int
    replications: int
    summaries: list[PolicySummary]
    estimator: EstimatorSummary
    days: dict[str, list[DayResult]] = field(default_factory=dict)

    def summary(self, policy: str) -> PolicySummary:
        return next(s for s in self.summaries if s.policy == policy)


def run_scenario(scenario: Scenario, seed: int, replications: int) -> ScenarioRun:
    """Every policy on the same visitors, replication by replication; the estimator rides along
    with Rigi's dispatcher, which decides the order it estimates."""
    days: dict[str, list[DayResult]] = {name: [] for name in POLICY_NAMES}
    stress: dict[str, list[DayResult]] = {name: [] for name in POLICY_NAMES}
    for replication in range(replications):
        visits = draw_visits(scenario, replication_rng(seed, replication))
        for name in POLICY_NAMES:
            days[name].append(simulate_day(scenario, visits, name, estimate=name == "rigi"))
            stress[name].append(
                simulate_day(scenario, visits, name, priority_share=PRIORITY_STRESS_SHARE)
            )
    summaries = [_summarise(name, days[name], stress[name]) for name in POLICY_NAMES]
    return ScenarioRun(scenario, seed, replications, summaries, _estimator(days["rigi"]), days)


def _summarise(policy: str, days: list[DayResult], stress: list[DayResult]) -> PolicySummary:
    waits = np.concatenate([d.wait_s[d.counted] for d in days])
    targets = np.concatenate([d.target_s[d.counted] for d in days])
    normal = [d.counted & ~d.priority for d in stress]
    stress_waits = np.concatenate([d.wait_s[m] for d, m in zip(stress, normal, strict=True)])
    stress_targets = np.concatenate([d.target_s[m] for d, m in zip(stress, normal, strict=True)])
    return PolicySummary(
        policy=policy,
        visits=len(waits),
        mean_wait_s=float(waits.mean()),
        p90_wait_s=float(np.percentile(waits, 90)),
        max_wait_s=float(waits.max()),
        within_target=float((waits <= targets).mean()),
        utilisation=sum(d.busy_s for d in days) / sum(d.duty_s for d in days),
        stress_max_normal_wait_s=float(stress_waits.max()),
        stress_worst_normal_ratio=float((stress_waits / stress_targets).max()),
    )


def _estimator(days: list[DayResult]) -> EstimatorSummary:
    actual = np.concatenate([d.wait_s[d.counted] for d in days])
    estimate = np.concatenate([d.estimate_s[d.counted] for d in days])
    naive = np.concatenate([d.naive_s[d.counted] for d in days])
    return EstimatorSummary(
        tickets=len(actual),
        mean_wait_s=float(actual.mean()),
        mae_s=float(np.abs(estimate - actual).mean()),
        bias_s=float((estimate - actual).mean()),
        naive_mae_s=float(np.abs(naive - actual).mean()),
        naive_bias_s=float((naive - actual).mean()),
    )


@dataclass(frozen=True, slots=True)
class ErlangCheck:
    """The simulated mean wait of an M/M/c scenario against Erlang C.

    `controlled_wait_s` uses a control variate: the same arrivals and service times fed to one
    server c times as fast (an M/M/1 queue whose mean wait is known exactly) move almost in step
    with the M/M/c queue, so subtracting that queue's deviation from its known mean removes most
    of the replication noise, which near saturation is otherwise enormous.
    """

    utilisation: float
    replications: int
    visits: int
    erlang_c_s: float
    raw_wait_s: float
    raw_stderr_s: float
    controlled_wait_s: float
    controlled_stderr_s: float

    @property
    def error(self) -> float:
        """Relative error of the controlled estimate against Erlang C."""
        return self.controlled_wait_s / self.erlang_c_s - 1

    @property
    def raw_error(self) -> float:
        return self.raw_wait_s / self.erlang_c_s - 1


def erlang_check(
    scenario: Scenario, utilisation: float, seed: int, replications: int, policy: str = "rigi"
) -> ErlangCheck:
    """Replicate a single-service exponential scenario at `utilisation` and compare its mean
    wait (after the warm-up) with the Erlang C formula."""
    if len(scenario.services) != 1 or scenario.distribution != "exponential":
        raise ValueError("the Erlang C check needs one service with exponential service times")
    if replications < 3:
        raise ValueError("the Erlang C check needs at least 3 replications")
    hall = scenario.warmed_up(ERLANG_WARMUP_S).with_utilisation(utilisation)
    service = hall.services[0]
    servers = len(hall.counters)
    rate = service.daily_visits / (hall.close_s - hall.open_s)
    mean = service.mean_service_s
    expected = erlang_c_wait(rate, mean, servers)
    fast_server_wait = utilisation * (mean / servers) / (1 - utilisation)  # M/M/1, rate cμ
    sim, control, visits = [], [], 0
    for replication in range(replications):
        day_visits = draw_visits(hall, replication_rng(seed, replication))
        day = simulate_day(hall, day_visits, policy)
        sim.append(day.wait_s[day.counted].mean())
        control.append(
            fast_server_waits(day_visits.arrival_s, day_visits.service_s / servers)[
                day.counted
            ].mean()
        )
        visits += int(day.counted.sum())
    ys, xs = np.array(sim), np.array(control)
    beta = np.cov(ys, xs)[0, 1] / xs.var(ddof=1)
    adjusted = ys - beta * (xs - fast_server_wait)
    root = np.sqrt(replications)
    return ErlangCheck(
        utilisation=utilisation,
        replications=replications,
        visits=visits,
        erlang_c_s=expected,
        raw_wait_s=float(ys.mean()),
        raw_stderr_s=float(ys.std(ddof=1) / root),
        controlled_wait_s=float(adjusted.mean()),
        controlled_stderr_s=float(adjusted.std(ddof=2) / root),
    )


def fast_server_waits(arrival_s: np.ndarray, service_s: np.ndarray) -> np.ndarray:
    """Waits in a single FCFS server by Lindley's recursion, in closed form: the wait is the
    random walk of (previous service − gap) minus its running minimum."""
    steps = np.concatenate([[0.0], service_s[:-1] - np.diff(arrival_s)])
    walk = np.cumsum(steps)
    return walk - np.minimum(np.minimum.accumulate(walk), 0.0)
