"""Where a country report's time goes: each statement's time, rows and plan, and the Python time.

`python -m benchmarks.country_report_profile` over a country already loaded by
`benchmarks.country_year_bench` (RIGI_BENCH_DATABASE_URL; read only: it only reads and
EXPLAINs). For each report of RIGI_BENCH_PROFILE (`period:slice;…`, the bench's names; by
default the country's and the channel + priority class slice's 30 and 340 days) it reads the
page once to warm the caches, then REPEATS times with every statement timed (from sending it to
its rows fetched, by SQLAlchemy's cursor events) and labelled by the function of `queries` that
sent it; the report's wall and CPU time, the statements' share of it; then one read under
cProfile (the Python functions with the most own time); then `EXPLAIN (ANALYZE, BUFFERS)` of
each statement: the server's execution time and the pages it touched.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from benchmarks._support import POSTGRES_URL
from benchmarks.country_year_bench import _collect_as_served, _report, _slices, period_of
from benchmarks.national_view_bench import network_config
from queue_server.catalog.loader import load_catalog
from queue_server.store.database import Database
from queue_server.store.reports import page

REPEATS = int(os.environ.get("RIGI_BENCH_PROFILE_REPEATS", "3"))
DEFAULT = "30 days:country;30 days:channel + priority;340 days:country;340 days:channel + priority"
CHOSEN = os.environ.get("RIGI_BENCH_PROFILE", DEFAULT)
TOP_FUNCTIONS = 16
# Set to 0: the garbage collector left as Python sets it (the bench keeps it as the server does).
AS_SERVED = os.environ.get("RIGI_BENCH_PROFILE_GC_AS_SERVED", "1") != "0"
SORT = os.environ.get("RIGI_BENCH_PROFILE_SORT", "tottime")  # or cumulative: pstats' orders
PLAN_FROM_MS = 20.0
# Set to 0: only each report's times (wall, CPU, statements), no plans nor profile.
DETAIL = (
    os.environ.get("RIGI_BENCH_PROFILE_DETAIL", "1") != "0"
)  # a statement's plan is shown from this much server time
QUERIES = "queue_server/store/reports/"


@dataclass
class Statement:
    label: str
    sql: str
    parameters: Any
    seconds: list[float] = field(default_factory=list)
    rows: int = 0


class Recorder:
    """Times each statement from its cursor's execute to its rows fetched (asyncpg fetches them
    all within execute), labelled by the caller in `store/reports` that awaited it."""

    def __init__(self) -> None:
        self.label = "?"
        self.on = False
        self.statements: dict[tuple[str, str], Statement] = {}
        self.order: list[tuple[str, str]] = []
        self._began = 0.0

    def before(self, conn: Any, cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        self._began = time.perf_counter()

    def after(self, conn: Any, cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        if not self.on or sql in (page.SETTINGS_ON, page.SETTINGS_OFF):  # not a report's
            return
        seconds = time.perf_counter() - self._began
        key = (self.label, sql)
        found = self.statements.get(key)
        if found is None:
            found = self.statements[key] = Statement(self.label, sql, parameters)
            self.order.append(key)
        found.seconds.append(seconds)
        found.rows = cursor.rowcount if cursor.rowcount >= 0 else len(cursor._rows)


RECORDER = Recorder()
_execute = AsyncConnection.execute


class Collections:
    """The garbage collector's passes during the reads: how many of the oldest generation, and
    their CPU time (a full pass walks every object the process holds)."""

    def __init__(self) -> None:
        self.full = 0
        self.seconds = 0.0
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.process_time()
        else:
            self.seconds += time.process_time() - self._began
            self.full += info["generation"] == 2


COLLECTIONS = Collections()


async def _labelled_execute(self: AsyncConnection, *args: Any, **kwargs: Any) -> Any:
    """AsyncConnection.execute, noting which report function sent the statement."""
    frame = sys._getframe(1)
    names: list[str] = []
    while frame is not None and len(names) < 2:
        if QUERIES in frame.f_code.co_filename:
            names.append(frame.f_code.co_name)
        frame = frame.f_back  # type: ignore[assignment]
    RECORDER.label = " < ".join(names) or "?"
    return await _execute(self, *args, **kwargs)


async def _explain(database: Database, statement: Statement) -> str:
    async with database.read() as conn:
        rows = await conn.exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement.sql, statement.parameters
        )
        found = rows.scalar_one()
        plan = (json.loads(found) if isinstance(found, str) else found)[0]
    top = plan["Plan"]
    hit = top.get("Shared Hit Blocks", 0)
    read = top.get("Shared Read Blocks", 0)
    nodes = "\n".join(_nodes(top, 2)) if plan["Execution Time"] >= PLAN_FROM_MS else ""
    return (
        f"server {plan['Execution Time']:6.1f} ms (plan {plan['Planning Time']:.1f}), "
        f"{hit + read:6d} pages ({read} read){nodes and chr(10) + nodes}"
    )


def _nodes(node: dict[str, Any], depth: int) -> list[str]:
    """A plan's nodes, one a line: what it does, on what, its time and rows."""
    on = node.get("Index Name") or node.get("Relation Name") or ""
    line = (
        f"{'  ' * depth}{node['Node Type']} {on} {node.get('Actual Total Time', 0):.1f} ms, "
        f"{node.get('Actual Rows', 0)} rows × {node.get('Actual Loops', 1)}"
        f"{' heap fetches ' + str(node['Heap Fetches']) if 'Heap Fetches' in node else ''}"
    )
    return [line] + [n for child in node.get("Plans", []) for n in _nodes(child, depth + 1)]


async def profile(database: Database, period: str, name: str, zones: dict[str, str]) -> None:
    where = _slices(CATALOG, *period_of(period))[name]
    await _report(database, where, zones)  # warm
    RECORDER.statements.clear()
    RECORDER.order.clear()
    walls, cpus = [], []
    RECORDER.on = True
    COLLECTIONS.full, COLLECTIONS.seconds = 0, 0.0
    gc.callbacks.append(COLLECTIONS)
    for _ in range(REPEATS):
        began, cpu = time.perf_counter(), time.process_time()
        await _report(database, where, zones)
        walls.append(time.perf_counter() - began)
        cpus.append(time.process_time() - cpu)
    RECORDER.on = False
    gc.callbacks.remove(COLLECTIONS)
    load = f"{os.getloadavg()[0]:.2f}"
    in_sql = sum(sum(s.seconds) for s in RECORDER.statements.values()) / REPEATS
    print(f"\n=== {period}, {name}: wall {', '.join(f'{w * 1000:.0f}' for w in walls)} ms; "
          f"CPU of this process {', '.join(f'{c * 1000:.0f}' for c in cpus)} ms; "
          f"statements {in_sql * 1000:.0f} ms a read; garbage collection "
          f"{COLLECTIONS.seconds * 1000:.0f} ms CPU in all, {COLLECTIONS.full} full "
          f"(load {load})")  # fmt: skip
    if not DETAIL:
        return
    for key in RECORDER.order:
        statement = RECORDER.statements[key]
        seconds = sorted(statement.seconds)
        print(f"  {statement.label[:48]:48} {len(statement.seconds) // REPEATS}× "
              f"median {seconds[len(seconds) // 2] * 1000:7.1f} ms, {statement.rows:6d} rows; "
              f"{await _explain(database, statement)}")  # fmt: skip
    profiler = cProfile.Profile(time.process_time)  # CPU: the machine is shared
    profiler.enable()
    await _report(database, where, zones)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(SORT).print_stats(TOP_FUNCTIONS)
    print("\n".join(line for line in out.getvalue().splitlines()[:40] if line.strip()))


async def run(url: str = POSTGRES_URL) -> None:
    database = Database(url, connections=2)
    AsyncConnection.execute = _labelled_execute  # type: ignore[method-assign]
    for engine in database.engines:
        event.listen(engine.sync_engine, "before_cursor_execute", RECORDER.before)
        event.listen(engine.sync_engine, "after_cursor_execute", RECORDER.after)
    zones = {b.id: b.timezone for b in CATALOG.branches.values()}
    if AS_SERVED:
        _collect_as_served()
    try:
        for chosen in CHOSEN.split(";"):
            period, name = chosen.split(":")
            await profile(database, period, name, zones)
    finally:
        AsyncConnection.execute = _execute  # type: ignore[method-assign]
        await database.dispose()


with tempfile.TemporaryDirectory() as _folder:
    CATALOG = load_catalog(network_config(Path(_folder)))

if __name__ == "__main__":
    asyncio.run(run())
