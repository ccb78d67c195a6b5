"""What granting priority costs (issue 19): on the demo hall (Tbilisi: 59 services, 33 counters)
with a long line waiting, the store's `mark_priority` one ticket after another, against the
`cancel_ticket` of the same line (the cheapest other one-ticket step with an event). Not a hot
path (a member of staff grants it by hand); measured so a slow grant would show.
`python -m benchmarks.priority_bench` (SQLite file, one process)."""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks._support import ROOT, percentile
from queue_server.catalog.loader import load_catalog
from queue_server.store.database import Database
from queue_server.store.migrate import migrate
from queue_server.store.queue import QueueStore

HALL = "tbilisi"
WAITING = 1_000  # tickets in the line when the grants start
GRANTS = 200


async def _line(store: QueueStore, count: int) -> list[str]:
    catalog = store.catalog
    services = sorted(
        {s for c in catalog.branch(HALL).counters for s in catalog.profile(HALL, c.id)}
    )
    ids = []
    for service in itertools.islice(itertools.cycle(services), count):
        change = await store.issue_ticket(HALL, service, actor="kiosk:bench")
        ids.append(change.result["id"])
    return ids


async def _timed(steps: list[str], step: Callable[[str], Awaitable[Any]]) -> list[float]:
    times = []
    for ticket_id in steps:
        started = time.perf_counter()
        await step(ticket_id)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        database = Database(f"sqlite+aiosqlite:///{Path(folder) / 'rigi.sqlite3'}")
        await migrate(database)
        store = QueueStore(database, load_catalog(ROOT / "config"))
        try:
            line = await _line(store, WAITING + 2 * GRANTS)
            granted = await _timed(
                line[:GRANTS],
                lambda t: store.mark_priority(HALL, t, actor="operator:bench"),
            )
            cancelled = await _timed(
                line[GRANTS : 2 * GRANTS], lambda t: store.cancel_ticket(t, "operator:bench")
            )
        finally:
            await database.dispose()
    for name, times in (("grant priority", granted), ("cancel (baseline)", cancelled)):
        print(
            f"{name}, {WAITING:,}+ waiting: p50 {percentile(times, 0.5):.2f} ms, "
            f"p99 {percentile(times, 0.99):.2f} ms ({len(times)} steps)"
        )


if __name__ == "__main__":
    asyncio.run(main())
