"""What the wait forecast is told of a branch beyond its line: the counters' stated rota (who
leaves for lunch and when they are back), how long the day's pauses last, the day's no-show
share, and service times that lean on the configured ones while a service has few visits."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Table, Text, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from queue_server.catalog.loader import load_catalog
from queue_server.domain import forecast
from queue_server.domain.dispatch import QueuedTicket
from queue_server.domain.forecast import PauseLearner, ServiceTimeLearner
from queue_server.domain.forecast_state import DEFAULT_PAUSE_S, MAX_RUNS, MIN_RETURN_S, runs_for
from queue_server.domain.tickets import Priority
from queue_server.store.database import Database
from queue_server.store.forecasts import Forecasts
from queue_server.store.migrate import migrate
from queue_server.store.schema_reports import visit_facts, visit_rollups
from tests.support import TEST_CATALOG

# Monday 30 November 2026, 13:30 in Tbilisi (UTC+4): counter c01 of the other hall is at lunch
LUNCH = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
ROTA = '{mon: [{opens: "09:00", closes: "13:00"}, {opens: "14:00", closes: "18:00"}]}'


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite'}")
    await migrate(db)
    yield db
    await db.dispose()


def _catalog_with_a_rota(tmp_path: Path) -> Path:
    """The test organisation, with counter c01 of the other hall on a rota with lunch 13–14."""
    config = tmp_path / "catalog"
    shutil.copytree(TEST_CATALOG, config)
    branch = config / "branches" / "otherhall.yaml"
    text = branch.read_text(encoding="utf-8")
    rewritten = text.replace(
        "serves: {id_card: 1, passport: 1, stamp: 1}}",
        f"serves: {{id_card: 1, passport: 1, stamp: 1}}, hours: {ROTA}}}",
    )
    assert rewritten != text
    branch.write_text(rewritten, encoding="utf-8")
    return config


async def test_a_counter_at_lunch_by_its_rota_is_forecast_back_when_its_afternoon_starts(
    database: Database, tmp_path: Path
) -> None:
    catalog = load_catalog(_catalog_with_a_rota(tmp_path))
    forecasts = Forecasts(database, catalog, lambda: LUNCH)
    state = await database.reading(lambda conn: forecasts._state(conn, "otherhall", LUNCH))
    c01 = next(counter for counter in state.counters if counter.id == "c01")
    back = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)  # 14:00 in Tbilisi
    assert c01.duty == (
        (datetime(2026, 11, 30, 5, 0, tzinfo=UTC), LUNCH - timedelta(minutes=30)),
        (back, datetime(2026, 11, 30, 14, 0, tzinfo=UTC)),
    )
    assert state.no_show_share == pytest.approx(0.04)  # no calls yet today: the default
    # Only c01 serves passports; closed now, it is back at 14:00 and a walk-in waits till then.
    walk_in = forecast.forecast_branch(state, runs=4)[forecast.newcomer_id("passport")]
    assert walk_in.served_now is False
    assert walk_in.next_open_at == back
    assert walk_in.median_s == pytest.approx(1800.0, abs=1.0)


async def test_a_counter_without_a_rota_says_nothing_of_when_it_opens(
    database: Database, tmp_path: Path
) -> None:
    forecasts = Forecasts(database, load_catalog(TEST_CATALOG), lambda: LUNCH)
    state = await database.reading(lambda conn: forecasts._state(conn, "otherhall", LUNCH))
    assert all(counter.duty == () for counter in state.counters)
    walk_in = forecast.forecast_branch(state, runs=4)[forecast.newcomer_id("passport")]
    assert (walk_in.served_now, walk_in.next_open_at, walk_in.median_s) == (False, None, None)


def test_a_service_with_few_visits_today_leans_on_its_configured_time() -> None:
    learner = ServiceTimeLearner({"a": 600.0}, prior_visits=4.0)
    assert learner.stats("a").mean_s == 600.0
    assert learner.stats("a").cv == pytest.approx(forecast.DEFAULT_CV)
    learner.observe("a", 300.0)
    assert learner.stats("a").mean_s == pytest.approx((300.0 + 4 * 600.0) / 5)
    for _ in range(95):
        learner.observe("a", 300.0)
    assert learner.stats("a").mean_s == pytest.approx((96 * 300.0 + 4 * 600.0) / 100)
    assert learner.stats("a").cv < forecast.DEFAULT_CV  # the day's visits are all alike


def test_a_paused_counter_is_expected_back_after_the_days_typical_pause() -> None:
    pauses = PauseLearner()
    assert pauses.remaining_s(600.0) == pytest.approx(DEFAULT_PAUSE_S - 600.0)
    for minutes in (20, 60, 25):
        pauses.observe(minutes * 60.0)
    assert pauses.typical_s() == 25 * 60.0  # the median: one long lunch does not set it
    assert pauses.remaining_s(10 * 60.0) == 15 * 60.0
    assert pauses.remaining_s(40 * 60.0) == MIN_RETURN_S  # overdue: back soon


def _filled(table: Table, **values: object) -> dict[str, object]:
    """A row of `table` with `values`, and zero (or "{}") in every other required column."""
    row = dict(values)
    for column in table.columns:
        if column.name not in row and not column.nullable:
            row[column.name] = "{}" if isinstance(column.type, Text) else 0
    return row


async def test_the_weeks_before_give_the_hours_arrivals_and_the_services_times(
    database: Database,
) -> None:
    """Two Mondays before: five passports a day at 14:00 and visits of 10–12 minutes. At
    13:30 today the forecast expects five passports in the 14:00 hour, none before, and a
    passport's visit of 11 minutes (nothing served today yet)."""
    mondays = [date(2026, 11, 16), date(2026, 11, 23)]
    facts = []
    for day in mondays:
        for number, minutes in enumerate((10, 11, 12)):
            issued = datetime.combine(day, time(9, number), UTC)
            facts.append(
                _filled(
                    visit_facts,
                    ticket_id=f"{day}-{number}",
                    branch_id="otherhall",
                    service_id="passport",
                    agency_id="psda",
                    priority="normal",
                    channel="kiosk",
                    label="P001",
                    issued_at=issued,
                    hour=issued.replace(minute=0),
                    local_date=day,
                    target_wait_s=900.0,
                    service_s=minutes * 60.0,
                )
            )
    rollups = [
        _filled(
            visit_rollups,
            branch_id="otherhall",
            service_id="passport",
            priority="normal",
            channel="kiosk",
            hour=datetime.combine(day, time(10), UTC),
            agency_id="psda",
            local_date=day,
            local_hour=14,
            weekday=0,
            visits=visits,
        )
        for day, visits in zip(mondays, (6, 4), strict=True)
    ]

    async def write(conn: AsyncConnection) -> None:
        await conn.execute(insert(visit_facts), facts)
        await conn.execute(insert(visit_rollups), rollups)

    async with database.write() as conn:
        await write(conn)
    forecasts = Forecasts(database, load_catalog(TEST_CATALOG), lambda: LUNCH)
    state = await database.reading(lambda conn: forecasts._state(conn, "otherhall", LUNCH))
    [passports] = [rate for rate in state.arrivals if rate.service_id == "passport"]
    assert (passports.start, passports.end) == (
        datetime(2026, 11, 30, 10, tzinfo=UTC),
        datetime(2026, 11, 30, 11, tzinfo=UTC),
    )
    assert passports.per_hour == pytest.approx(5.0)
    assert state.service_times["passport"].mean_s == pytest.approx(660.0)


def test_a_small_branch_gets_more_forward_runs_and_a_busy_hall_keeps_its_own() -> None:
    counter = forecast.ForecastCounter("c", {"a": 1.0}, True)
    line = [
        QueuedTicket(f"t{n}", "a", Priority.NORMAL, LUNCH - timedelta(minutes=n), 600.0)
        for n in range(200)
    ]
    centre = forecast.BranchState(LUNCH, line[:15], [counter] * 3, {}, newcomers={"a": 600.0})
    hall = forecast.BranchState(LUNCH, line, [counter] * 30, {}, newcomers={"a": 600.0})
    assert runs_for(centre, 32) == MAX_RUNS
    assert runs_for(hall, 32) == 32
    assert runs_for(centre, 0) == 0  # forecasting off stays off
