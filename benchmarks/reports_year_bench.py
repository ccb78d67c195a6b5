"""How fast the reports answer over a year of one large hall (the embedded default, SQLite).

`python -m benchmarks.reports_year_bench [--weeks 52]`: one week of the demo Tbilisi hall is
simulated by `demo-history` (events, then facts by the projector), and its facts, rollups and
counter time are copied week after week into a year (a bulk load; its rate is printed). Then
every report the page asks for, over periods up to the year and several slices, is read
REPEATS times and its median and p95 printed, against computing the same totals straight
from the facts.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from benchmarks._support import ROOT, percentile
from queue_server.catalog.loader import load_catalog
from queue_server.domain import kpis
from queue_server.reporting.history import fill_history
from queue_server.store.database import Database
from queue_server.store.migrate import migrate
from queue_server.store.reports.projector import visit_of
from queue_server.store.reports.queries import Slice, read_report
from queue_server.store.reports.runner import catch_up
from queue_server.store.schema_reports import counter_time, visit_days, visit_facts, visit_rollups

BRANCH = "tbilisi"
WEEK = 7
REPEATS = 5
CHUNK = 5000


async def _copy_weeks(database: Database, weeks: int) -> tuple[int, float]:
    """Copy the simulated week's rows `weeks - 1` times, each a week earlier; returns the
    fact rows written and the seconds it took."""
    async with database.read() as conn:
        tables = {
            table: [dict(row._mapping) for row in await conn.execute(select(table))]
            for table in (visit_facts, visit_rollups, visit_days, counter_time)
        }
    started = time.perf_counter()
    written = 0
    for week in range(1, weeks):
        shift = timedelta(days=WEEK * week)
        async with database.write() as conn:
            for table, rows in tables.items():
                copies = [_shifted(row, shift, week) for row in rows]
                for start in range(0, len(copies), CHUNK):
                    await conn.execute(table.insert(), copies[start : start + CHUNK])
                if table is visit_facts:
                    written += len(copies)
    return written, time.perf_counter() - started


def _shifted(row: dict[str, Any], shift: timedelta, week: int) -> dict[str, Any]:
    copy = dict(row)
    for name, value in row.items():
        if isinstance(value, datetime | date):
            copy[name] = value - shift
    if "ticket_id" in copy:
        copy["ticket_id"] = f"{row['ticket_id'][:26]}w{week:05d}"
    return copy


async def _timed(work: Any) -> list[float]:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        await work()
        times.append(time.perf_counter() - started)
    return times


async def run(weeks: int) -> None:
    catalog = load_catalog(ROOT / "config")
    with tempfile.TemporaryDirectory() as folder:
        database = Database(f"sqlite+aiosqlite:///{Path(folder) / 'year.sqlite3'}")
        try:
            await migrate(database)
            today = datetime.now(UTC).date()
            days = [today - timedelta(days=n) for n in range(WEEK, 0, -1)]
            started = time.perf_counter()
            visits = (await fill_history(database, catalog, [BRANCH], days))[BRANCH]
            events = await catch_up(database, catalog, BRANCH)
            took = time.perf_counter() - started
            print(f"simulated week: {visits} visits, {events} events in {took:.0f} s")
            written, took = await _copy_weeks(database, weeks)
            print(f"bulk load: {written} more visits in {took:.1f} s ({written / took:.0f}/s)")
            async with database.read() as conn:
                total = (await conn.execute(select(func.count()).select_from(visit_facts))).scalar()
            print(f"the year holds {total} visits")
            zones = {BRANCH: "Asia/Tbilisi"}
            one = (BRANCH,)  # a branch's report, as GET /api/v1/branches/{branch}/reports reads
            slices = {
                "week": Slice(today - timedelta(days=6), today, branches=one),
                "month": Slice(today - timedelta(days=29), today, branches=one),
                "year": Slice(today - timedelta(days=364), today, branches=one),
                "year, one service": Slice(
                    today - timedelta(days=364), today, branches=one, services=("id_card",)
                ),
                "year, kiosk+priority": Slice(
                    today - timedelta(days=364),
                    today,
                    channels=("kiosk",),
                    priorities=("priority",),
                ),
                "year, whole network (no branch)": Slice(today - timedelta(days=364), today),
                "month, one counter (facts)": Slice(
                    today - timedelta(days=29), today, branches=one, counters=("b01",)
                ),
            }
            for name, where in slices.items():

                async def report(where: Slice = where) -> None:
                    async with database.read() as conn:
                        await read_report(conn, where, zones)
                        first, last = kpis.previous_period(where.first, where.last)
                        await read_report(
                            conn, Slice(**(vars(where) | {"first": first, "last": last})),
                            zones, detail=False,
                        )  # fmt: skip

                times = await _timed(report)
                print(
                    f"{name:>28}: median {percentile(times, 0.5) * 1000:.0f} ms, "
                    f"p95 {percentile(times, 0.95) * 1000:.0f} ms",
                    flush=True,
                )

            async def from_facts() -> None:
                async with database.read() as conn:
                    rows = await conn.execute(
                        select(visit_facts).where(visit_facts.c.local_date >= slices["year"].first)
                    )
                    kpis.figures(kpis.sums_of(visit_of(row) for row in rows))

            times = await _timed(from_facts)
            print(
                f"{'year, straight from facts':>28}: median {percentile(times, 0.5) * 1000:.0f} ms"
            )
        finally:
            await database.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weeks", type=int, default=52)
    asyncio.run(run(parser.parse_args().weeks))
