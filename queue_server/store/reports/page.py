"""What one reports page reads: the slice in detail and the previous period's totals, on one
connection, every statement planned for the values it is sent with.

PostgreSQL plans a prepared statement for its values five times, then tries a generic plan,
one made without them, and keeps it when its estimated cost is no worse; asyncpg prepares
every statement and keeps it per connection. A report's values decide its best plan (one
branch or 211, a day or a year), and the generic one measured 4–5× slower on a region's week
(the same statement 7 ms on a custom plan, 25–43 ms from its sixth run on: docs/benchmarks.md).
So a page's reads are planned for their own values (`plan_cache_mode = force_custom_plan`,
1 ms of planning against tens of ms of reading).

A report read from disk fetches its table pages in the order a bitmap scan finds them, one at
a time by default (`effective_io_concurrency` 1): on this machine's disk ~0.3–1 ms a page, and
a year's first read took up to 6 s. With 64 asked for ahead, the whole country year read from
an empty cache answered 67 of its 70 reports within 0.5 s, against 47 (docs/benchmarks.md);
PostgreSQL 18 makes 16 its default.

A long period's statement can cost more than `jit_above_cost`, and PostgreSQL then compiles
its expressions to machine code before it runs: 10–15 ms spent again at every read (a page's
plans are not kept), in a statement that runs for tens of ms (seen with auto_explain on the
country year's 340 days and year: two of eight pages had one). Off for a page's reads.

The settings are put back afterwards: the same pooled connections serve the boards' small
reads many times a second, where a kept plan saves the planning."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import date

from sqlalchemy.ext.asyncio import AsyncConnection

from queue_server.domain import kpis
from queue_server.store.database import Database
from queue_server.store.reports.periods import Slice
from queue_server.store.reports.queries import read_report
from queue_server.store.reports.report import Report


@dataclass(frozen=True)
class Page:
    """A slice's report, and the totals of the period before it, of the same length."""

    report: Report
    previous: Report
    previous_period: tuple[date, date]


async def read_page(database: Database, where: Slice, timezones: dict[str, str]) -> Page:
    """The reads of one reports page. `timezones`: branch → its zone."""
    first, last = kpis.previous_period(where.first, where.last)
    async with database.read() as conn, _for_reports(conn):
        report = await read_report(conn, where, timezones)
        before = replace(where, first=first, last=last)
        previous = await read_report(conn, before, timezones, detail=False)
    return Page(report, previous, (first, last))


@asynccontextmanager
async def _for_reports(conn: AsyncConnection) -> AsyncIterator[None]:
    if conn.dialect.name != "postgresql":  # SQLite plans every statement when it is prepared
        yield
        return
    await conn.exec_driver_sql(SETTINGS_ON)
    try:
        yield
    finally:
        await conn.exec_driver_sql(SETTINGS_OFF)


# One round trip each way: both settings by one statement, put back to the connection's own.
_SETTINGS = {"plan_cache_mode": "force_custom_plan", "effective_io_concurrency": "64", "jit": "off"}
SETTINGS_ON = "SELECT " + ", ".join(
    f"set_config('{k}', '{v}', false)" for k, v in _SETTINGS.items()
)
SETTINGS_OFF = (
    "SELECT set_config(name, reset_val, false) FROM pg_settings WHERE name IN ("
    + ", ".join(f"'{name}'" for name in _SETTINGS)
    + ")"
)
