"""What the reports projector costs per event: a fixed event log made again from scratch.

`python -m benchmarks.projector_cost_bench prepare` fills RIGI_BENCH_DATABASE_URL (migrated to
head) with two Community Centres' simulated fortnight (`demo-history`'s simulator: ~15,000
events); `python -m benchmarks.projector_cost_bench measure [--batch N]` forgets their report
rows and applies the whole log again, N events a transaction (50 by default: about what a live
server's projector gathers in its one-second wait; a rebuild takes 2,000), and prints the wall
and this process's CPU per event. To compare two trees, prepare once and run `measure` from
each tree in turn, alternating (a shared machine drifts).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import time
from datetime import date, timedelta

from benchmarks._support import POSTGRES_URL, ROOT
from queue_server.catalog.loader import load_catalog
from queue_server.store.database import Database
from queue_server.store.migrate import migrate
from queue_server.store.reports.projector import reset_branch
from queue_server.store.reports.runner import catch_up

BRANCHES = ("cc01-shashiani", "cc02-sartichala")
FIRST_DAY = date(2026, 2, 2)
DAYS = 14
BATCH = 50


async def prepare(url: str) -> dict[str, int]:
    from queue_server.reporting.history import fill_history

    database = Database(url)
    try:
        await migrate(database)
        catalog = load_catalog(ROOT / "config")
        days = [FIRST_DAY + timedelta(days=n) for n in range(DAYS)]
        return await fill_history(database, catalog, BRANCHES, days)
    finally:
        await database.dispose()


async def measure(url: str, batch: int) -> tuple[int, float, float]:
    """Events applied, wall seconds and CPU seconds of this process."""
    database = Database(url)
    try:
        catalog = load_catalog(ROOT / "config")
        for branch in BRANCHES:
            await database.transaction(functools.partial(reset_branch, branch_id=branch))
        cpu, wall = time.process_time(), time.perf_counter()
        events = 0
        for branch in BRANCHES:
            events += await catch_up(database, catalog, branch, limit=batch)
        return events, time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=("prepare", "measure"))
    parser.add_argument("--batch", type=int, default=BATCH)
    arguments = parser.parse_args()
    if arguments.step == "prepare":
        print(asyncio.run(prepare(POSTGRES_URL)))
        return
    events, wall, cpu = asyncio.run(measure(POSTGRES_URL, arguments.batch))
    print(
        f"{events} events in batches of {arguments.batch}: wall {wall / events * 1e6:.0f} µs, "
        f"client CPU {cpu / events * 1e6:.0f} µs an event"
    )


if __name__ == "__main__":
    main()
