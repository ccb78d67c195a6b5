"""An overloaded server says so: when no database connection frees up within
RIGI_DATABASE_WAIT_S, a request gets 503 `overloaded` with Retry-After (before: a 500 after
SQLAlchemy's 30 s, raised through uvicorn, which then closed the keep-alive connection that
nginx was reusing: the national day's 502s), and a feed closes with 1013 "try again later".
On the machine's PostgreSQL, with every connection of the server's pools held."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from queue_server.store.database import Database
from rigi_protocol.closecodes import CLOSE_TRY_AGAIN
from tests.support import POSTGRES_ENV, LiveServer, need_service, reset_postgres, test_settings

BUDGET = 3  # the least a process may hold: two for writes, one for reads
WAIT_S = 0.5
RECV_TIMEOUT_S = 10
HOLD_TIMEOUT_S = 10


@pytest.fixture
def busy_server(tmp_path: Path) -> Iterator[LiveServer]:
    url = need_service(POSTGRES_ENV, "PostgreSQL")
    reset_postgres(url)
    settings = test_settings(url, tmp_path, database_connections=BUDGET, database_wait_s=WAIT_S)
    server = LiveServer(settings).start()
    yield server
    server.stop()


@contextlib.asynccontextmanager
async def every_connection_held(server: LiveServer) -> AsyncIterator[None]:
    """Every pooled connection of the server, held on the server's own loop until the block
    ends: what a flood of slow requests does to it."""
    loop = server.loop
    assert loop is not None
    database: Database = server.rigi.database
    release = asyncio.Event()  # awaited on the server's loop only
    holding = threading.Event()

    async def hold() -> None:
        async with contextlib.AsyncExitStack() as stack:
            for engine in database.engines:
                for _ in range(engine.sync_engine.pool.size()):  # type: ignore[attr-defined]
                    await stack.enter_async_context(engine.connect())
            holding.set()
            await release.wait()

    held = asyncio.run_coroutine_threadsafe(hold(), loop)
    try:
        assert await asyncio.to_thread(holding.wait, HOLD_TIMEOUT_S)
        yield
    finally:
        loop.call_soon_threadsafe(release.set)
        await asyncio.wrap_future(held)


@pytest.mark.postgres
async def test_an_overloaded_server_answers_503_and_recovers(busy_server: LiveServer) -> None:
    async with (
        busy_server.client("manager") as staff,
        busy_server.client() as phone,
    ):
        issued = await phone.post("/api/v1/branches/testhall/tickets", json={"service_id": "stamp"})
        ticket = issued.raise_for_status().json()["id"]
        async with every_connection_held(busy_server):
            for answer in (
                await phone.get(f"/api/v1/tickets/{ticket}"),  # a read in a route
                await phone.post(  # a write transaction
                    "/api/v1/branches/testhall/tickets", json={"service_id": "stamp"}
                ),
                await staff.get("/api/v1/branches/testhall/counters"),  # the session's read
            ):
                assert answer.status_code == 503, answer.text
                assert answer.json()["code"] == "overloaded"
                assert int(answer.headers["Retry-After"]) > 0
            with pytest.raises(ConnectionClosed) as closed:
                async with connect(f"{busy_server.ws_url}/ws/tickets/{ticket}") as feed:
                    await asyncio.wait_for(feed.recv(), RECV_TIMEOUT_S)
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
                CLOSE_TRY_AGAIN,
                "overloaded",
            )
        # the connections are back: the same requests are served
        assert (await phone.get(f"/api/v1/tickets/{ticket}")).status_code == 200
        assert (await staff.get("/api/v1/branches/testhall/counters")).status_code == 200
        async with connect(f"{busy_server.ws_url}/ws/tickets/{ticket}") as feed:
            assert '"ticket"' in str(await asyncio.wait_for(feed.recv(), RECV_TIMEOUT_S))
