"""Database.transaction: one write transaction, committed or rolled back whole. On a SQLite
file it runs in the writer thread on a synchronous connection (one thread crossing instead of
several per statement); on PostgreSQL on the pool's connection. Both on real databases."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

from queue_server.errors import Conflict
from queue_server.store.database import Database

metadata = MetaData()
notes = Table(
    "transaction_notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("text", String(40), nullable=False),
)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    async with db.write() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
    yield db
    await db.dispose()


async def stored(db: Database) -> list[str]:
    async with db.read() as conn:
        return list((await conn.execute(select(notes.c.text).order_by(notes.c.id))).scalars())


async def test_a_transaction_commits_what_its_body_wrote_and_returns_its_result(
    database: Database,
) -> None:
    threads: list[str] = []

    async def body(conn: Any) -> int:
        threads.append(threading.current_thread().name)
        await conn.execute(insert(notes).values(text="first"))
        await conn.execute(insert(notes).values(text="second"))
        return len((await conn.execute(select(notes.c.id))).all())

    assert await database.transaction(body) == 2
    assert await stored(database) == ["first", "second"]
    on_thread = "sqlite-writer" if database.is_sqlite else threading.main_thread().name
    assert threads[0].startswith(on_thread)


async def test_an_error_in_the_body_rolls_everything_back_and_reaches_the_caller(
    database: Database,
) -> None:
    async def body(conn: Any) -> None:
        await conn.execute(insert(notes).values(text="half done"))
        raise Conflict("The counter is busy.", code="counter_busy")

    with pytest.raises(Conflict) as raised:
        await database.transaction(body)
    assert raised.value.code == "counter_busy"
    assert await stored(database) == []


async def test_a_body_that_waits_on_something_else_is_refused_on_sqlite(
    database: Database,
) -> None:
    async def body(conn: Any) -> None:
        await conn.execute(insert(notes).values(text="never"))
        await asyncio.sleep(0)  # not the connection: in the writer thread there is no loop

    if database.is_sqlite:
        with pytest.raises(RuntimeError, match="awaited something besides its connection"):
            await database.transaction(body)
        assert await stored(database) == []
    else:
        await database.transaction(body)  # an ordinary coroutine on PostgreSQL
        assert await stored(database) == ["never"]


async def test_writes_keep_their_order_across_both_kinds_of_transaction(
    database: Database,
) -> None:
    """`write()` (aiosqlite) and `transaction()` (the writer thread) share the write lock."""

    async def through_transaction(text: str) -> None:
        async def body(conn: Any) -> None:
            await conn.execute(insert(notes).values(text=text))

        await database.transaction(body)

    async def through_write(text: str) -> None:
        async with database.write() as conn:
            await conn.execute(insert(notes).values(text=text))

    await asyncio.gather(
        *((through_transaction if n % 2 else through_write)(f"note {n}") for n in range(20))
    )
    assert sorted(await stored(database)) == sorted(f"note {n}" for n in range(20))
