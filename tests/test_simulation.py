"""The simulator drives the real dispatcher and estimator: it must reproduce queueing theory,
be reproducible, and show that Rigi's dispatcher beats one line per counter on the hall."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from queue_server.cli import main as queue_server
from queue_server.domain.dispatch import QueuedTicket, call_next, rank_for_counter
from queue_server.domain.tickets import Priority
from queue_server.simulation.cli import main
from queue_server.simulation.metrics import erlang_check, run_scenario
from queue_server.simulation.scenario import ScenarioError, load_scenario
from tests.untraced import untraced

SEED = 20250304
ERLANG_REPLICATIONS = 40


@pytest.fixture(scope="module")
def hall_run():
    with untraced():  # four days of the big hall under five policies (tests/untraced.py)
        return run_scenario(load_scenario("tbilisi-hall"), SEED, replications=4)


@pytest.mark.slow
@pytest.mark.parametrize("utilisation", [0.7, 0.85, 0.95])
def test_single_service_hall_reproduces_erlang_c_mean_wait(utilisation):
    with untraced():  # 40 simulated days: four times faster untraced (tests/untraced.py)
        check = erlang_check(load_scenario("mmc"), utilisation, SEED, ERLANG_REPLICATIONS)
    assert abs(check.error) < 0.05, check
    # The estimate is precise enough that passing is not luck.
    assert check.controlled_stderr_s < 0.025 * check.erlang_c_s, check


def test_the_erlang_c_check_refuses_what_it_cannot_compare_and_counts_a_short_run():
    """The check's own bookkeeping, traced for the coverage figure (the checks above are not):
    three days at ρ 0.5 land near Erlang C; a hall of several services, or fewer than three
    replications, is refused."""
    check = erlang_check(load_scenario("mmc"), 0.5, SEED, 3)
    assert check.replications == 3 and check.visits > 3 * 1000, check
    assert abs(check.error) < 0.25, check
    with pytest.raises(ValueError, match="one service"):
        erlang_check(load_scenario("tbilisi-hall"), 0.7, SEED, 3)
    with pytest.raises(ValueError, match="3 replications"):
        erlang_check(load_scenario("mmc"), 0.7, SEED, 2)


def test_same_seed_gives_the_same_numbers():
    scenario = load_scenario("community-centre")
    first = run_scenario(scenario, SEED, replications=2)
    again = run_scenario(scenario, SEED, replications=2)
    other = run_scenario(scenario, SEED + 1, replications=2)
    assert first.summaries == again.summaries
    assert first.estimator == again.estimator
    assert first.summaries != other.summaries


def test_rigi_waits_less_than_one_line_per_counter_on_the_hall(hall_run):
    rigi, bank = hall_run.summary("rigi"), hall_run.summary("per_counter")
    assert rigi.mean_wait_s < bank.mean_wait_s
    assert rigi.max_wait_s < bank.max_wait_s


def test_pooling_beats_a_kiosk_binding_round_robin_and_visitors_who_never_switch(hall_run):
    # the baselines of issue 16 on the same visitors: round-robin binding is far behind; the
    # shortest line without switching is behind; visitors who switch to a free counter reach
    # about the same mean, but someone bound behind a long visit still waits longer at worst
    rigi = hall_run.summary("rigi")
    round_robin = hall_run.summary("round_robin")
    no_switching = hall_run.summary("per_counter")
    switching = hall_run.summary("switching")
    assert round_robin.mean_wait_s > 2 * rigi.mean_wait_s
    assert no_switching.mean_wait_s > rigi.mean_wait_s
    assert rigi.mean_wait_s <= 1.05 * switching.mean_wait_s
    assert rigi.max_wait_s < switching.max_wait_s


def test_rigi_meets_targets_at_least_as_often_as_pooled_fcfs_on_the_hall(hall_run):
    assert hall_run.summary("rigi").within_target >= hall_run.summary("pooled").within_target


def test_every_policy_serves_the_same_visitors_with_the_same_work(hall_run):
    visits = {s.visits for s in hall_run.summaries}
    assert len(visits) == 1 and visits.pop() > 4 * 2500
    utilisations = [s.utilisation for s in hall_run.summaries]
    assert max(utilisations) - min(utilisations) < 0.01


def test_estimator_beats_the_naive_estimate_on_the_hall(hall_run):
    estimator = hall_run.estimator
    assert estimator.mae_s < estimator.naive_mae_s
    assert abs(estimator.bias_s) < abs(estimator.naive_bias_s)


def test_call_next_picks_the_head_of_the_ranking():
    rng = random.Random(SEED)
    base = datetime(2025, 3, 4, 9, tzinfo=timezone(timedelta(hours=4)))
    services = ["certificates", "payments", "property"]
    profile = {"certificates": 1.0, "payments": 0.5}
    for _ in range(50):
        waiting = [
            QueuedTicket(
                id=f"{i:04d}",
                service_id=rng.choice(services),
                priority=rng.choice(list(Priority)),
                queued_at=base + timedelta(seconds=rng.randrange(0, 3600, 30)),
                target_wait_s=rng.choice([600.0, 1200.0]),
                counter_id=rng.choice([None, None, None, "Q01", "Q02"]),
                appointment_at=base + timedelta(seconds=rng.randrange(0, 7200, 60)),
            )
            for i in range(rng.randrange(0, 40))
        ]
        now = base + timedelta(hours=1)
        ranked = rank_for_counter(waiting, "Q01", profile, now)
        pick = call_next(waiting, "Q01", profile, now)
        if not ranked:
            assert pick is None
        else:
            assert pick == ranked[0]


def test_cli_writes_the_report_and_plots(tmp_path: Path, capsys):
    assert main(["community-centre", "--replications", "1", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "simulation.md").read_text(encoding="utf-8")
    assert "Rigi dispatcher" in text and "## Goals" in text
    pngs = sorted(p.name for p in (tmp_path / "simulation").glob("*.png"))
    assert pngs == ["community-centre-estimate.png", "community-centre-waiting.png"]
    assert (tmp_path / "simulation" / pngs[0]).read_bytes()[:4] == b"\x89PNG"
    assert "One line per counter" in capsys.readouterr().out


def test_unknown_scenario_is_named_in_the_error(capsys):
    assert main(["atlantis"]) == 2
    assert "atlantis" in capsys.readouterr().err
    with pytest.raises(ScenarioError):
        load_scenario("atlantis")


def test_queue_server_simulate_help_shows_the_simulators_options(capsys):
    with pytest.raises(SystemExit) as exited:
        queue_server(["simulate", "--help"])
    assert exited.value.code == 0
    usage = capsys.readouterr().out
    assert "queue-server simulate" in usage and "--replications" in usage


def test_queue_server_simulate_takes_options_before_the_scenario(capsys):
    command = ["simulate", "--seed", "3", "--replications", "1", "community-centre"]
    assert queue_server(command) == 0
    assert "(1 days, seed 3," in capsys.readouterr().out
