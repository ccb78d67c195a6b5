"""PostgreSQL connections: a process holds no more than its budget (RIGI_DATABASE_CONNECTIONS)
however many requests wait, and a pooled connection that died while idle is replaced before
use instead of failing the request. On the machine's PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import Connection, insert, select, text

from queue_server.store import database as database_module
from queue_server.store.database import Database
from queue_server.store.migrate import migrate
from queue_server.store.reports.runner import lock_free_cursors
from queue_server.store.schema_reports import report_cursors
from tests.support import POSTGRES_ENV, need_service, reset_postgres

BUDGET = 4
CLIENTS = 24  # many more requests at once than the budget
HOLD_S = 0.05  # each holds its connection this long, so they overlap
LOCK_WAIT_S = 5.0  # far under the statement timeout (10 s) that waiting would run into


@pytest.fixture
def postgres_url() -> str:
    url = need_service(POSTGRES_ENV, "PostgreSQL")
    reset_postgres(url)
    return url


@pytest.fixture
async def postgres(postgres_url: str) -> AsyncIterator[Database]:
    database = Database(postgres_url, connections=BUDGET)
    yield database
    await database.dispose()


async def _others(database: Database) -> tuple[int, list[int]]:
    """This connection's backend, and every other client backend on the test's database (the
    test's own database: they are this process's pools)."""
    async with database.read() as conn:
        mine = (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
        found = await conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return int(mine), [int(pid) for pid in found.scalars()]


async def test_many_requests_at_once_share_the_budget_and_all_complete(
    postgres: Database,
) -> None:
    async with postgres.read() as conn:
        me = (await conn.exec_driver_sql("SELECT current_database()")).scalar_one()
    peak = 0

    async def count() -> int:
        async with postgres.read() as conn:
            found = await conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = :db "
                    "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                ),
                {"db": me},
            )
            return int(found.scalar_one()) + 1  # and the one counting

    async def write(n: int) -> int:
        nonlocal peak

        def body(conn: Connection) -> int:
            conn.exec_driver_sql(f"SELECT pg_sleep({HOLD_S})")
            return n

        done = await postgres.transaction(body)
        peak = max(peak, await count())
        return done

    async def read(n: int) -> int:
        async with postgres.read() as conn:
            await conn.exec_driver_sql(f"SELECT pg_sleep({HOLD_S})")
        return n

    work = [write(n) if n % 2 else read(n) for n in range(CLIENTS)]
    assert sorted(await asyncio.gather(*work)) == list(range(CLIENTS))
    assert 1 < peak <= BUDGET
    _, others = await _others(postgres)
    assert len(others) + 1 <= BUDGET


async def test_a_connection_killed_while_idle_is_replaced_before_a_write_or_a_read(
    postgres: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "PING_IDLE_S", 0.0)  # every checkout counts as idle
    await postgres.transaction(lambda conn: conn.exec_driver_sql("SELECT 1"))
    async with postgres.read() as conn:
        await conn.exec_driver_sql("SELECT 1")
    outsider = await asyncpg.connect(postgres.url.replace("postgresql+asyncpg", "postgresql"))
    try:  # as a PostgreSQL restart would: every pooled connection dies while idle
        killed = await outsider.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
            "current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
    finally:
        await outsider.close()
    assert len(killed) == 2  # the write pool's connection and the read pool's
    result = await postgres.transaction(lambda conn: conn.exec_driver_sql("SELECT 2").scalar())
    assert result == 2
    async with postgres.read() as conn:
        assert (await conn.exec_driver_sql("SELECT 3")).scalar() == 3


async def test_the_projector_skips_a_branch_another_process_holds_instead_of_waiting(
    postgres: Database,
) -> None:
    await migrate(postgres)
    async with postgres.engine.connect() as other:  # another process, projecting tbilisi
        async with other.begin():
            await other.execute(
                insert(report_cursors).values(
                    branch_id="tbilisi", epoch="", seq=0, updated_at=datetime.now(UTC)
                )
            )
        await other.begin()
        await other.execute(
            select(report_cursors).where(report_cursors.c.branch_id == "tbilisi").with_for_update()
        )
        locked = await asyncio.wait_for(
            postgres.transaction(
                lambda conn: lock_free_cursors(conn, ["rustavi", "tbilisi", "zugdidi"])
            ),
            LOCK_WAIT_S,
        )
        await other.rollback()
    assert locked == ["rustavi", "zugdidi"]


async def test_the_budget_check_counts_the_helpers_connections_beside_the_process(
    postgres: Database,
) -> None:
    async with postgres.read() as conn:
        allowed = int((await conn.exec_driver_sql("SHOW max_connections")).scalar_one())
    assert await postgres.check_budget() == allowed // BUDGET
    assert await postgres.check_budget(beside=3) == allowed // (BUDGET + 3)
