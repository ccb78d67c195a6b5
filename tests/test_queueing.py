"""The simulator against queueing theory: the closed forms, and the warm-up of a simulated day
that the checks run before anything counts (the full checks at ρ 0.85 and 0.95 are in
docs/simulation.md, from `queue-server simulate queueing`: too slow for a test)."""

from __future__ import annotations

import pytest

from queue_server.simulation.arrivals import erlang_c_wait
from queue_server.simulation.queueing import WARMUP_S, priority_check, priority_waits
from queue_server.simulation.scenario import load_scenario

MEAN_S = 300.0


@pytest.mark.parametrize(("servers", "rho", "share"), [(1, 0.5, 0.3), (10, 0.95, 0.2)])
def test_the_two_classes_wait_on_average_what_erlang_c_says_everyone_waits(
    servers: int, rho: float, share: float
) -> None:
    rate = rho * servers / MEAN_S
    priority, normal = priority_waits(rate, MEAN_S, servers, share)
    assert priority < normal
    # work-conserving, one service rate: the order of service does not change the mean
    assert share * priority + (1 - share) * normal == pytest.approx(
        erlang_c_wait(rate, MEAN_S, servers)
    )


def test_one_counter_gives_the_textbook_priority_queue() -> None:
    rho, share = 0.8, 0.25
    priority, normal = priority_waits(rho / MEAN_S, MEAN_S, 1, share)
    assert priority == pytest.approx(rho * MEAN_S / (1 - share * rho))
    assert normal == pytest.approx(rho * MEAN_S / ((1 - share * rho) * (1 - rho)))


def test_the_checks_warm_up_a_whole_day_at_the_same_load() -> None:
    mmc = load_scenario("mmc")
    long = mmc.warmed_up(WARMUP_S)
    assert long.warmup_s == WARMUP_S and long.close_s - long.warmup_s == mmc.close_s - mmc.warmup_s
    assert long.offered_load() == pytest.approx(mmc.offered_load())
    assert all(c.duty[-1][1] == long.close_s for c in long.counters)
    assert len(long.arrival_profile) * 3600 == long.close_s - long.open_s


def test_the_real_dispatcher_serves_priority_tickets_as_the_closed_form_says() -> None:
    check = priority_check(load_scenario("mmc"), 0.7, seed=3, replications=3)
    assert check.visits > 10_000
    assert check.priority.simulated_s < check.normal.simulated_s
    # ρ = 0.7, three days of 42 measured hours: each class within 25% of its closed form
    assert abs(check.priority.error) < 0.25 and abs(check.normal.error) < 0.25
