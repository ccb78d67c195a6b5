"""Each branch's days over all its groups (`branch_days`) are its daily rows added up: after
visits at two branches, after one branch is rebuilt from its event log, and when migration 0019
makes them from the daily rows of a database that had none. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from alembic import command
from sqlalchemy import Connection, select

from queue_server.domain import kpis
from queue_server.store.database import Database
from queue_server.store.migrate import alembic_config, migrate
from queue_server.store.reports.rollups import rollup_row, sums_of_row
from queue_server.store.reports.runner import catch_up, rebuild
from queue_server.store.schema_reports import branch_days, visit_days
from tests.support import LiveServer
from tests.test_network_days import BRANCHES, _visits


def _added_up(conn: Connection) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The daily rows summed per branch and day, as rows (what `branch_days` should hold)."""
    sums: dict[tuple[Any, ...], kpis.Sums] = defaultdict(kpis.Sums)
    for row in conn.execute(select(visit_days)):
        sums[row.branch_id, row.local_date].add(sums_of_row(row))
    return {key: rollup_row(s) for key, s in sums.items()}


def _branch_days(conn: Connection) -> dict[tuple[Any, ...], dict[str, Any]]:
    rows = {}
    for row in conn.execute(select(branch_days)):
        values = dict(row._mapping)
        rows[values.pop("branch_id"), values.pop("local_date")] = values
    return rows


async def _both(database: Database) -> tuple[dict[Any, Any], dict[Any, Any]]:
    return await database.reading(lambda conn: (_added_up(conn), _branch_days(conn)))


def test_a_branch_days_rows_add_up_its_groups_and_survive_a_rebuild(
    live_server: LiveServer,
) -> None:
    rigi = live_server.rigi
    live_server.run(_visits(live_server))
    for branch in BRANCHES:
        live_server.run(catch_up(rigi.database, rigi.catalog, branch))
    expected, days = live_server.run(_both(rigi.database))
    assert days == expected
    assert {key[0]: row["visits"] for key, row in days.items()} == dict.fromkeys(BRANCHES, 3)
    live_server.run(rebuild(rigi.database, rigi.catalog, [BRANCHES[1]]))
    expected_again, days_again = live_server.run(_both(rigi.database))
    assert days_again == expected_again == expected


def test_migration_0019_makes_each_branch_day_from_its_daily_rows(database_url: str) -> None:
    """A database at 0018 with one branch's daily rows of two services on one day."""

    async def run() -> None:
        database = Database(database_url)
        try:
            config = alembic_config(database_url)

            def upgrade(connection: Connection) -> None:
                config.attributes["connection"] = connection
                command.upgrade(config, "0018")

            async with database.engine.begin() as conn:
                await conn.run_sync(upgrade)
            day = date(2026, 3, 2)
            rows = []
            for service, waits in (("stamp", [60.0, 700.0]), ("apostille", [30.0])):
                sums = kpis.Sums()
                for wait in waits:
                    sums.add_visit(
                        kpis.Visit(datetime(2026, 3, 2, 9, tzinfo=UTC), kpis.SERVED, wait,
                                   120.0, 0, 600.0, None)
                    )  # fmt: skip
                rows.append(
                    rollup_row(sums)
                    | {"branch_id": "testhall", "service_id": service, "agency_id": "psda",
                       "priority": "normal", "channel": "kiosk", "local_date": day}
                )  # fmt: skip
            async with database.engine.begin() as conn:
                await conn.execute(visit_days.insert(), rows)
            await migrate(database)
            expected, days = await _both(database)
            assert days == expected
            (row,) = days.values()
            assert (row["visits"], row["wait_max_ms"], row["wait_sum_ms"]) == (3, 700_000, 790_000)
            assert row["wait_hist"] == '{"1": 1, "2": 1, "23": 1}'  # 30 s, 60 s, 700 s
        finally:
            await database.dispose()

    asyncio.run(run())
