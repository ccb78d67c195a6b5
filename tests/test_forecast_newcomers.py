"""A newcomer's forecast: the wait of a walk-in taking a ticket now, from a probe that the
forward runs call but that takes no counter time, so it changes nobody else's forecast."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from queue_server.domain import kpis
from queue_server.domain.dispatch import QueuedTicket
from queue_server.domain.forecast import (
    BranchState,
    ForecastCounter,
    ServiceTimeStats,
    forecast_branch,
    newcomer_id,
)
from queue_server.domain.tickets import Priority

NOW = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
EXACT = ServiceTimeStats(mean_s=300.0, cv=0.0)  # every visit lasts five minutes: no noise
TARGET_S = 600.0


def _waiting(count: int, service: str = "a") -> list[QueuedTicket]:
    return [
        QueuedTicket(f"t{n}", service, Priority.NORMAL, NOW - timedelta(minutes=20 - n), TARGET_S)
        for n in range(count)
    ]


def _counters(open_: int = 2) -> list[ForecastCounter]:
    # both busy for another minute with the visit in hand
    return [ForecastCounter(f"c{n}", {"a": 1.0, "b": 1.0}, n < open_, "a", 240.0) for n in range(2)]


def _state(waiting: list[QueuedTicket], **options: object) -> BranchState:
    times = {"a": EXACT, "b": EXACT}
    return BranchState(NOW, waiting, _counters(), times, **options)  # type: ignore[arg-type]


def test_a_newcomer_waits_as_a_ticket_issued_now_would_and_moves_nobody_else() -> None:
    waiting = _waiting(5)
    without = forecast_branch(_state(waiting), runs=4)
    probed = forecast_branch(_state(waiting, newcomers={"a": TARGET_S}), runs=4)
    issued_now = QueuedTicket("z", "a", Priority.NORMAL, NOW, TARGET_S)
    real = forecast_branch(_state([*waiting, issued_now]), runs=4)
    for ticket in waiting:
        assert probed[ticket.id].median_s == without[ticket.id].median_s
    newcomer = probed[newcomer_id("a")]
    # two counters free at 1 min, then every 5 min: the sixth in line is called at 11 min
    assert newcomer.median_s == real["z"].median_s == pytest.approx(660.0)
    assert newcomer.p90_s == real["z"].p90_s and newcomer.served_now


def test_a_newcomer_is_forecast_even_when_nobody_waits() -> None:
    probed = forecast_branch(_state([], newcomers={"a": TARGET_S, "b": TARGET_S}), runs=4)
    # the first counter to finish its visit calls either: the probes do not queue behind each other
    assert probed[newcomer_id("a")].median_s == pytest.approx(60.0)
    assert probed[newcomer_id("b")].median_s == pytest.approx(60.0)


def test_a_newcomer_where_no_counter_is_open_is_not_served_now() -> None:
    state = BranchState(NOW, [], _counters(open_=0), {"a": EXACT}, newcomers={"a": TARGET_S})
    found = forecast_branch(state, runs=4)[newcomer_id("a")]
    assert not found.served_now and found.median_s is None and found.p90_s is None


def test_the_reports_count_how_often_the_promised_range_held() -> None:
    def visit(wait_s: float, p90_s: float | None) -> kpis.Visit:
        return kpis.Visit(NOW, kpis.SERVED, wait_s, 60.0, 0, TARGET_S, wait_s, p90_s)

    visits = [visit(100, 200), visit(300, 200), visit(150, 150), visit(50, None)]
    figures = kpis.figures(kpis.sums_of(visits))
    assert figures["ranged"] == 3 and figures["range_coverage"] == round(2 / 3, 4)
    assert kpis.figures(kpis.sums_of([visit(50, None)]))["range_coverage"] is None
