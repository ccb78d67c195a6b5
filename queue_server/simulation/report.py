"""Tables (Markdown) and plots (PNG, matplotlib's Agg backend) of simulation runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from queue_server.simulation.metrics import (
    POLICY_LABELS,
    PRIORITY_STRESS_SHARE,
    ErlangCheck,
    ScenarioRun,
)

WAIT_BIN_S = 1800.0  # mean wait is plotted per half hour of issue


def _min(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def policy_table(run: ScenarioRun) -> str:
    stress = f"{PRIORITY_STRESS_SHARE:.0%}"
    lines = [
        "| Policy | Mean wait (min) | p90 (min) | Max (min) | Within target | "
        f"Longest normal wait at {stress} priority (min) | … × its target | Utilisation |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in run.summaries:
        lines.append(
            f"| {s.label} | {_min(s.mean_wait_s)} | {_min(s.p90_wait_s)} | {_min(s.max_wait_s)} "
            f"| {s.within_target:.1%} | {_min(s.stress_max_normal_wait_s)} "
            f"| {s.stress_worst_normal_ratio:.2f} | {s.utilisation:.1%} |"
        )
    return "\n".join(lines)


def estimator_table(run: ScenarioRun) -> str:
    e = run.estimator
    mean = e.mean_wait_s
    return "\n".join(
        [
            "| Estimate given at issue | MAE (min) | MAE / mean wait | Bias (min) |",
            "|---|---:|---:|---:|",
            f"| Rigi estimator | {_min(e.mae_s)} | {e.mae_s / mean:.0%} | {e.bias_s / 60:+.2f} |",
            f"| Naive (ahead × mean ÷ open) | {_min(e.naive_mae_s)} | {e.naive_mae_s / mean:.0%} "
            f"| {e.naive_bias_s / 60:+.2f} |",
        ]
    )


def erlang_table(checks: list[ErlangCheck]) -> str:
    lines = [
        "| ρ | Replications | Visits | Erlang C (s) | Simulated (s) | Error | ± s.e. "
        "| Raw mean (s) | Raw error | ± s.e. |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in checks:
        lines.append(
            f"| {c.utilisation:.2f} | {c.replications} | {c.visits:,} | {c.erlang_c_s:.1f} "
            f"| {c.controlled_wait_s:.1f} | {c.error:+.1%} "
            f"| {c.controlled_stderr_s / c.erlang_c_s:.1%} | {c.raw_wait_s:.1f} "
            f"| {c.raw_error:+.1%} | {c.raw_stderr_s / c.erlang_c_s:.1%} |"
        )
    return "\n".join(lines)


def plot_waiting(run: ScenarioRun, path: Path) -> None:
    """People waiting and mean wait by time of issue over the day, one line per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenario = run.scenario
    figure, (people, waits) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    edges = np.arange(scenario.open_s, scenario.close_s + WAIT_BIN_S, WAIT_BIN_S)
    for policy, days in run.days.items():
        label = POLICY_LABELS[policy]
        grid = days[0].sample_s / 3600
        people.plot(grid, np.mean([d.waiting_samples for d in days], axis=0), label=label)
        arrivals = np.concatenate([d.arrival_s[d.counted] for d in days])
        wait = np.concatenate([d.wait_s[d.counted] for d in days])
        index = np.digitize(arrivals, edges) - 1
        means = [
            wait[index == i].mean() / 60 if (index == i).any() else np.nan
            for i in range(len(edges) - 1)
        ]
        waits.step(edges[:-1] / 3600, means, where="post", label=label)
    people.set_ylabel("people waiting (mean)")
    waits.set_ylabel("mean wait by time of issue (min)")
    waits.set_xlabel("hour of day")
    people.set_title(f"{scenario.title}: waiting over the day ({run.replications} days)")
    people.legend()
    for axis in (people, waits):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_estimates(run: ScenarioRun, path: Path) -> None:
    """Estimated against actual wait for every ticket of the Rigi runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = run.days["rigi"]
    actual = np.concatenate([d.wait_s[d.counted] for d in days]) / 60
    estimate = np.concatenate([d.estimate_s[d.counted] for d in days]) / 60
    naive = np.concatenate([d.naive_s[d.counted] for d in days]) / 60
    figure, axis = plt.subplots(figsize=(6.5, 6))
    axis.scatter(actual, naive, s=3, alpha=0.25, label="naive", color="tab:gray")
    axis.scatter(actual, estimate, s=3, alpha=0.35, label="Rigi estimator", color="tab:blue")
    top = float(max(actual.max(), estimate.max(), 1.0))
    axis.plot([0, top], [0, top], color="black", linewidth=1, label="estimate = actual")
    axis.set_xlim(0, top)
    axis.set_ylim(0, top)
    axis.set_xlabel("actual wait (min)")
    axis.set_ylabel("estimate at issue (min)")
    axis.set_title(f"{run.scenario.title}:\nestimate against actual")
    axis.legend(markerscale=4)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
