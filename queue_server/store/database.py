"""The engine, and the one way state changes are written: `Database.transaction`.

A transaction body is a plain synchronous function of a SQLAlchemy `Connection`. It runs the
same way on both backends, so it cannot await anything by construction:

- on a SQLite file, in the one writer thread on a synchronous pysqlite connection, under the
  process's write lock (SQLite allows one writer; many pooled writers contend on its lock, p99
  near a second). Through aiosqlite every statement crosses to its thread and back; a counter
  action runs nine statements and the commit: measured 3.5 ms that way, 0.6 ms in one crossing;
- on PostgreSQL (and an in-memory SQLite), through `AsyncConnection.run_sync`, which runs the
  body over the async driver through greenlets. Row locks order writers across processes.

The events a body appends (`store.events.append_events`) are collected on its connection and
published through `listeners` after the commit, here and nowhere else: no caller has to
remember, and a body that raises publishes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from queue_server.errors import Overloaded

if TYPE_CHECKING:
    from queue_server.store.events import Event

T = TypeVar("T")
Body = Callable[[Connection], T]
Listener = Callable[[Sequence["Event"]], Awaitable[None]]

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 10_000
# PostgreSQL connections one process may hold, writes and reads together
# (RIGI_DATABASE_CONNECTIONS): a hard cap, no overflow, so that processes × this stays under
# the server's max_connections (each connection is a PostgreSQL backend). Two saturated cores
# gain nothing from more; pools that could grow past it made the national day's full size
# fail with `too many clients`.
DEFAULT_POSTGRES_CONNECTIONS = 24
MIN_POSTGRES_CONNECTIONS = 3
# Reads on PostgreSQL run in autocommit on a pool of their own (a third of the budget): a read
# in a transaction paid BEGIN and ROLLBACK around its query: three round trips where one does.
# Round trips were most of the servers' CPU in the national day (docs/benchmarks.md). READ
# COMMITTED takes a new snapshot per statement anyway; `snapshot` keeps its own.
READ_SHARE = 3
# A pooled connection is pinged before use only when it has been idle this long. SQLAlchemy's
# pre-ping pinged every checkout: BEGIN, `;`, ROLLBACK, three round trips before each write
# transaction, 5% of the servers' CPU in the national day. A busy connection is known alive;
# after a PostgreSQL restart one used within this window fails once and the pool is replaced.
PING_IDLE_S = 5.0
_LAST_USED = "rigi.last_used"
POSTGRES_COMMAND_TIMEOUT_S = 10
# How long a request waits for a pooled connection before it is told the server is overloaded
# (503, `overloaded`; RIGI_DATABASE_WAIT_S): well under a proxy's read timeout (75 s in
# deploy/nginx), so the client hears a clear answer, not a 500 after SQLAlchemy's 30 s.
POOL_WAIT_S = 10.0
OVERLOADED = "The server is busy; try again in a few seconds."
# Key of `Connection.info` under which a running transaction collects its appended events.
PENDING_EVENTS = "rigi.pending_events"


class Database:
    """One engine, the rule for taking a write transaction, and who hears of its events."""

    def __init__(
        self,
        url: str,
        connections: int = DEFAULT_POSTGRES_CONNECTIONS,
        *,
        wait_s: float = POOL_WAIT_S,
    ) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        self.connections = max(connections, MIN_POSTGRES_CONNECTIONS)
        reads = max(1, self.connections // READ_SHARE)
        writes = self.connections - reads
        self.engine: AsyncEngine = _create_engine(url, self.is_sqlite, writes, wait_s=wait_s)
        self._reader: AsyncEngine = (
            self.engine
            if self.is_sqlite
            else _create_engine(url, False, reads, autocommit=True, wait_s=wait_s)
        )
        self.listeners: list[Listener] = []  # told of every committed transaction's events
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._writer: ThreadPoolExecutor | None = None
        self._sync_engine: Engine | None = None
        if self.is_sqlite and make_url(url).database not in (None, "", ":memory:"):
            self._sync_engine = _create_sync_sqlite_engine(url)
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        """The write engine and, on PostgreSQL, the read engine: every statement goes through
        one of them (for whoever watches the SQL sent)."""
        return (self.engine,) if self._reader is self.engine else (self.engine, self._reader)

    async def transaction(self, body: Body[T]) -> T:
        """Run `body` as one write transaction: committed when it returns, rolled back when it
        raises (its error reaches the caller). After the commit the events it appended are
        published. The body must not touch state that the event loop reads meanwhile: it may
        run in another thread; return what changed and apply it after."""
        if inspect.iscoroutinefunction(body):
            raise TypeError("a transaction body is a plain function of a Connection")
        with _overload_is_503():
            if self._writer is None:
                async with self._locked(), self.engine.begin() as conn:
                    result, events = await conn.run_sync(_collecting, body)
            else:
                result, events = await self._in_writer(body)
        await self.publish(events)
        return result

    async def _in_writer(self, body: Body[T]) -> tuple[T, list[Event]]:
        assert self._write_lock is not None
        async with self._write_lock:
            done = asyncio.get_running_loop().run_in_executor(
                self._writer, self._run_in_writer, body
            )
            try:
                return await asyncio.shield(done)
            except asyncio.CancelledError:
                # The thread cannot be stopped: the next writer waits until it has finished,
                # and what it committed is still told.
                await asyncio.wait([done])
                if not done.cancelled() and done.exception() is None:
                    await self.publish(done.result()[1])
                raise

    def _run_in_writer(self, body: Body[T]) -> tuple[T, list[Event]]:
        assert self._sync_engine is not None
        with self._sync_engine.begin() as conn:
            return _collecting(conn, body)

    async def publish(self, events: Sequence[Event]) -> None:
        """Tell the listeners after the commit. The database already holds every event, so a
        failure here is logged and clients catch up from the event table."""
        if not events:
            return
        for listener in list(self.listeners):
            try:
                await listener(events)
            except Exception:
                log.exception("publishing %d events failed", len(events))

    async def reading(self, body: Body[T]) -> T:
        """Run a read of plain synchronous queries (the same helpers the writes use)."""
        async with self.read() as conn:
            return await conn.run_sync(body)

    def _locked(self) -> AbstractAsyncContextManager[Any]:
        return self._write_lock if self._write_lock is not None else nullcontext()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A raw transaction for schema work (migrations, tests' tables); state changes go
        through `transaction`. Shares the write lock with it."""
        async with self._locked(), self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncConnection]:
        """A read that sees one consistent state across several queries: a board and the
        event sequence number it matches."""
        if self._write_lock is not None:
            async with self._write_lock, self.engine.connect() as conn:
                yield conn
            return
        with _overload_is_503():
            async with self.engine.connect() as conn:
                await conn.execution_options(isolation_level="REPEATABLE READ")
                async with conn.begin():
                    yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads: each statement sees what is committed when it runs."""
        with _overload_is_503():
            async with self._reader.connect() as conn:
                yield conn

    async def check_budget(self, beside: int = 0) -> int | None:
        """Log how many processes like this one PostgreSQL's max_connections holds (a warning
        when not even two: a second process or a pg_dump would be refused); the count, or None
        on SQLite. `beside`: connections this process's helpers hold on top of its own (the
        reports projector's process), counted with them."""
        if self.is_sqlite:
            return None
        async with self.read() as conn:
            allowed = int((await conn.exec_driver_sql("SHOW max_connections")).scalar_one())
        held = self.connections + beside
        fits = allowed // held
        log.log(
            logging.WARNING if fits < 2 else logging.INFO,
            "PostgreSQL allows %d connections; this process holds up to %d "
            "(RIGI_DATABASE_CONNECTIONS) and its helpers %d: %d processes like it fit, "
            "with nothing else connected",
            allowed,
            self.connections,
            beside,
            fits,
        )
        return fits

    async def dispose(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
        if self._sync_engine is not None:
            self._sync_engine.dispose()
        await self.engine.dispose()
        if self._reader is not self.engine:
            await self._reader.dispose()


def _collecting(conn: Connection, body: Body[T]) -> tuple[T, list[Event]]:
    """Run `body`, collecting the events it appends on `conn` (see `store.events`)."""
    pending: list[Event] = []
    conn.info[PENDING_EVENTS] = pending
    try:
        result = body(conn)
    finally:
        # A connection that died under the body refuses even `info` (PendingRollbackError):
        # the body's own error is the one to raise, and the dead connection is discarded.
        with contextlib.suppress(SQLAlchemyError):
            conn.info.pop(PENDING_EVENTS, None)
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()
        raise TypeError("a transaction body is a plain function of a Connection")
    return result, pending


@contextmanager
def _overload_is_503() -> Iterator[None]:
    """A pool that gave no connection within POOL_WAIT_S, or PostgreSQL that did not answer a
    statement within its command timeout, is an overloaded server: `Overloaded` (503)."""
    try:
        yield
    except (PoolTimeout, TimeoutError) as error:
        raise Overloaded(OVERLOADED) from error


def _create_engine(
    url: str,
    is_sqlite: bool,
    pool_size: int = 1,
    *,
    autocommit: bool = False,
    wait_s: float = POOL_WAIT_S,
) -> AsyncEngine:
    if not is_sqlite:
        engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=wait_s,
            connect_args={"command_timeout": POSTGRES_COMMAND_TIMEOUT_S},
            **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
        )
        event.listen(engine.sync_engine.pool, "checkout", _ping_if_idle)
        event.listen(engine.sync_engine.pool, "checkin", _note_use)
        return engine
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: object) -> None:
    """Ping a connection that sat idle for PING_IDLE_S before handing it out; a dead one is
    replaced by the pool (DisconnectionError makes it try a fresh connection)."""
    last_used = record.info.get(_LAST_USED)
    if last_used is None or time.monotonic() - last_used < PING_IDLE_S:
        return
    try:
        dbapi_connection.ping()
    except Exception as error:
        raise DisconnectionError(f"a pooled connection was dead: {error}") from error


def _note_use(dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info[_LAST_USED] = time.monotonic()


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
