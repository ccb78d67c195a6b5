"""Reports over long periods read whole months from the daily rollups' monthly twins and counter
time by day and month (migration 0020), the ragged ends of a period from the days. Over
simulated weeks of two Community Centres that cross two months' ends, every report read
from the rollups equals the figures counted from the visit facts one by one, for periods that
start and end inside months and for whole months, for slices read from each branch's rows per
service or per class (migration 0021) and from its rows per service, class and channel, whole
weeks from the weekly twins (migration 0022); again after a branch is rebuilt from its event log
and after its events are offered again; and migrations 0020, 0021 and 0022 make the same rows
from the days (0023 and 0024 the covering indexes the schema declares). Slices by counter and
by operator read the facts, summed by the database (store/reports/fact_sums.py): they must
equal the same count one visit at a time. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from sqlalchemy import Connection, func, inspect, select

from queue_server.catalog.loader import Catalog, load_catalog
from queue_server.domain import kpis
from queue_server.reporting.history import fill_history
from queue_server.store.database import Database
from queue_server.store.migrate import alembic_config, migrate
from queue_server.store.reports.periods import Slice, periods
from queue_server.store.reports.projector import visit_of
from queue_server.store.reports.queries import read_report
from queue_server.store.reports.runner import catch_up, rebuild
from queue_server.store.schema_reports import (
    agency_days,
    agency_months,
    agency_weeks,
    branch_days,
    branch_hour_months,
    branch_hours,
    branch_months,
    branch_weeks,
    class_days,
    class_months,
    class_weeks,
    counter_days,
    counter_months,
    counter_time,
    counter_weeks,
    country_hour_months,
    country_hours,
    network_days,
    network_hour_months,
    network_hours,
    network_months,
    network_weeks,
    service_days,
    service_months,
    service_weeks,
    visit_days,
    visit_facts,
    visit_months,
)
from tests.untraced import untraced

CONFIG = Path(__file__).resolve().parent.parent / "config"
BRANCHES = ("cc01-shashiani", "cc02-sartichala")
FIRST, LAST = date(2026, 1, 29), date(2026, 3, 3)  # all of February, ragged ends around it
PERIODS = [
    (FIRST, LAST),  # ragged at both ends
    (date(2026, 2, 1), date(2026, 2, 28)),  # exactly one month
    (date(2026, 2, 1), date(2026, 3, 2)),
    (date(2026, 2, 9), date(2026, 2, 20)),  # no whole month; a whole week, then days
    (date(2026, 1, 26), date(2026, 2, 8)),  # two whole weeks across a month's end
    (date(2026, 2, 27), date(2026, 2, 27)),  # one day: its rows read whole
]
# The second centre's days: around both months' ends only (fewer visits to simulate).
SECOND_DAYS = [date(2026, 1, 29) + timedelta(days=n) for n in range(6)]
SECOND_DAYS += [date(2026, 2, 25) + timedelta(days=n) for n in range(7)]
MONTH_TABLES: tuple[Any, ...] = (visit_months, branch_months, network_months, counter_days)
MONTH_TABLES += (counter_months, network_hours, network_hour_months, agency_days, agency_months)
MONTH_TABLES += (branch_hours, branch_hour_months, service_days, service_months, class_days)
MONTH_TABLES += (class_months, counter_weeks, network_weeks, branch_weeks, agency_weeks)
MONTH_TABLES += (service_weeks, class_weeks, country_hours, country_hour_months)
ZONE = ZoneInfo("Asia/Tbilisi")
OPERATORS = ("operator:demo-c02", "operator:demo-c03")  # the simulator names them by counter


def _slices(first: date, last: date) -> dict[str, Slice]:
    return {
        "network": Slice(first, last),
        "one centre": Slice(first, last, branches=(BRANCHES[1],)),
        "both": Slice(first, last, branches=BRANCHES),
        "service": Slice(first, last, services=("id_card",)),
        "agency": Slice(first, last, agencies=("psda",)),
        "kiosk priority": Slice(first, last, channels=("kiosk",), priorities=("priority",)),
        "both, kiosk": Slice(first, last, branches=BRANCHES, channels=("kiosk",)),
        "one centre, one service": Slice(first, last, branches=BRANCHES[1:], services=("id_card",)),
        # Read from the facts, their sums added up by the database (store/reports/fact_sums.py).
        "one counter": Slice(first, last, branches=BRANCHES[:1], counters=("c01",)),
        "two operators": Slice(first, last, branches=BRANCHES, operators=OPERATORS),
    }


def _kept(fact: Any, where: Slice) -> bool:
    return where.first <= fact.local_date <= where.last and all(
        values is None or getattr(fact, column) in values
        for column, values in (
            ("branch_id", where.branches),
            ("agency_id", where.agencies),
            ("service_id", where.services),
            ("priority", where.priorities),
            ("channel", where.channels),
            ("counter_id", where.counters),
            ("operator", where.operators),
        )
    )


def _counted(facts: list[Any], hours: list[Any], where: Slice) -> dict[str, Any]:
    """The report's figures counted from the facts one visit at a time (and the counters'
    time from its hours). `facts` are `_as_visits`' (fact, visit, local issue time)."""
    groups: dict[str, dict[Any, kpis.Sums]] = {
        name: defaultdict(kpis.Sums) for name in ("total", "service", "branch", "day")
    }
    arrivals: dict[tuple[int, int], int] = defaultdict(int)
    kept = [(fact, visit, local) for fact, visit, local in facts if _kept(fact, where)]
    for fact, visit, local in kept:
        arrivals[local.weekday(), local.hour] += 1
        groups["total"][None].add_visit(visit)
        groups["service"][fact.service_id].add_visit(visit)
        groups["branch"][fact.branch_id].add_visit(visit)
        groups["day"][fact.local_date].add_visit(visit)
    counters: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for hour in hours:
        if where.first <= hour.local_date <= where.last and all(
            values is None or getattr(hour, column) in values
            for column, values in (
                ("branch_id", where.branches),
                ("counter_id", where.counters),
                ("operator", where.operators),
            )
        ):
            spent = counters[hour.branch_id, hour.counter_id, hour.operator]
            for index, name in enumerate(("serving_ms", "idle_ms", "paused_ms", "closed_ms")):
                spent[index] += getattr(hour, name)
    figures = {
        name: {key: _figures(sums, name) for key, sums in by.items()} for name, by in groups.items()
    }
    waited = sorted(
        (fact for fact, _, _ in kept if fact.wait_s is not None),
        key=lambda f: (-f.wait_s, f.ticket_id),
    )
    return figures | {
        "longest": [
            (f.branch_id, f.issued_at.isoformat(), round(f.wait_s, 1)) for f in waited[:10]
        ],
        "arrivals": dict(arrivals),
        "counters": {key: [round(ms / 1000, 3) for ms in spent] for key, spent in counters.items()},
    }


def _as_visits(facts: list[Any]) -> list[tuple[Any, kpis.Visit, datetime]]:
    """Each fact with its visit and its local issue time, made once for every slice."""
    return [(fact, visit_of(fact), fact.issued_at.astimezone(ZONE)) for fact in facts]


def _figures(sums: kpis.Sums, group: str) -> dict[str, Any]:
    figures = kpis.figures(sums)
    if group == "day":  # a report's days carry sums, not histograms
        for name in ("median_wait_s", "p90_wait_s", "p90_service_s"):
            figures.pop(name)
    return figures


def _read(report: Any) -> dict[str, Any]:
    groups = {
        "total": {None: report.total} if report.total.visits else {},
        "service": report.by_service,
        "branch": report.by_branch,
        "day": report.by_day,
    }
    figures = {
        name: {key: _figures(sums, name) for key, sums in by.items()} for name, by in groups.items()
    }
    counters = {
        key: [round(s, 3) for s in (spent.serving_s, spent.idle_s, spent.paused_s, spent.closed_s)]
        for key, spent in report.counters.items()
    }
    longest = [(row["branch_id"], row["issued_at"], row["wait_s"]) for row in report.longest]
    return figures | {"longest": longest, "arrivals": dict(report.arrivals), "counters": counters}


async def _compare(database: Database, catalog: Catalog, periods: list[Any] = PERIODS) -> int:
    """Every period × slice read from the rollups against the facts; the reports compared."""
    rows = await database.reading(lambda conn: list(conn.execute(select(visit_facts))))
    facts = _as_visits(rows)
    hours = await database.reading(lambda conn: list(conn.execute(select(counter_time))))
    zones = {b: catalog.branch(b).timezone for b in BRANCHES}
    compared = 0
    for first, last in periods:
        for name, where in _slices(first, last).items():
            async with database.read() as conn:
                report = await read_report(conn, where, zones)
                totals = await read_report(conn, where, zones, detail=False)  # as previous
            with untraced():  # the oracle: ~7,000 visits counted per slice (tests/untraced.py)
                counted = _counted(facts, hours, where)
            assert _read(report) == counted, (name, first, last)
            assert _read(totals)["total"] == counted["total"], (name, first, last)
            compared += 1
    return compared


def _month_rows(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table.name: sorted(tuple(row) for row in conn.execute(select(table)))
        for table in MONTH_TABLES
    }


# ~70 s alone at load 7 (10 slices × 6 periods, a rebuild, migrations down and up); beside
# another worker on a loaded machine, over the default 120 s.
@pytest.mark.timeout(240)
async def test_reports_read_by_month_give_the_figures_of_their_facts(database_url: str) -> None:
    catalog = load_catalog(CONFIG)
    database = Database(database_url)
    try:
        await migrate(database)
        days = [FIRST + timedelta(days=n) for n in range((LAST - FIRST).days + 1)]
        await fill_history(database, catalog, BRANCHES[:1], days)
        await fill_history(database, catalog, BRANCHES[1:], SECOND_DAYS)
        for branch in BRANCHES:
            await catch_up(database, catalog, branch, limit=500)  # several batches
        months = await database.reading(_month_rows)
        assert {row[4] for row in months["visit_months"]} == {
            date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1),
        }  # fmt: skip
        # The period really is read from both: whole months and ragged days (and weeks).
        assert [t.name for t, _ in periods(visit_days, Slice(FIRST, LAST))] == [
            "visit_days", "visit_months", "visit_days",
        ]  # fmt: skip
        assert [t.name for t, _ in periods(counter_days, Slice(*PERIODS[3]))] == [
            "counter_weeks", "counter_days",
        ]  # fmt: skip
        assert [t.name for t, _ in periods(counter_days, Slice(*PERIODS[4]))] == ["counter_weeks"]
        for daily in (network_days, branch_days, agency_days, service_days, class_days):
            week = daily.name.replace("_days", "_weeks")  # migration 0022
            assert [t.name for t, _ in periods(daily, Slice(*PERIODS[3]))] == [week, daily.name]
        assert {row[3].weekday() for row in months["network_weeks"]} == {0}  # Mondays
        assert await _compare(database, catalog) == len(PERIODS) * len(_slices(FIRST, LAST))

        await rebuild(database, catalog, [BRANCHES[1]])
        assert await database.reading(_month_rows) == months
        for branch in BRANCHES:  # offered again: at or below the cursor, nothing moves
            assert await catch_up(database, catalog, branch) == 0
        assert await database.reading(_month_rows) == months
        await _compare(database, catalog, PERIODS[:1])

        # Migrations 0020, 0021 and 0022 make the same months, the days per service and per
        # class, and the weeks, from the days and the hours; 0023 and 0024 the indexes the
        # schema declares (the facts'; the top days', counters' and days' covering ones).
        indexed: tuple[Any, ...] = (visit_facts, visit_days, visit_months, counter_days)
        indexed += (counter_weeks, counter_months, branch_days, network_days, agency_days)
        indexed += (network_hours, network_hour_months)  # 0025: by service, agency, class

        def again(connection: Connection) -> dict[str, list[Any]]:
            config = alembic_config(database.url)
            config.attributes["connection"] = connection
            command.downgrade(config, "0019")
            command.upgrade(config, "head")
            found = inspect(connection)
            return {
                str(index["name"]): index["column_names"]
                for table in indexed
                for index in found.get_indexes(table.name)
            }

        async with database.engine.begin() as conn:
            assert await conn.run_sync(again) == {
                str(index.name): [column.name for column in index.columns]
                for table in indexed
                for index in table.indexes
            }
        assert await database.reading(_month_rows) == months
        visits = await database.reading(
            lambda conn: conn.execute(select(func.sum(visit_months.c.visits))).scalar_one()
        )
        assert visits == len(await database.reading(lambda c: list(c.execute(select(visit_facts)))))
    finally:
        await database.dispose()
