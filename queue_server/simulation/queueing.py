"""Validation against queueing theory beyond the Erlang C mean: a warm-up long enough for a
queue near saturation to forget its empty start, and the two-class non-preemptive priority
M/M/c queue, whose class means are known in closed form.

Near ρ = 0.95 an M/M/10 queue takes many hours to reach its steady state from empty (its
relaxation time grows like 1/(1 − √ρ)²), so the checks warm up a full simulated day first.
With one service rate for both classes, Cobham's formula with Erlang C's chance of waiting
gives each class's mean wait: W₀ = C(c, a) / (cμ), a priority ticket waits W₀ / (1 − ρ₁) and a
normal one W₀ / ((1 − ρ₁)(1 − ρ)). The real dispatcher is strict priority when targets are so
long that no normal ticket's ageing ever catches up with a priority ticket's head start.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from queue_server.simulation.arrivals import draw_visits, erlang_c_wait, replication_rng
from queue_server.simulation.engine import simulate_day
from queue_server.simulation.metrics import fast_server_waits
from queue_server.simulation.scenario import Scenario

WARMUP_S = 24 * 3600.0  # at least a simulated day before any visit counts
ERLANG_HOURS = int(WARMUP_S // 3600)
STRICT_TARGET_S = 1e9  # a target no wait comes near: the head start alone orders the classes
PRIORITY_SHARE = 0.20


def priority_waits(
    arrival_rate: float, mean_service_s: float, servers: int, priority_share: float
) -> tuple[float, float]:
    """Mean waits (priority, normal) of a two-class non-preemptive priority M/M/c queue whose
    classes share one service rate (Cobham's formula)."""
    offered = arrival_rate * mean_service_s
    rho = offered / servers
    if rho >= 1:
        return np.inf, np.inf
    # Erlang C's chance of waiting, from its mean wait: W = C · m / (c − a)
    waiting = erlang_c_wait(arrival_rate, mean_service_s, servers) * (servers - offered)
    base = waiting / servers  # W₀ = C · m / c
    rho_priority = priority_share * rho
    return base / (1 - rho_priority), base / ((1 - rho_priority) * (1 - rho))


@dataclass(frozen=True, slots=True)
class ClassWait:
    expected_s: float
    simulated_s: float
    stderr_s: float

    @property
    def error(self) -> float:
        return self.simulated_s / self.expected_s - 1


@dataclass(frozen=True, slots=True)
class PriorityCheck:
    """Each class's simulated mean wait after the warm-up against the closed form."""

    utilisation: float
    replications: int
    visits: int
    priority: ClassWait
    normal: ClassWait


def priority_check(
    scenario: Scenario,
    utilisation: float,
    seed: int,
    replications: int,
    share: float = PRIORITY_SHARE,
    policy: str = "rigi",
) -> PriorityCheck:
    """Replicate a single-service exponential scenario with `share` priority tickets and
    targets too long for ageing to matter, and compare each class's mean wait."""
    if len(scenario.services) != 1 or scenario.distribution != "exponential":
        raise ValueError("the priority check needs one service with exponential service times")
    if replications < 3:
        raise ValueError("the priority check needs at least 3 replications")
    hall = scenario.warmed_up(WARMUP_S).with_utilisation(utilisation).with_priority_share(share)
    service = dataclasses.replace(hall.services[0], target_wait_s=STRICT_TARGET_S)
    hall = dataclasses.replace(hall, services=(service,))
    rate = service.daily_visits / (hall.close_s - hall.open_s)
    expected = priority_waits(rate, service.mean_service_s, len(hall.counters), share)
    servers = len(hall.counters)
    fast_server_wait = utilisation * (service.mean_service_s / servers) / (1 - utilisation)
    everyone, control, priority, shares = [], [], [], []
    visits = 0
    for replication in range(replications):
        drawn = draw_visits(hall, replication_rng(seed, replication))
        day = simulate_day(hall, drawn, policy)
        counted = day.counted
        everyone.append(float(day.wait_s[counted].mean()))
        fast = fast_server_waits(drawn.arrival_s, drawn.service_s / servers)
        control.append(float(fast[counted].mean()))
        priority.append(float(day.wait_s[counted & day.priority].mean()))
        shares.append(float(day.priority[counted].mean()))
        visits += int(counted.sum())
    # The normal class from everyone's mean, whose noise the M/M/1 control variate removes
    # (the Erlang C check's), less the priority class's small part: its own mean is too noisy.
    ys, xs = np.array(everyone), np.array(control)
    adjusted = ys - np.cov(ys, xs)[0, 1] / xs.var(ddof=1) * (xs - fast_server_wait)
    share_of = np.array(shares)
    normal = (adjusted - share_of * np.array(priority)) / (1 - share_of)
    waits = [
        ClassWait(expected[place], float(m.mean()), float(m.std(ddof=1) / np.sqrt(len(m))))
        for place, m in enumerate((np.array(priority), normal))
    ]
    return PriorityCheck(utilisation, replications, visits, waits[0], waits[1])


def priority_table(checks: list[PriorityCheck]) -> str:
    """The checks as a markdown table."""
    lines = [
        "| ρ | Replications | Visits | class | closed form (s) | simulated (s) | error | ± s.e. |",
        "|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for check in checks:
        for name, wait in (("priority", check.priority), ("normal", check.normal)):
            lines.append(
                f"| {check.utilisation:.2f} | {check.replications} | {check.visits:,} | {name} "
                f"| {wait.expected_s:.1f} | {wait.simulated_s:.1f} | {wait.error:+.1%} "
                f"| {wait.stderr_s / wait.expected_s:.1%} |"
            )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """`queue-server simulate queueing [SCENARIO] [--seed N] [--replications R]`: the Erlang C
    check and the two-class priority check of a single-service exponential scenario (mmc),
    each after a simulated day of warm-up, as markdown tables."""
    import argparse

    from queue_server.simulation.metrics import erlang_check
    from queue_server.simulation.report import erlang_table
    from queue_server.simulation.scenario import load_scenario

    parser = argparse.ArgumentParser(prog="queue-server simulate queueing")
    parser.add_argument("scenario", nargs="?", default="mmc")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--replications", type=int, default=30)
    parser.add_argument("--priority-loads", default="0.85,0.95")
    args = parser.parse_args(argv)
    scenario = load_scenario(args.scenario)
    erlang = [
        erlang_check(scenario, u, args.seed, args.replications) for u in scenario.erlang_check
    ]
    print(f"Erlang C, warm-up {ERLANG_HOURS} h\n\n{erlang_table(erlang)}\n")
    loads = [float(u) for u in args.priority_loads.split(",")]
    checks = [priority_check(scenario, u, args.seed, args.replications) for u in loads]
    print(f"Two-class priority ({PRIORITY_SHARE:.0%} priority), warm-up {ERLANG_HOURS} h\n")
    print(priority_table(checks))
    return 0
