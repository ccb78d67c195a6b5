"""The engine and how transactions are taken on each backend.

SQLite allows one writer at a time: many pooled writers contend on its lock (p99 near a
second), so writes go through one asyncio lock per process. PostgreSQL takes row locks
instead, so writes run concurrently across processes.

Through aiosqlite every SQLite statement crosses to its thread and back (three or four thread
handoffs); a counter action runs nine statements and the commit. `Database.transaction` runs a
whole write transaction in one writer thread on a synchronous connection instead: measured,
3.5 ms for such a transaction through aiosqlite, 0.6 ms in one crossing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000
POSTGRES_POOL_SIZE = 10
POSTGRES_COMMAND_TIMEOUT_S = 10


class Database:
    """One engine plus the rule for taking a write transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        self.engine: AsyncEngine = _create_engine(url, self.is_sqlite)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._writer: ThreadPoolExecutor | None = None
        self._sync_engine: Engine | None = None
        if self.is_sqlite and make_url(url).database not in (None, "", ":memory:"):
            self._sync_engine = _create_sync_sqlite_engine(url)
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")

    async def transaction(self, body: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run `body` as one write transaction: committed when it returns, rolled back when it
        raises (its error reaches the caller). On a SQLite file the whole body runs in the
        writer thread, so it may await nothing but its connection's `execute`, and must not
        touch state that the event loop's thread reads meanwhile."""
        if self._writer is None:
            async with self.write() as conn:
                return await body(conn)
        assert self._write_lock is not None
        async with self._write_lock:
            done = asyncio.get_running_loop().run_in_executor(
                self._writer, self._run_in_writer, body
            )
            try:
                return await asyncio.shield(done)
            except asyncio.CancelledError:
                # The thread cannot be stopped: the next writer waits until it has finished.
                await asyncio.wait([done])
                raise

    def _run_in_writer(self, body: Callable[[Any], Awaitable[T]]) -> T:
        assert self._sync_engine is not None
        with self._sync_engine.begin() as conn:
            return _run_to_end(body(_InThread(conn)))

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits on success and rolls back on any error."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncConnection]:
        """A read that sees one consistent state across several queries: a board and the
        event sequence number it matches."""
        if self._write_lock is not None:
            async with self._write_lock, self.engine.connect() as conn:
                yield conn
            return
        async with self.engine.connect() as conn:
            await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def dispose(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
        if self._sync_engine is not None:
            self._sync_engine.dispose()
        await self.engine.dispose()


class _InThread:
    """The face of an `AsyncConnection` that the store's transactions use, over a synchronous
    connection in the writer thread: `execute` returns at once."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.dialect = conn.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self._conn.execute(statement, parameters)


def _run_to_end(coroutine: Awaitable[T]) -> T:
    """Step a coroutine that never waits (it awaits only `_InThread.execute`) to its result."""
    assert isinstance(coroutine, Coroutine)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a SQLite write transaction awaited something besides its connection")


def _create_engine(url: str, is_sqlite: bool) -> AsyncEngine:
    if not is_sqlite:
        return create_async_engine(
            url,
            pool_size=POSTGRES_POOL_SIZE,
            max_overflow=POSTGRES_POOL_SIZE,
            pool_pre_ping=True,
            connect_args={"command_timeout": POSTGRES_COMMAND_TIMEOUT_S},
        )
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _create_sync_sqlite_engine(url: str) -> Engine:
    """The writer thread's engine on the same file (pysqlite, the same dialect and pragmas)."""
    sync_url = make_url(url).set(drivername="sqlite")
    engine = create_engine(
        sync_url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()
