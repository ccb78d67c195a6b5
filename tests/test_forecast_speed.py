"""The forecast's fast forward run picks whom the real dispatcher picks; its cost is benched."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from queue_server.domain.dispatch import QueuedTicket, call_next
from queue_server.domain.forecast import BranchState, ForecastCounter
from queue_server.domain.forecast_draws import forward_runs
from queue_server.domain.forecast_engine import Draws, play_runs
from queue_server.domain.forecast_plan import BranchPlan
from queue_server.domain.tickets import Priority
from queue_server.simulation.forecast_check import refresh_cost
from queue_server.simulation.scenario import load_scenario

NOW = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
SERVICES = ("a", "b", "c")
TARGETS = (300.0, 600.0, 1200.0)


def _random_line(rng: random.Random, size: int) -> list[QueuedTicket]:
    line = []
    for number in range(size):
        kind = rng.random()
        line.append(
            QueuedTicket(
                id=f"t{number:03d}",
                service_id=rng.choice(SERVICES),
                priority=(
                    Priority.APPOINTMENT
                    if kind < 0.1
                    else Priority.PRIORITY
                    if kind < 0.3
                    else Priority.NORMAL
                ),
                queued_at=NOW - timedelta(seconds=rng.randrange(0, 3600)),
                target_wait_s=rng.choice(TARGETS),
                counter_id="C1" if rng.random() < 0.05 else None,
                appointment_at=NOW + timedelta(seconds=rng.randrange(-600, 1200)),
            )
        )
    return line


@pytest.mark.parametrize("guard", [1.5, None], ids=["guard-on", "guard-off"])
def test_every_call_of_a_forward_run_is_the_real_dispatchers_choice(guard: float | None) -> None:
    # one counter, visits of a fixed length and no no-shows: the order in which the run calls
    # the line must be the order in which `call_next` takes it, call after call (lines of up to
    # an hour's waits against 5-20 min targets: with the guard on, most calls cross it)
    rng = random.Random(7)
    guarded_calls = 0
    for _ in range(30):
        line = _random_line(rng, 40)
        profile = {"a": 1.0, "b": rng.choice((0.3, 0.5, 1.0)), "c": rng.choice((0.5, 1.0))}
        visit_s = 60.0
        expected, left, clock = [], list(line), NOW
        while (pick := call_next(left, "C1", profile, clock, guard)) is not None:
            guarded_calls += "fairness guard" in pick.reason
            expected.append(pick.ticket.id)
            left.remove(pick.ticket)
            clock += timedelta(seconds=visit_s)
        state = BranchState(
            now=NOW,
            waiting=line,
            counters=[ForecastCounter("C1", profile, True)],
            service_times={},
            no_show_share=1.0,  # every visit ends after the no-show timeout: exactly a minute
            no_show_timeout_s=visit_s,
        )
        waits = forward_runs(BranchPlan(state, guard).arrays(), 1, 1)[0].tolist()
        called = sorted((w, line[i].id) for i, w in enumerate(waits) if w != float("inf"))
        # the n-th call happens n minutes in: the order of the waits is the order of the calls
        assert [ticket_id for _, ticket_id in called] == expected[: len(called)]
        assert len(called) == len(expected)
    assert (guarded_calls > 100) is (guard is not None)


def test_the_refresh_cost_probe_measures_each_refresh() -> None:
    # how cheap a refresh is lives in `make bench` (benchmarks/forecast_bench.py); here only that
    # the probe the bench relies on measures one positive CPU figure per refresh
    costs = refresh_cost(load_scenario("tbilisi-hall"), waiting=200, refreshes=3)
    assert len(costs) == 3
    assert all(0.0 < cost < 60_000.0 for cost in costs)


@pytest.mark.parametrize("arrivals", [True, False], ids=["arrivals", "no-arrivals"])
def test_a_forecast_drawn_short_gives_the_waits_of_one_drawn_in_full(
    arrivals: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # only the random numbers a forecast can use are drawn; running out of a part drawn short
    # must draw more of the very same numbers, never change a wait
    from queue_server.domain import forecast_draws
    from queue_server.domain.forecast_state import ArrivalRate, ServiceTimeStats

    rng = random.Random(3)
    line = _random_line(rng, 60)
    state = BranchState(
        now=NOW,
        waiting=line,
        counters=[
            ForecastCounter("C1", {"a": 1.0, "b": 0.5}, True, "a", 400.0),
            ForecastCounter("C2", {"b": 1.0, "c": 1.0}, True, "c", 30.0),
        ],
        service_times={s: ServiceTimeStats(240.0, 0.8) for s in SERVICES},
        arrivals=[ArrivalRate(s, NOW, NOW + timedelta(hours=2), 4.0, 600.0, 0.2) for s in SERVICES]
        if arrivals
        else [],
        no_show_share=0.05,
        newcomers={"a": 600.0},
    )
    plan = BranchPlan(state, 1.5).arrays()
    drawn_short = forward_runs(plan, 16, 5)
    size = 16 * (3 * plan.waiting + forecast_draws.DRAWS_PER_RUN)  # the numbers' layout
    numbers = np.random.default_rng(5)
    laid_out = Draws(
        numbers.random(size),
        numbers.standard_normal(size),
        numbers.standard_exponential(size),
        np.zeros(4, np.int64),
    )
    assert play_runs(plan, 16, laid_out).tolist() == drawn_short.tolist()
    # the first parts drawn as short as can be:
    monkeypatch.setattr(forecast_draws, "_first_wanted", lambda plan, runs, size: [size, 1, 1])
    assert forward_runs(plan, 16, 5).tolist() == drawn_short.tolist()
    monkeypatch.setattr(forecast_draws, "_first_wanted", lambda plan, runs, size: [size] * 3)
    assert forward_runs(plan, 16, 5).tolist() == drawn_short.tolist()  # and all of them
    assert (drawn_short < float("inf")).any()
