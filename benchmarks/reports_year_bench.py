"""How fast the reports answer over a year of one large hall (the embedded default, SQLite).

`python -m benchmarks.reports_year_bench [--weeks 52] [--busier 2]`: one week of the demo
Tbilisi hall is simulated by `demo-history` (events, then facts by the projector), made `busier`
times as busy (facts copied, rollups multiplied: ≥ 1 million visits a year with 2) and copied
week after week into a year (a bulk load; its rate is printed). The tables made from the daily
and hourly rows (months, agencies, counter days, the heatmaps' hours: migration 0020's) are
then made again from the year's rows by that migration's own fill steps, so that every table the
reports read holds the whole year. Then every report the page asks for, over periods up to the
year and several slices, is read REPEATS times and its median and p95 printed (wall and CPU),
against computing the same totals straight from the facts, and the year again on the layout
before migration 0011 with the old way to the longest waits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import Connection, func, select

from benchmarks._support import POSTGRES_URL, ROOT, percentile, reset_postgres
from queue_server.catalog.loader import load_catalog
from queue_server.domain import kpis
from queue_server.reporting.history import fill_history
from queue_server.store.database import Database
from queue_server.store.migrate import alembic_config, migrate
from queue_server.store.reports.longest import longest_query
from queue_server.store.reports.page import read_page
from queue_server.store.reports.projector import visit_of
from queue_server.store.reports.queries import Slice
from queue_server.store.reports.runner import catch_up
from queue_server.store.schema_reports import (
    agency_months,
    agency_weeks,
    branch_days,
    branch_months,
    branch_weeks,
    class_weeks,
    counter_time,
    country_hour_months,
    network_days,
    network_months,
    network_weeks,
    service_weeks,
    visit_days,
    visit_facts,
    visit_months,
    visit_rollups,
)

BRANCH = "tbilisi"
WEEK = 7
REPEATS = 5
BASELINE_REPEATS = 2  # the year straight from the facts takes minutes under load
CHUNK = 5000
OPERATOR = "operator:demo-b01"  # the demo simulator names an operator after their counter


async def _copy_weeks(database: Database, weeks: int, busier: int) -> tuple[int, float]:
    """Make a year of the simulated week: each week of it `busier` times as many visits (the
    facts copied with new ids, the rollups' counts and sums multiplied, maxima kept), copied
    `weeks - 1` times, each a week earlier; returns the visits written and the seconds."""
    async with database.read() as conn:
        tables = {
            table: [dict(row._mapping) for row in await conn.execute(select(table))]
            for table in (
                visit_facts,
                visit_rollups,
                visit_days,
                branch_days,
                network_days,
                counter_time,
            )
        }
    started = time.perf_counter()
    written = 0
    async with database.write() as conn:
        for table in (visit_rollups, visit_days, branch_days, network_days):  # multiplied
            await conn.execute(table.delete())
    for week in range(weeks):
        shift = timedelta(days=WEEK * week)
        async with database.write() as conn:
            for table, rows in tables.items():
                if table is visit_facts:
                    copies = [
                        _shifted(row, shift, f"w{week:03d}c{copy:02d}")
                        for copy in range(busier)
                        for row in rows
                        if week or copy
                    ]
                    written += len(copies)
                elif table is counter_time:
                    copies = [_shifted(row, shift) for row in rows] if week else []
                else:
                    copies = [_busier(_shifted(row, shift), busier) for row in rows]
                for start in range(0, len(copies), CHUNK):
                    await conn.execute(table.insert(), copies[start : start + CHUNK])
    return written, time.perf_counter() - started


# The newest revision whose tables the copy fills itself (the facts, the hourly and daily rows,
# the counters' time); every table after it is made from those by its migration's own steps.
COPIED_UP_TO = "0019"
HELD_BY_THE_YEAR = (  # made by those steps: each holds the year's visits (whole weeks, months)
    visit_months,
    branch_months,
    branch_weeks,
    agency_months,
    agency_weeks,
    network_months,
    network_weeks,
    service_weeks,
    class_weeks,
    country_hour_months,
)


def _made_from_the_year(conn: Connection) -> None:
    """Make every table made from the year's daily and hourly rows (months, agencies, counter
    days, hours, service and class days, weeks, the country's hours: migrations 0020 onwards)
    again, by running those migrations down and up: a copied week cannot be shifted into months
    or weeks, and a table left holding the simulated week alone would make its reports look
    fast on a few rows."""
    config = alembic_config(conn.engine.url.render_as_string(hide_password=False))
    config.attributes["connection"] = conn
    command.downgrade(config, COPIED_UP_TO)
    command.upgrade(config, "head")


def _shifted(row: dict[str, Any], shift: timedelta, copy: str = "") -> dict[str, Any]:
    moved = dict(row)
    for name, value in row.items():
        if isinstance(value, datetime | date):
            moved[name] = value - shift
    if "ticket_id" in moved and copy:
        moved["ticket_id"] = f"{row['ticket_id'][:22]}{copy}"
    return moved


def _busier(row: dict[str, Any], times: int) -> dict[str, Any]:
    """A rollup row of `times` as many visits alike: counts and sums multiplied, maxima kept."""
    for name in kpis.Sums.__dataclass_fields__:
        if name.endswith("_hist"):
            row[name] = json.dumps({k: v * times for k, v in json.loads(row[name]).items()})
        elif not name.endswith("_max_ms"):
            row[name] *= times
    return row


async def _timed(work: Any, repeats: int = REPEATS) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (this process: the driver's thread included) of REPEATS runs. The
    CPU time is what the machine's load does not inflate (a shared 2-core machine)."""
    walls, cpus = [], []
    for _ in range(repeats):
        started, cpu = time.perf_counter(), time.process_time()
        await work()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    return walls, cpus


def _line(name: str, timed: tuple[list[float], list[float]]) -> str:
    walls, cpus = timed
    return (
        f"{name:>34}: median {percentile(walls, 0.5) * 1000:.0f} ms, p95 "
        f"{percentile(walls, 0.95) * 1000:.0f} ms (CPU median {percentile(cpus, 0.5) * 1000:.0f}"
        f" ms, p95 {percentile(cpus, 0.95) * 1000:.0f} ms)"
    )


# Migration 0011's indexes against the layout before it: the "old path", measured in this run.
BEFORE_0011 = [
    "DROP INDEX ix_visit_facts_branch_service_wait",
    "DROP INDEX ix_visit_rollups_branch_week",
    "DROP INDEX ix_visit_rollups_week",
    "CREATE INDEX ix_visit_rollups_date ON visit_rollups (local_date)",
    "DROP INDEX ix_counter_time_branch_date",
    "CREATE INDEX ix_counter_time_branch_date ON counter_time (branch_id, local_date)",
    "DROP INDEX ix_visit_days_branch_sums",
]


async def _build(database: Database, weeks: int, busier: int, postgres: bool) -> None:
    """Simulate the week, copy it into the year, make the tables made from the days."""
    catalog = load_catalog(ROOT / "config")
    await migrate(database)
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=n) for n in range(WEEK, 0, -1)]
    started = time.perf_counter()
    visits = (await fill_history(database, catalog, [BRANCH], days))[BRANCH]
    events = await catch_up(database, catalog, BRANCH)
    took = time.perf_counter() - started
    print(f"simulated week: {visits} visits, {events} events in {took:.0f} s")
    written, took = await _copy_weeks(database, weeks, busier)
    print(f"bulk load: {written} more visits in {took:.1f} s ({written / took:.0f}/s)")
    started = time.perf_counter()
    await database.transaction(_made_from_the_year)
    print(f"months, agencies, counter days, hours: {time.perf_counter() - started:.0f} s")
    async with database.read() as conn:  # each table the reports read holds the year
        for table in (visit_days, *HELD_BY_THE_YEAR):
            held = (await conn.execute(select(func.sum(table.c.visits)))).scalar()
            print(f"  {table.name}: {held} visits")
    if postgres:  # as autovacuum would: index-only scans need the visibility map
        autocommit = database.engine.execution_options(isolation_level="AUTOCOMMIT")
        async with autocommit.connect() as conn:
            await conn.exec_driver_sql("VACUUM ANALYZE")


async def run(
    weeks: int, busier: int, postgres: bool = False, keep: Path | None = None, built: bool = False
) -> None:
    """`keep`: the year's SQLite file, built there once and read again by later runs (`built`:
    it is there; the layout before 0011 is then not measured: it would change the file)."""
    with tempfile.TemporaryDirectory() as folder:
        path = keep or Path(folder) / "year.sqlite3"
        url = POSTGRES_URL if postgres else f"sqlite+aiosqlite:///{path}"
        database = Database(url)
        try:
            if not built:
                await _build(database, weeks, busier, postgres)
            async with database.read() as conn:
                total = (await conn.execute(select(func.count()).select_from(visit_facts))).scalar()
                newest = (await conn.execute(select(func.max(visit_facts.c.local_date)))).scalar()
            print(f"the year holds {total} visits", flush=True)
            today = newest + timedelta(days=1)  # the day the year was built
            slices = _slices(today)
            for name, where in slices.items():
                print(_line(name, await _timed(_report(database, where))), flush=True)
            if keep is not None:
                return
            year = slices["year"]

            async def from_facts() -> None:
                async with database.read() as conn:
                    rows = await conn.execute(
                        select(visit_facts).where(visit_facts.c.local_date >= year.first)
                    )
                    kpis.figures(kpis.sums_of(visit_of(row) for row in rows))

            baseline = await _timed(from_facts, BASELINE_REPEATS)
            print(_line("year, straight from facts", baseline), flush=True)
            async with database.write() as conn:
                for statement in BEFORE_0011:
                    await conn.exec_driver_sql(statement)
            old = _report(database, year, old_longest=True)
            print(_line("year, before 0011 (old path)", await _timed(old)), flush=True)
        finally:
            await database.dispose()


def _slices(today: date) -> dict[str, Slice]:
    one = (BRANCH,)  # a branch's report, as GET /api/v1/branches/{branch}/reports reads
    year_ago = today - timedelta(days=364)
    return {
        "week": Slice(today - timedelta(days=6), today, branches=one),
        "month": Slice(today - timedelta(days=29), today, branches=one),
        "year": Slice(year_ago, today, branches=one),
        "year, one service": Slice(year_ago, today, branches=one, services=("id_card",)),
        "year, kiosk+priority": Slice(
            year_ago, today, channels=("kiosk",), priorities=("priority",)
        ),
        "quarter": Slice(today - timedelta(days=90), today, branches=one),
        "year, one agency": Slice(year_ago, today, branches=one, agencies=("psda",)),
        "year, whole network (no branch)": Slice(year_ago, today),
        "month, one counter (facts)": Slice(
            today - timedelta(days=29), today, branches=one, counters=("b01",)
        ),
        "year, one counter (facts)": Slice(year_ago, today, branches=one, counters=("b01",)),
        "year, one operator (facts)": Slice(year_ago, today, branches=one, operators=(OPERATOR,)),
    }


def _report(database: Database, where: Slice, *, old_longest: bool = False) -> Any:
    """What the reports route reads: the slice in detail and the previous period's totals.
    `old_longest`: also the ten longest waits as they were found before (the wait index)."""
    zones = {BRANCH: "Asia/Tbilisi"}

    async def report() -> None:
        await read_page(database, where, zones)
        if old_longest:
            async with database.read() as conn:
                list(await conn.execute(longest_query(where, visit_facts.c.wait_s)))

    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--busier", type=int, default=2, help="visits of the demo week × this")
    parser.add_argument("--postgres", action="store_true", help="RIGI_BENCH_DATABASE_URL")
    parser.add_argument(
        "--file", type=Path, help="keep the year in this SQLite file, read it again"
    )
    arguments = parser.parse_args()
    if arguments.postgres:
        reset_postgres()
    kept = arguments.file is not None and arguments.file.exists()
    asyncio.run(run(arguments.weeks, arguments.busier, arguments.postgres, arguments.file, kept))
