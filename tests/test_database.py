"""Database.transaction: one write transaction, a plain function of a Connection, committed or
rolled back whole, that publishes the events it appended after its commit. On a SQLite file it
runs in the writer thread on a synchronous connection (one thread crossing instead of several
per statement); on PostgreSQL through `run_sync` on the pool's connection. On real databases."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

from queue_server.errors import Conflict
from queue_server.store.database import Database
from queue_server.store.events import Event, append_event
from queue_server.store.migrate import migrate

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

    def body(conn: Any) -> int:
        threads.append(threading.current_thread().name)
        conn.execute(insert(notes).values(text="first"))
        conn.execute(insert(notes).values(text="second"))
        return len(conn.execute(select(notes.c.id)).all())

    assert await database.transaction(body) == 2
    assert await stored(database) == ["first", "second"]
    on_thread = "sqlite-writer" if database.is_sqlite else threading.main_thread().name
    assert threads[0].startswith(on_thread)


async def test_an_error_in_the_body_rolls_everything_back_and_reaches_the_caller(
    database: Database,
) -> None:
    def body(conn: Any) -> None:
        conn.execute(insert(notes).values(text="half done"))
        raise Conflict("The counter is busy.", code="counter_busy")

    with pytest.raises(Conflict) as raised:
        await database.transaction(body)
    assert raised.value.code == "counter_busy"
    assert await stored(database) == []


async def test_a_body_that_would_wait_is_refused_and_writes_nothing(
    database: Database,
) -> None:
    """A body runs the same way on both backends, so it cannot wait on anything: an async body
    is refused before it runs, and one that hands back an awaitable is rolled back."""

    async def waiting_body(conn: Any) -> None:
        await asyncio.sleep(0)

    def body_returning_a_coroutine(conn: Any) -> Any:
        conn.execute(insert(notes).values(text="never"))
        return asyncio.sleep(0)  # the case under test: a body that hands back a coroutine

    with pytest.raises(TypeError, match="plain function"):
        await database.transaction(waiting_body)  # type: ignore[unused-coroutine]  # refused
    with pytest.raises(TypeError, match="plain function"):
        await database.transaction(body_returning_a_coroutine)  # type: ignore[unused-coroutine]
    assert await stored(database) == []


async def test_writes_keep_their_order_across_both_kinds_of_transaction(
    database: Database,
) -> None:
    """`write()` (aiosqlite) and `transaction()` (the writer thread) share the write lock."""

    async def through_transaction(text: str) -> None:
        def body(conn: Any) -> None:
            conn.execute(insert(notes).values(text=text))

        await database.transaction(body)

    async def through_write(text: str) -> None:
        async with database.write() as conn:
            await conn.execute(insert(notes).values(text=text))

    await asyncio.gather(
        *((through_transaction if n % 2 else through_write)(f"note {n}") for n in range(20))
    )
    assert sorted(await stored(database)) == sorted(f"note {n}" for n in range(20))


@pytest.fixture
async def migrated(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await migrate(db)
    yield db
    await db.dispose()


async def test_a_committed_transaction_publishes_its_events_once_after_the_commit(
    migrated: Database,
) -> None:
    heard: list[tuple[list[int], list[str]]] = []

    async def listener(events: Sequence[Event]) -> None:
        # Published after the commit: another connection already sees the rows.
        heard.append(([e.seq for e in events], await stored_kinds(migrated)))

    migrated.listeners.append(listener)
    now = datetime.now(UTC)

    def body(conn: Any) -> str:
        append_event(conn, "unit-branch", "unit.first", now, {})
        append_event(conn, "unit-branch", "unit.second", now, {})
        return "done"

    assert await migrated.transaction(body) == "done"
    assert len(heard) == 1
    seqs, kinds_then = heard[0]
    assert seqs[1] == seqs[0] + 1
    assert kinds_then[-2:] == ["unit.first", "unit.second"]


async def test_a_transaction_that_raises_publishes_nothing(migrated: Database) -> None:
    heard: list[Sequence[Event]] = []

    async def listener(events: Sequence[Event]) -> None:
        heard.append(events)

    migrated.listeners.append(listener)
    before = await stored_kinds(migrated)

    def body(conn: Any) -> None:
        append_event(conn, "unit-branch", "unit.never", datetime.now(UTC), {})
        raise Conflict("The counter is busy.", code="counter_busy")

    with pytest.raises(Conflict):
        await migrated.transaction(body)
    assert heard == []
    assert await stored_kinds(migrated) == before


async def stored_kinds(db: Database) -> list[str]:
    from queue_server.store.schema import events

    async with db.read() as conn:
        rows = await conn.execute(
            select(events.c.kind).where(events.c.branch_id == "unit-branch").order_by(events.c.seq)
        )
        return list(rows.scalars())
