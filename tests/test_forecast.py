"""The wait forecast: the real dispatcher played forward gives each waiting ticket a range."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from queue_server.domain.dispatch import QueuedTicket
from queue_server.domain.estimate import (
    EstimatorCounter,
    ServiceTimes,
    WaitingLine,
    estimate_wait,
)
from queue_server.domain.forecast import (
    ArrivalRate,
    BranchState,
    ForecastCounter,
    ServiceTimeLearner,
    ServiceTimeStats,
    forecast_branch,
)
from queue_server.domain.tickets import Priority
from queue_server.simulation.forecast_check import check_forecast
from queue_server.simulation.scenario import load_scenario

NOW = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
STEADY = ServiceTimeStats(mean_s=300.0, cv=0.01)  # every visit lasts about five minutes


def ticket(
    number: int, service: str = "a", priority: Priority = Priority.NORMAL, target_s: float = 600.0
) -> QueuedTicket:
    return QueuedTicket(
        id=f"t{number}",
        service_id=service,
        priority=priority,
        queued_at=NOW - timedelta(minutes=30 - number),
        target_wait_s=target_s,
    )


def test_people_in_line_at_one_busy_counter_wait_one_visit_more_each() -> None:
    state = BranchState(
        now=NOW,
        waiting=[ticket(1), ticket(2), ticket(3)],
        counters=[ForecastCounter("C1", {"a": 1.0}, True, "a", serving_for_s=120.0)],
        service_times={"a": STEADY},
    )
    forecast = forecast_branch(state, runs=16)
    assert forecast["t1"].median_s == pytest.approx(180.0, abs=10.0)
    assert forecast["t2"].median_s == pytest.approx(480.0, abs=15.0)
    assert forecast["t3"].median_s == pytest.approx(780.0, abs=20.0)
    # whole minutes rounded up (an honest forecast does not promise too little): 13 or 14
    assert forecast["t3"].median_min == math.ceil((forecast["t3"].median_s or 0.0) / 60)
    assert forecast["t3"].median_min in (13, 14)
    assert all(f.served_now for f in forecast.values())


def test_priority_tickets_expected_to_arrive_make_a_normal_ticket_wait_longer() -> None:
    # an hour's target: a priority ticket's head start of one target puts it ahead of them
    waiting = [ticket(n, target_s=3600.0) for n in range(1, 5)]
    counters = [ForecastCounter("C1", {"a": 1.0}, True, "a")]
    calm = BranchState(NOW, waiting, counters, {"a": STEADY})
    rush = ArrivalRate("a", NOW, NOW + timedelta(hours=2), 6.0, 3600.0, priority_share=1.0)
    busy = BranchState(NOW, waiting, counters, {"a": STEADY}, arrivals=[rush])
    without, overtaken = forecast_branch(calm, runs=32)["t4"], forecast_branch(busy, runs=32)["t4"]
    assert without.median_s is not None and overtaken.median_s is not None
    assert overtaken.median_s > without.median_s + 300.0
    assert overtaken.p90_s is not None and overtaken.p90_s >= overtaken.median_s


def test_a_service_no_open_counter_serves_is_not_served_now_and_says_when_one_opens() -> None:
    opens = NOW + timedelta(minutes=20)
    counters = [
        ForecastCounter("C1", {"a": 1.0}, True),
        ForecastCounter(
            "C2",
            {"b": 1.0},
            False,
            duty=((NOW - timedelta(hours=2), NOW), (opens, opens + timedelta(hours=4))),
        ),
    ]
    state = BranchState(NOW, [ticket(1, "b")], counters, {"b": STEADY})
    forecast = forecast_branch(state, runs=8)["t1"]
    assert not forecast.served_now
    assert forecast.next_open_at == opens
    assert forecast.median_s == pytest.approx(1200.0, abs=1.0)


def test_a_service_nobody_will_serve_today_has_no_wait_rather_than_zero() -> None:
    counters = [ForecastCounter("C1", {"a": 1.0}, True)]
    state = BranchState(NOW, [ticket(1, "b")], counters, {"b": STEADY})
    forecast = forecast_branch(state, runs=4)["t1"]
    assert (forecast.served_now, forecast.next_open_at) == (False, None)
    assert forecast.median_s is None and forecast.median_min is None


def test_a_counter_going_to_lunch_after_its_visit_leaves_the_line_to_the_other() -> None:
    lunch_end = NOW + timedelta(minutes=45)
    on_break = ForecastCounter(
        "C1",
        {"a": 1.0},
        True,
        "a",
        duty=(
            (NOW - timedelta(hours=3), NOW - timedelta(minutes=1)),
            (lunch_end, lunch_end + timedelta(hours=4)),
        ),
    )
    working = ForecastCounter("C2", {"a": 1.0}, True, "a")
    state = BranchState(NOW, [ticket(n) for n in range(1, 5)], [on_break, working], {"a": STEADY})
    forecast = forecast_branch(state, runs=16)
    # C2 alone calls one every five minutes: the fourth waits four visits, not two.
    assert forecast["t4"].median_s == pytest.approx(1200.0, abs=30.0)


def test_the_same_state_and_seed_give_the_same_forecast() -> None:
    state = BranchState(
        NOW,
        [ticket(n) for n in range(1, 6)],
        [ForecastCounter("C1", {"a": 1.0}, True, "a"), ForecastCounter("C2", {"a": 1.0}, True)],
        {"a": ServiceTimeStats(300.0, 0.8)},
        arrivals=[ArrivalRate("a", NOW, NOW + timedelta(hours=1), 10.0, 600.0, 0.2)],
    )
    assert forecast_branch(state, runs=8, seed=3) == forecast_branch(state, runs=8, seed=3)


def test_the_learner_keeps_the_days_mean_and_variability_not_the_last_few_visits() -> None:
    learner = ServiceTimeLearner({"a": 600.0})
    assert learner.stats("a").mean_s == 600.0  # configured until enough visits
    for duration in [100.0, 300.0] * 20 + [1000.0]:
        learner.observe("a", duration)
    stats = learner.stats("a")
    assert stats.mean_s == pytest.approx(9000.0 / 41)
    assert stats.cv == pytest.approx(0.729, abs=0.001)


def test_estimate_wait_divides_the_work_ahead_by_the_counters_once() -> None:
    waiting = [ticket(n) for n in range(1, 5)]
    counters = [EstimatorCounter(f"C{n}", True, {"a": 1.0}, busy=True) for n in (1, 2)]
    times = ServiceTimes(configured_s={"a": 600.0})
    guess = estimate_wait(waiting[-1], WaitingLine(waiting), counters, times, NOW)
    # three ahead × 600 s over two counters, plus the first of two busy counters freeing up
    assert guess.wait_s == pytest.approx(3 * 600 / 2 + 600 / 2)
    assert guess.served_now


def test_estimate_wait_flags_a_service_no_open_counter_serves() -> None:
    counters = [EstimatorCounter("C1", False, {"a": 1.0})]
    times = ServiceTimes(configured_s={"a": 600.0})
    guess = estimate_wait(ticket(1), WaitingLine([ticket(1)]), counters, times, NOW)
    assert not guess.served_now


def test_the_forecast_comes_closer_than_estimate_wait_in_a_simulated_centre() -> None:
    check = check_forecast(load_scenario("community-centre"), seed=5, days=2, stride=2, runs=16)
    assert check.forecast.tickets > 100
    assert check.forecast.relative_mae < check.today.relative_mae
    assert 0.75 <= check.forecast.coverage <= 0.99
    assert len(check.refresh_ms) == len(check.waiting_sizes) > 0


def test_with_the_guard_on_an_overdue_normal_ticket_goes_before_fresh_priority_ones() -> None:
    from queue_server.domain.dispatch import call_next

    overdue = QueuedTicket("late", "side", Priority.NORMAL, NOW - timedelta(minutes=16), 600.0)
    fresh = QueuedTicket("vip", "main", Priority.PRIORITY, NOW - timedelta(minutes=5), 600.0)
    profile = {"main": 1.0, "side": 0.5}  # the overdue ticket's service is a side service here
    without = call_next([overdue, fresh], "C1", profile, NOW, guard=None)
    guarded = call_next([overdue, fresh], "C1", profile, NOW)  # on at 1.5 by default
    assert without is not None and without.ticket.id == "vip"
    assert guarded is not None and guarded.ticket.id == "late"
    assert "guard" in guarded.reason


@pytest.mark.parametrize("guard", [1.5, None], ids=["guard-on", "guard-off"])
def test_the_forecast_calls_an_overdue_walk_in_first_exactly_when_the_dispatcher_does(
    guard: float | None,
) -> None:
    from queue_server.domain.dispatch import call_next

    overdue = QueuedTicket("late", "a", Priority.NORMAL, NOW - timedelta(minutes=16), 600.0)
    vip = QueuedTicket("vip", "a", Priority.PRIORITY, NOW - timedelta(minutes=8), 600.0)
    exact = ServiceTimeStats(mean_s=300.0, cv=0.0)
    counter = ForecastCounter("C1", {"a": 1.0}, True)
    state = BranchState(NOW, [overdue, vip], [counter], {"a": exact})
    found = forecast_branch(state, runs=4, guard=guard)
    first = call_next([overdue, vip], "C1", {"a": 1.0}, NOW, guard)
    assert first is not None
    # 1.6 targets against 0.8 + the priority head start of 1: the guard decides who goes first
    assert first.ticket.id == ("late" if guard else "vip")
    second = "vip" if first.ticket.id == "late" else "late"
    assert found[first.ticket.id].median_s == 0.0
    assert found[second].median_s == pytest.approx(300.0)
