"""A year of the whole country on PostgreSQL: how fast it loads and how fast every report answers.

`python -m benchmarks.country_year_bench` (a step of `make bench`): 211 branches (the shipped
86 and 125 halls synthesised as in national_view_bench), RIGI_BENCH_COUNTRY_VISITS_A_DAY visits
a day (20,500 by default, the mean over the week) over RIGI_BENCH_COUNTRY_DAYS days (365) are
made inside PostgreSQL by store/reports/country.py (events, visit facts, rollups; its rate is
printed). Then every report of the reports page (what GET …/reports reads: the slice in detail
and the previous period's totals) over a day, week, month, quarter and year, and 30 and 340 days
that start and end mid-month (RIGI_BENCH_COUNTRY_PERIODS: a comma-separated few), sliced by country,
region, branch, service, agency, channel and priority class, counter and operator, is read
REPEATS times: median and p95, wall time (the database's work included). A sample of them is
computed again straight from the event table (the visits of the period made from their events
by one SQL query: its totals only, less than the report gives) in the same run: the ratio.
RIGI_BENCH_COUNTRY_REUSE=1 reads the country already loaded; with RIGI_BENCH_COUNTRY_READ_ONLY=1
too, the database is neither migrated nor vacuumed (a year that must stay as loaded, or another
tree's code on a database past its revisions). The garbage collector is kept as the server keeps
it (ops/heap.py).
"""

from __future__ import annotations

import asyncio
import gc
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from benchmarks._support import POSTGRES_URL, percentile, reset_postgres
from benchmarks.national_view_bench import network_config
from queue_server.catalog.loader import Catalog, load_catalog
from queue_server.ops import heap
from queue_server.store.database import Database
from queue_server.store.migrate import migrate
from queue_server.store.reports.country import REPORT_TABLES, Loaded, load_year, plan_rows
from queue_server.store.reports.page import read_page
from queue_server.store.reports.queries import Slice

DAYS = int(os.environ.get("RIGI_BENCH_COUNTRY_DAYS", "365"))
VISITS_A_DAY = float(os.environ.get("RIGI_BENCH_COUNTRY_VISITS_A_DAY", "20500"))
REPEATS = int(os.environ.get("RIGI_BENCH_COUNTRY_REPEATS", "7"))
# A slow report is read fewer times: none after this much of its time (at least once).
REPORT_BUDGET_S = float(os.environ.get("RIGI_BENCH_COUNTRY_BUDGET_S", "15"))
LAST_DAY = date(2026, 6, 30)  # a fixed year, whatever the day the bench runs
# Period → (days, days before LAST_DAY that it ends). The calendar ones end on a month's last
# day; "30 days" and "340 days" end mid-month and start mid-month, as a manager's "last 30
# days" does: whole months are read by month, their ragged ends day by day (queries.periods).
PERIODS = {
    "day": (1, 0),
    "week": (7, 0),
    "month": (30, 0),
    "30 days": (30, 10),
    "quarter": (91, 0),
    "340 days": (340, 10),
    "year": (365, 0),
}


ONLY_PERIODS = os.environ.get("RIGI_BENCH_COUNTRY_PERIODS")
# Set to 0: no report computed again from the event table (its query is the same whatever the
# code: one run of it is enough when two trees are timed in turn).
FROM_EVENTS = os.environ.get("RIGI_BENCH_COUNTRY_FROM_EVENTS", "1") != "0"


def period_of(name: str) -> tuple[date, date]:
    """A named period's first and last day."""
    length, early = PERIODS[name]
    last = LAST_DAY - timedelta(days=early)
    return last - timedelta(days=length - 1), last


GOAL_P95_S = 0.5
GOAL_RATIO = 20.0
BIG_HALL, CENTRE, REGION = "tbilisi", "cc01-shashiani", "Kakheti"
SERVICE, AGENCY = "id_card", "psda"
SAMPLES = [  # (period, slice) computed again from the event table
    ("week", "branch (hall)"),
    ("month", "branch (hall)"),
    ("month", "region"),
    ("day", "country"),
    ("month", "country"),
    ("year", "country"),
]
CONNECTIONS = 4
# Set: time the reports over the year already in the database (its load not repeated).
REUSE = bool(os.environ.get("RIGI_BENCH_COUNTRY_REUSE"))
# Set (with REUSE): the database is only read, neither migrated nor vacuumed first: a year that
# must stay as loaded, or another tree's code timed on a database migrated past its newest
# revision (alembic would refuse it).
READ_ONLY = REUSE and bool(os.environ.get("RIGI_BENCH_COUNTRY_READ_ONLY"))


@dataclass
class Result:
    loaded: Loaded
    days: int
    reports: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    from_events: dict[tuple[str, str], float] = field(default_factory=dict)

    def p95(self, key: tuple[str, str]) -> float:
        return percentile(self.reports[key], 0.95)


def _slices(catalog: Catalog, first: date, last: date) -> dict[str, Slice]:
    region = tuple(sorted(b.id for b in catalog.branches.values() if b.region == REGION))
    hall = (BIG_HALL,)
    counter = catalog.branches[BIG_HALL].counters[0].id
    return {
        "country": Slice(first, last),
        "region": Slice(first, last, branches=region),
        "branch (hall)": Slice(first, last, branches=hall),
        "branch (centre)": Slice(first, last, branches=(CENTRE,)),
        "service": Slice(first, last, services=(SERVICE,)),
        "agency": Slice(first, last, agencies=(AGENCY,)),
        "channel + priority": Slice(first, last, channels=("kiosk",), priorities=("priority",)),
        "hall, one service": Slice(first, last, branches=hall, services=(SERVICE,)),
        "counter": Slice(first, last, branches=hall, counters=(counter,)),
        "operator": Slice(first, last, branches=hall, operators=(f"user-{counter}",)),
    }


async def _report(database: Database, where: Slice, zones: dict[str, str]) -> None:
    """What the reports route reads for one page (routes._answer)."""
    await read_page(database, where, zones)


_FROM_EVENTS = """WITH visits AS (
  SELECT data::json -> 'ticket' ->> 'id' AS id,
    min(at) FILTER (WHERE kind = 'ticket.issued') AS issued,
    max(at) FILTER (WHERE kind = 'ticket.called') AS called,
    max(at) FILTER (WHERE kind = 'ticket.started') AS started,
    max(at) FILTER (WHERE kind IN ('ticket.finished', 'ticket.no_show', 'ticket.cancelled',
      'ticket.transferred')) AS ended,
    max(CASE kind WHEN 'ticket.finished' THEN data::json -> 'ticket' ->> 'outcome'
      WHEN 'ticket.no_show' THEN 'no_show' WHEN 'ticket.cancelled' THEN 'cancelled'
      WHEN 'ticket.transferred' THEN 'transferred' END) AS outcome,
    count(*) FILTER (WHERE kind = 'ticket.recalled') AS recalls
  FROM events
  WHERE kind LIKE 'ticket.%' AND at >= :start AND at < :end {branches}
  GROUP BY 1)
SELECT count(*) AS visits, count(*) FILTER (WHERE outcome = 'served') AS served,
  count(*) FILTER (WHERE outcome = 'no_show') AS no_show,
  count(*) FILTER (WHERE outcome = 'cancelled') AS cancelled, sum(recalls) AS recalls,
  avg(extract(epoch FROM called - issued)) AS mean_wait,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM called - issued)) AS median,
  percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM called - issued)) AS p90,
  avg(extract(epoch FROM ended - started)) FILTER (WHERE started IS NOT NULL) AS service
FROM visits WHERE issued >= :start AND issued < :end"""


async def _from_events(engine: AsyncEngine, where: Slice, zone: str) -> tuple[float, int]:
    """The period's visits made from their events, and their totals: seconds and visits."""
    branches = "" if where.branches is None else "AND branch_id = ANY(:branches)"
    # The branch-local days as UTC instants (every branch here keeps the country's zone).
    start = f"CAST(:first AS timestamp) AT TIME ZONE '{zone}'"
    end = f"(CAST(:last AS timestamp) + interval '1 day') AT TIME ZONE '{zone}'"
    query = _FROM_EVENTS.replace(":start", start).replace(":end", end).format(branches=branches)
    params: dict[str, Any] = {"first": where.first, "last": where.last}
    if where.branches is not None:
        params["branches"] = list(where.branches)
    started = time.perf_counter()
    async with engine.connect() as conn:
        visits = (await conn.execute(text(query), params)).one().visits
    return time.perf_counter() - started, int(visits)


async def run(
    url: str = POSTGRES_URL, days: int = DAYS, visits_a_day: float = VISITS_A_DAY
) -> Result:
    with tempfile.TemporaryDirectory() as folder:
        config = network_config(Path(folder))
        catalog = load_catalog(config)
        cells, hours = plan_rows(catalog, config, visits_a_day)
    first = LAST_DAY - timedelta(days=days - 1)
    database = Database(url, connections=CONNECTIONS)
    try:
        if not READ_ONLY:
            await migrate(database)
        # Its own engine: the server's has a statement timeout, and a load takes minutes.
        bulk = create_async_engine(url, connect_args={"command_timeout": None})
        try:
            async with bulk.begin() as conn:
                if REUSE:
                    loaded = await conn.run_sync(_already_loaded)
                else:
                    loaded = await conn.run_sync(load_year, cells, hours, first, LAST_DAY)
        finally:
            await bulk.dispose()
        result = Result(loaded, days)
        print(describe_load(result), flush=True)
        slow = create_async_engine(url, connect_args={"command_timeout": None})
        autocommit = slow.execution_options(isolation_level="AUTOCOMMIT")
        async with autocommit.connect() as conn:  # as autovacuum would: the visibility map
            if not READ_ONLY:
                await conn.exec_driver_sql(f"VACUUM ANALYZE {', '.join(REPORT_TABLES)}")
        zones = {b.id: b.timezone for b in catalog.branches.values()}
        _collect_as_served()
        # The server opens its read pool at start (Database.check_budget): no report's time
        # holds the first connection's opening (~50 ms: the first report's first read).
        async with database.read() as conn:
            await conn.exec_driver_sql("SELECT 1")
        for period, (length, early) in PERIODS.items():
            if length + early > days or (ONLY_PERIODS and period not in ONLY_PERIODS.split(",")):
                continue
            for name, where in _slices(catalog, *period_of(period)).items():
                walls: list[float] = []
                while len(walls) < REPEATS and (not walls or sum(walls) < REPORT_BUDGET_S):
                    began = time.perf_counter()
                    await _report(database, where, zones)
                    walls.append(time.perf_counter() - began)
                result.reports[period, name] = walls
                reads = " ".join(f"{wall * 1000:.0f}" for wall in walls)  # is a slow one the first?
                print(f"{period:>8} {name:>20}: median {percentile(walls, 0.5) * 1000:6.0f} ms,"
                      f" p95 {percentile(walls, 0.95) * 1000:6.0f} ms (reads: {reads})",
                      flush=True)  # fmt: skip
        for period, name in SAMPLES if FROM_EVENTS else []:
            if (period, name) not in result.reports:
                continue
            where = _slices(catalog, *period_of(period))[name]
            seconds, visits = await _from_events(slow, where, zones[BIG_HALL])
            result.from_events[period, name] = seconds
            ratio = seconds / result.p95((period, name))
            print(f"{period:>8} {name:>20}: from the events {seconds * 1000:.0f} ms ({visits}"
                  f" visits), {ratio:.0f}× the report's p95", flush=True)  # fmt: skip
        await slow.dispose()
        return result
    finally:
        await database.dispose()


def _collect_as_served() -> None:
    """The garbage collector as `queue-server serve` keeps it (ops/heap.py): what is alive now
    frozen out of its way, a full collection rarer. Without it a full pass over the catalog,
    the engine and the libraries (~100 ms of CPU) landed in one read of seven, which a server
    would not have met there."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, heap.FULL_EVERY)
    heap.freeze()


def _already_loaded(conn: Connection) -> Loaded:
    """What the database holds, for REUSE (no load timed: its rate is not measured)."""
    counted = {
        name: conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
        for name in ("visit_facts", "events", "visit_rollups")
    }
    return Loaded(counted["visit_facts"], counted["events"], counted["visit_rollups"], {})


def describe_load(result: Result) -> str:
    loaded = result.loaded
    if not loaded.seconds:
        return f"reused {loaded.visits:,} visits, {loaded.events:,} events (load not timed)"
    steps = ", ".join(f"{name} {s:.0f} s" for name, s in loaded.seconds.items())
    return (
        f"loaded {loaded.visits:,} visits ({loaded.visits / result.days:,.0f} a day), "
        f"{loaded.events:,} events, {loaded.rollup_rows:,} hourly rollup rows in "
        f"{loaded.total_s:.0f} s: {loaded.visits / loaded.total_s:,.0f} visits/s, "
        f"{(loaded.visits + loaded.events) / loaded.total_s:,.0f} visits+events/s ({steps})"
    )


def describe(result: Result) -> str:
    worst = max(result.reports, key=result.p95)
    ratios = [s / result.p95(key) for key, s in result.from_events.items()]
    against = (
        f"{min(ratios):.0f}×–{max(ratios):.0f}× slower than the report's p95"
        if ratios
        else "not computed (RIGI_BENCH_COUNTRY_FROM_EVENTS=0, or no sample among the periods)"
    )
    return (
        f"{describe_load(result)}\nevery report: worst p95 {result.p95(worst) * 1000:.0f} ms "
        f"({worst[0]}, {worst[1]}; goal ≤ {GOAL_P95_S * 1000:.0f} ms); from the event table "
        f"{against} (goal ≥ {GOAL_RATIO:.0f}×)"
    )


def report_rows(result: Result | None) -> tuple[list[str], list[str]]:
    """The report's rows and goal lines (benchmarks/run.py)."""
    what = "a year of the country's reports, 211 branches (PostgreSQL)"
    if result is None:
        return [], [f"{what}: not measured (see the run's output)"]
    loaded = result.loaded
    if not loaded.seconds:
        return [], [f"{what}: the load was not timed (RIGI_BENCH_COUNTRY_REUSE)"]
    worst = max(result.reports, key=result.p95)
    worst_p95 = result.p95(worst)
    ratios = [s / result.p95(key) for key, s in result.from_events.items()]
    size_met = loaded.visits >= 7_000_000
    p95_met, ratio_met = worst_p95 <= GOAL_P95_S, bool(ratios) and min(ratios) >= GOAL_RATIO
    verdict = {True: "**met**", False: "**short**"}
    rows = [
        f"| {what}: the load, {result.days} days | {loaded.visits:,} visits, {loaded.events:,} "
        f"events in {loaded.total_s:.0f} s ({loaded.visits / loaded.total_s:,.0f} visits/s) "
        f"| goal ≥ 7,000,000 visits | {verdict[size_met]} |",
        f"| {what}: every report ({len(result.reports)} period × slice) | worst p95 "
        f"{worst_p95 * 1000:,.0f} ms ({worst[0]}, {worst[1]}) | goal p95 ≤ "
        f"{GOAL_P95_S * 1000:.0f} ms | {verdict[p95_met]} |",
        f"| {what}: the same from the event table ({len(ratios)} samples) | "
        f"{min(ratios, default=0):.1f}×–{max(ratios, default=0):.1f}× the report's p95 "
        f"| goal ≥ {GOAL_RATIO:.0f}× | {verdict[ratio_met]} |",
    ]
    goals = [
        f"country-year size: {verdict[size_met]} ({loaded.visits:,} visits)",
        f"country-year reports p95: {verdict[p95_met]} ({worst_p95 * 1000:,.0f} ms)",
        f"country-year against the event table: {verdict[ratio_met]}",
    ]
    return rows, goals


def main() -> Result:
    if not REUSE:
        reset_postgres()
    result = asyncio.run(run())
    print(describe(result))
    return result


if __name__ == "__main__":
    main()
