"""`queue-server simulate SCENARIO…`: compare dispatch policies and check the wait estimator."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from queue_server.simulation import report
from queue_server.simulation.metrics import (
    PRIORITY_STRESS_SHARE,
    ErlangCheck,
    ScenarioRun,
    erlang_check,
    run_scenario,
)
from queue_server.simulation.scenario import Scenario, ScenarioError, all_scenarios, load_scenario

GOAL_UTILISATION = 0.85  # the load at which pooling must halve the wait of one line per counter
GOAL_SPEEDUP = 2.0
GOAL_STARVATION = 3.0  # no normal ticket waits longer than this many service targets
GOAL_ESTIMATE_MAE = 0.25  # of the mean wait
# issue 16, pooling at GOAL_UTILISATION: how much longer the baselines wait than Rigi on average
GOAL_OVER_ROUND_ROBIN = 4.0
GOAL_OVER_NO_SWITCHING = 1.2
GOAL_MEAN_AGAINST_SWITCHING = 1.0  # Rigi's mean over the switching visitors' mean, at most
GOAL_MAX_AGAINST_SWITCHING = 0.85  # Rigi's longest wait over theirs, at most


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="queue-server simulate",
        description="Simulate a hall under three dispatch policies and check the wait estimator.",
    )
    parser.add_argument(
        "scenarios",
        nargs="+",
        metavar="SCENARIO",
        help="a scenario name in config/scenarios, a path to a YAML file, or 'all'",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--replications", type=int, default=10, help="simulated days per scenario (default 10)"
    )
    parser.add_argument(
        "--erlang-replications",
        type=int,
        default=60,
        help="replications per utilisation of the Erlang C check (default 60)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="write simulation.md and simulation/*.png into this directory (e.g. docs/)",
    )
    return parser


def main(argv: list[str]) -> int:
    if argv[:1] == ["forecast-check"]:
        from queue_server.simulation.forecast_cli import main as forecast_check

        return forecast_check(argv[1:])
    if argv[:1] == ["bookings"]:
        from queue_server.simulation.bookings import main as bookings

        return bookings(argv[1:])
    if argv[:1] == ["queueing"]:
        from queue_server.simulation.queueing import main as queueing

        return queueing(argv[1:])
    if argv[:1] == ["fairness"]:
        from queue_server.simulation.fairness import main as fairness

        return fairness(argv[1:])
    if argv[:1] == ["pooling"]:
        from queue_server.simulation.pooling import main as pooling

        return pooling(argv[1:])
    args = _parser().parse_args(argv)
    if args.replications < 1 or args.erlang_replications < 3:
        print("--replications must be ≥ 1 and --erlang-replications ≥ 3", file=sys.stderr)
        return 2
    try:
        names = [str(p) for p in all_scenarios()] if args.scenarios == ["all"] else args.scenarios
        scenarios = [load_scenario(name) for name in names]
    except ScenarioError as error:
        print(f"simulate: {error}", file=sys.stderr)
        return 2
    sections = []
    for scenario in scenarios:
        started = time.perf_counter()
        run = run_scenario(scenario, args.seed, args.replications)
        checks = [
            erlang_check(scenario, u, args.seed, args.erlang_replications)
            for u in scenario.erlang_check
        ]
        at_goal = None
        if not checks:
            at_goal = run_scenario(
                scenario.with_utilisation(GOAL_UTILISATION), args.seed, args.replications
            )
        elapsed = time.perf_counter() - started
        sections.append((run, checks, at_goal, elapsed))
        print(_console(run, checks, at_goal, elapsed))
    if args.out is not None:
        path = write_docs(sections, args.out, args.seed, args.replications)
        print(f"wrote {path}")
    return 0


def _console(
    run: ScenarioRun, checks: list[ErlangCheck], at_goal: ScenarioRun | None, elapsed: float
) -> str:
    parts = [
        f"== {run.scenario.title} ({run.replications} days, seed {run.seed}, {elapsed:.1f} s)",
        report.policy_table(run),
        report.estimator_table(run),
    ]
    if checks:
        parts.append(report.erlang_table(checks))
    if at_goal is not None:
        parts.append(f"At offered load {GOAL_UTILISATION}:\n" + report.policy_table(at_goal))
    return "\n\n".join(parts) + "\n"


def _scenario_facts(scenario: Scenario) -> str:
    visits = sum(s.daily_visits for s in scenario.services)
    hours = (scenario.close_s - scenario.open_s) / 3600
    return (
        f"{len(scenario.services)} services, {len(scenario.counters)} counters, "
        f"{visits:,.0f} expected visits over {hours:g} opening hours, "
        f"offered load {scenario.offered_load():.2f} (work arriving over staffed counter time), "
        f"{scenario.priority_share:.0%} priority tickets, {scenario.no_show_share:.0%} no-shows."
    )


def write_docs(
    sections: list[tuple[ScenarioRun, list[ErlangCheck], ScenarioRun | None, float]],
    out: Path,
    seed: int,
    replications: int,
) -> Path:
    """Write `out/simulation.md` with its plots in `out/simulation/`."""
    figures = out / "simulation"
    figures.mkdir(parents=True, exist_ok=True)
    names = " ".join(run.scenario.name for run, *_ in sections)
    text = [
        "# Dispatch quality: what the simulator shows",
        "",
        "Generated by `queue-server simulate "
        f"{names} --seed {seed} --replications {replications} --out docs/`; "
        "the numbers below are from that run and change only when the code or the scenarios do.",
        "",
        _METHOD,
    ]
    goals: list[str] = []
    for run, checks, at_goal, elapsed in sections:
        name = run.scenario.name
        waiting_png = figures / f"{name}-waiting.png"
        estimate_png = figures / f"{name}-estimate.png"
        report.plot_waiting(run, waiting_png)
        report.plot_estimates(run, estimate_png)
        text += [
            f"## {run.scenario.title}",
            "",
            f"`config/scenarios/{name}.yaml`. {run.scenario.description}",
            "",
            _scenario_facts(run.scenario)
            + f" {run.replications} simulated days took {elapsed:.1f} s.",
            "",
            report.policy_table(run),
            "",
            report.estimator_table(run),
            "",
            f"![Waiting over the day](simulation/{waiting_png.name})",
            f"![Estimate against actual](simulation/{estimate_png.name})",
            "",
        ]
        if checks:
            text += [
                "### Erlang C check",
                "",
                "Mean wait of the Rigi dispatcher (first come first served with one service) "
                "after the warm-up, against the exact M/M/c value. *Simulated* uses the "
                "control variate described above; *raw* is the plain mean of the replications.",
                "",
                report.erlang_table(checks),
                "",
            ]
        if at_goal is not None:
            text += [
                f"The same hall with arrivals scaled to an offered load of {GOAL_UTILISATION}:",
                "",
                report.policy_table(at_goal),
                "",
            ]
        goals += _goals(run, at_goal)
    text += ["## Goals", "", *goals, "", _NOTES]
    path = out / "simulation.md"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


def _pooling_goals(title: str, run: ScenarioRun) -> list[str]:
    """Issue 16's pooling goals at offered load GOAL_UTILISATION against the three baselines."""
    rigi = run.summary("rigi")
    round_robin = run.summary("round_robin").mean_wait_s / rigi.mean_wait_s
    no_switching = run.summary("per_counter").mean_wait_s / rigi.mean_wait_s
    switching = run.summary("switching")
    mean_ratio = rigi.mean_wait_s / switching.mean_wait_s
    max_ratio = rigi.max_wait_s / switching.max_wait_s
    both = mean_ratio <= GOAL_MEAN_AGAINST_SWITCHING and max_ratio <= GOAL_MAX_AGAINST_SWITCHING

    def verdict(met: bool) -> str:
        return "met" if met else "short"

    head = f"- {title}, offered load {GOAL_UTILISATION}"
    return [
        f"{head}: round-robin binding waits {round_robin:.2f}× as long as Rigi on average — "
        f"goal ≥ {GOAL_OVER_ROUND_ROBIN:g}×: **{verdict(round_robin >= GOAL_OVER_ROUND_ROBIN)}**.",
        f"{head}: the shortest line without switching waits {no_switching:.2f}× as long — goal "
        f"≥ {GOAL_OVER_NO_SWITCHING:g}×: **{verdict(no_switching >= GOAL_OVER_NO_SWITCHING)}**.",
        f"{head}: against the shortest line with switching, Rigi's mean wait is {mean_ratio:.2f}× "
        f"theirs (goal ≤ {GOAL_MEAN_AGAINST_SWITCHING:g}×) and its longest {max_ratio:.2f}× "
        f"(goal ≤ {GOAL_MAX_AGAINST_SWITCHING:g}×): **{verdict(both)}**.",
    ]


def _goals(run: ScenarioRun, at_goal: ScenarioRun | None) -> list[str]:
    title = run.scenario.title
    lines = []
    for label, subject in (("own load", run), (f"offered load {GOAL_UTILISATION}", at_goal)):
        if subject is None:
            continue
        rigi, bank = subject.summary("rigi"), subject.summary("per_counter")
        speedup = bank.mean_wait_s / rigi.mean_wait_s
        lines.append(
            f"- {title}, {label}: one line per counter waits {speedup:.2f}× as long as Rigi "
            f"on average — goal ≥ {GOAL_SPEEDUP:g}×: "
            f"**{'met' if speedup >= GOAL_SPEEDUP else 'short'}**."
        )
    pooled = at_goal or (
        run if abs(run.scenario.offered_load() - GOAL_UTILISATION) < 0.01 else None
    )
    if pooled is not None:
        lines.extend(_pooling_goals(title, pooled))
    ratio = run.summary("rigi").stress_worst_normal_ratio
    lines.append(
        f"- {title}: with {PRIORITY_STRESS_SHARE:.0%} priority tickets the longest wait of a "
        f"normal ticket under Rigi is {ratio:.2f}× its target — goal ≤ {GOAL_STARVATION:g}×: "
        f"**{'met' if ratio <= GOAL_STARVATION else 'short'}**."
    )
    e = run.estimator
    share = e.mae_s / e.mean_wait_s
    met = share < GOAL_ESTIMATE_MAE and e.mae_s < e.naive_mae_s
    lines.append(
        f"- {title}: estimator MAE {share:.0%} of the mean wait (naive "
        f"{e.naive_mae_s / e.mean_wait_s:.0%}) — goal < {GOAL_ESTIMATE_MAE:.0%} and better than "
        f"naive: **{'met' if met else 'short'}**."
    )
    return lines


_METHOD = """\
## How the simulation works

`queue_server/simulation/` is a discrete-event simulation (a heap of events, no SimPy: the
model is small and this is faster) that drives **the real dispatcher**
(`queue_server.domain.dispatch.call_next`) and **the real wait estimator**
(`queue_server.domain.estimate.estimate_wait`, with `ServiceTimes` learning from finished
visits as the server does). Simulated time is passed to them as time-zone-aware datetimes.

- **Arrivals**: for every service and opening hour, a Poisson number of visits spread uniformly
  over the hour (a piecewise-constant Poisson process following the scenario's hourly profile).
- **Service times**: log-normal around each service's mean with its coefficient of variation
  (exponential in the M/M/c validation).
- **Counters**: each has a work profile (services and weights), opening hours and staggered
  breaks; a counter finishes the visit in hand before its break, and at closing time serves
  everyone still waiting. A called no-show holds the counter for the no-show timeout.
- **Priority**: a share of tickets are priority tickets. The stress column re-runs the same
  visitors with 20% priority tickets and reports the longest wait of a *normal* ticket.
- **Policies**, all on the same visitors (common random numbers):
  *one line per counter* binds a ticket at issue to the shortest line among the staffed
  counters that serve it (the visitor chooses sensibly, like in a bank; priority visitors go to
  the front of that line); *pooled FCFS* keeps one line per service and a free counter takes the
  earliest ticket among its services, priority first; *Rigi* asks `call_next`.
- **Figures**: waits are from issue to call, for served visits (no-shows left out). "Within
  target" is the share called within their service's target wait. Utilisation is busy time
  (including no-show timeouts) over staffed time. The estimator's error is over every served
  ticket of the Rigi runs; the naive estimate is people ahead in the ticket's own service line ×
  the configured mean service time ÷ the open counters that serve it.
- **Erlang C check**: at each utilisation, independent days of a single-service M/M/10 hall,
  run a simulated day longer so that 24 hours of warm-up are dropped before the scenario's 42
  measured hours (near ρ = 0.95 the queue forgets its empty start only slowly). Near
  saturation the mean wait of a simulation converges very slowly (at ρ = 0.95 a plain
  estimate needs millions of visits for a few percent), so the check uses a *control
  variate*: the same arrivals and service times fed through one server ten times as fast —
  an M/M/1 queue whose mean wait is known exactly and which moves almost in step with the
  M/M/10 queue. The raw estimate is shown next to it.
"""

_NOTES = """\
The wait forecast of issue 16 is scored on its own: `queue-server simulate forecast-check
--out docs/` writes [forecast.md](forecast.md). Bookings (issue 19): `queue-server simulate
bookings tbilisi-hall 10` prints the table of the section "Bookings on a tbilisi-hall day".

## Reading the results

- Rigi's dispatcher and pooled FCFS are both work-conserving pools: their *mean* waits are close,
  because the order of service does not change the total work. The dispatcher's gain over
  pooled FCFS is in *whom* it serves first: it ranks by the share of each service's target
  already used, so short-target services are not stuck behind long ones and a counter's side
  services are taken before their tickets run late.
- One line per counter loses most where a counter goes on break or meets a long visit with
  people bound behind it. Choosing the shortest line at issue is already a good policy when
  service times vary little; the gap grows with the variability of service times and with breaks.
- The estimate cannot be much better than the randomness of the service times ahead allows: with
  *k* visits ahead spread over *c* counters, the actual wait varies by roughly 1/√(k+1) of its
  mean even for a perfect forecaster, and most tickets in a well-staffed hall have few people
  ahead. Arrivals after issue that overtake (priority tickets, services with shorter targets) are
  not foreseen and make the estimate a little short in the busiest hours.
"""
