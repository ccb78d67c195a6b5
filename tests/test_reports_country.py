"""The country-year generator (store/reports/country.py) makes its facts and rollups in SQL; the
reports can only be trusted over them if they are what the projector makes from the same
events. A few branch-days are generated, kept, then made again by the projector from the
generated event log alone, and every row must be the same."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from queue_server.catalog.loader import load_catalog
from queue_server.store.database import Database
from queue_server.store.migrate import migrate
from queue_server.store.reports.country import load_year, plan_rows
from queue_server.store.reports.runner import catch_up
from queue_server.store.schema import events
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
    counter_clocks,
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
    report_cursors,
    service_days,
    service_months,
    service_weeks,
    visit_days,
    visit_facts,
    visit_months,
    visit_rollups,
)
from tests.databases import database_for

pytestmark = pytest.mark.postgres

CONFIG = Path(__file__).resolve().parent.parent / "config"
BRANCHES = ["tbilisi", "cc01-shashiani"]
FRIDAY, SATURDAY = date(2026, 3, 6), date(2026, 3, 7)  # a Community Centre is shut on Saturday
HISTOGRAMS = ("wait_hist", "service_hist")


@pytest.fixture
def url(tmp_path: Path) -> str:
    return database_for("postgres", tmp_path)  # emptied


@pytest.fixture
async def database(url: str) -> Any:
    database = Database(url, connections=4)
    await migrate(database)
    try:
        yield database
    finally:
        await database.dispose()


async def _rows(database: Database, table: Any) -> dict[tuple[Any, ...], dict[str, Any]]:
    """A table's rows by primary key, each histogram read as numbers (and kept as text)."""
    keys = [c.name for c in table.primary_key]
    async with database.read() as conn:
        rows = [dict(row._mapping) for row in await conn.execute(select(table))]
    for row in rows:
        for name in HISTOGRAMS:
            if name in row:
                row[f"{name}_parsed"] = json.loads(row[name])
    return {tuple(row[k] for k in keys): row for row in rows}


async def test_generated_facts_and_rollups_are_what_the_projector_makes_of_their_events(
    database: Database,
) -> None:
    catalog = load_catalog(CONFIG)
    cells, hours = plan_rows(catalog, CONFIG, visits_a_day=700, branches=BRANCHES)
    loaded = await database.transaction(
        lambda conn: load_year(conn, cells, hours, FRIDAY, SATURDAY, cursors=False)
    )
    assert loaded.visits > 600
    assert loaded.events > 3 * loaded.visits
    tables: tuple[Any, ...] = (visit_facts, visit_rollups, visit_days, branch_days, network_days)
    tables += (visit_months, branch_months, network_months, network_hours, network_hour_months)
    tables += (agency_days, agency_months, branch_hours, branch_hour_months)
    tables += (service_days, service_months, class_days, class_months)
    tables += (network_weeks, branch_weeks, agency_weeks, service_weeks, class_weeks)
    tables += (country_hours, country_hour_months)
    generated = {table.name: await _rows(database, table) for table in tables}
    facts = generated["visit_facts"].values()
    assert {f["outcome"] for f in facts} == {
        "served", "not_served", "referred", "no_show", "cancelled", "transferred",
    }  # fmt: skip
    assert {f["channel"] for f in facts} == {"kiosk", "phone", "appointment", "transfer"}
    assert any(f["recalls"] for f in facts)
    centre_days = {f["local_date"] for f in facts if f["branch_id"] == "cc01-shashiani"}
    assert centre_days == {FRIDAY}
    async with database.write() as conn:
        counters = (counter_time, counter_days, counter_months, counter_weeks, counter_clocks)
        for table in (*tables, *counters, report_cursors):
            await conn.execute(delete(table))
    for branch in BRANCHES:
        applied = await catch_up(database, catalog, branch)
        async with database.read() as conn:
            logged = await conn.scalar(
                select(func.count()).select_from(events).where(events.c.branch_id == branch)
            )
        assert applied == logged
    for table in tables:
        projected = await _rows(database, table)
        assert projected.keys() == generated[table.name].keys(), table.name
        for key, row in projected.items():
            assert row == generated[table.name][key], (table.name, key)
