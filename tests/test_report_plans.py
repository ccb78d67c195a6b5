"""A reports page's statements are planned for their own values on PostgreSQL.

asyncpg prepares every statement and keeps it per connection; from a statement's sixth run
PostgreSQL may switch it to a generic plan, made without its values, which measured 4–5×
slower for a region's week (store/reports/page.py). Seven pages read on the one pooled read
connection must leave no generic plan among its prepared statements, and the connection as it
was for the boards' reads that share it."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from queue_server.catalog.loader import load_catalog
from queue_server.store.database import Database
from queue_server.store.migrate import migrate
from queue_server.store.reports.country import load_year, plan_rows
from queue_server.store.reports.page import read_page
from queue_server.store.reports.periods import Slice
from queue_server.store.reports.queries import read_report
from tests.databases import database_for

pytestmark = pytest.mark.postgres

CONFIG = Path(__file__).resolve().parent.parent / "config"
BRANCHES = ["tbilisi", "cc01-shashiani"]
FIRST, LAST = date(2026, 3, 2), date(2026, 3, 8)
SETTINGS = ("plan_cache_mode", "effective_io_concurrency", "jit")
PAGES = 7  # past the five custom plans after which PostgreSQL weighs a generic one
# The plans of the statements sent with values (one without has one plan, counted as generic:
# the SET and RESET around a page, the driver's own questions on connecting).
PLANS = """SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0)
FROM pg_prepared_statements WHERE cardinality(parameter_types) > 0"""


@pytest.fixture
def url(tmp_path: Path) -> str:
    return database_for("postgres", tmp_path)  # emptied


@pytest.fixture
async def database(url: str) -> Any:
    database = Database(url, connections=3)  # one read connection: every page on the same
    await migrate(database)
    catalog = load_catalog(CONFIG)
    cells, hours = plan_rows(catalog, CONFIG, visits_a_day=700, branches=BRANCHES)
    await database.transaction(lambda conn: load_year(conn, cells, hours, FIRST, LAST))
    try:
        yield database
    finally:
        await database.dispose()


async def _plans(database: Database) -> tuple[int, int]:
    async with database.read() as conn:
        plans: Any = (await conn.exec_driver_sql(PLANS)).one()
    return int(plans[0]), int(plans[1])


async def _settings(database: Database) -> list[str]:
    """The read connection's settings that a page changes while it reads."""
    async with database.read() as conn:
        shown = [await conn.exec_driver_sql(f"SHOW {name}") for name in SETTINGS]
    return [result.scalar_one() for result in shown]


async def test_seven_pages_leave_no_generic_plan_and_the_connection_as_it_was(
    database: Database,
) -> None:
    zones = {branch: "Asia/Tbilisi" for branch in BRANCHES}
    before = await _settings(database)
    for where in (Slice(FIRST, LAST), Slice(FIRST, LAST, branches=("tbilisi",))):
        pages = [await read_page(database, where, zones) for _ in range(PAGES)]
        assert pages[0].report.total.visits > 1000
        assert all(page.report.total == pages[0].report.total for page in pages)
    generic, custom = await _plans(database)
    assert custom >= 2 * PAGES * 10  # every statement of both slices' pages, each time
    assert generic == 0
    assert await _settings(database) == before  # the boards' reads on it: as they were
    assert before[0] == "auto"


async def test_without_it_postgresql_switches_the_reports_to_generic_plans(
    database: Database,
) -> None:
    """The control: the same reads on the connection's own setting do get generic plans, so
    the test above would see them."""
    zones = {branch: "Asia/Tbilisi" for branch in BRANCHES}
    where = Slice(FIRST, LAST, branches=("tbilisi",))
    async with database.read() as conn:
        for _ in range(PAGES):
            await read_report(conn, where, zones)
    generic, _ = await _plans(database)
    assert generic > 0
