"""The bare baseline: what a minimal Starlette app costs for the same work as Rigi.

- `WS /ws`: a client sends one hello, gets `{"type":"ready"}`, then only receives.
- `POST /broadcast`: the request body (a text frame, e.g. a real `ticket.called` event) is sent
  as-is to every connected client — encoded once, one `send_text` per connection.
- `POST /tickets`: one INSERT and commit through SQLAlchemy Core on `BARE_DATABASE_URL`
  (aiosqlite with one writer and the same pragmas as Rigi, or asyncpg), nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, event, insert
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

DATABASE_ENV = "BARE_DATABASE_URL"
SQLITE_BUSY_TIMEOUT_MS = 10_000
POSTGRES_POOL_SIZE = 10

metadata = MetaData()
tickets = Table(
    "bare_tickets",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("branch_id", String(64), nullable=False),
    Column("service_id", String(64), nullable=False),
    Column("number", Integer, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
)


def _engine(url: str) -> tuple[AsyncEngine, asyncio.Lock | None]:
    if not url.startswith("sqlite"):
        engine = create_async_engine(
            url, pool_size=POSTGRES_POOL_SIZE, max_overflow=POSTGRES_POOL_SIZE
        )
        return engine, None
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: object, _record: object) -> None:
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    return engine, asyncio.Lock()  # one writer, as Rigi does on SQLite


def create_app() -> Starlette:
    clients: set[WebSocket] = set()
    state: dict[str, object] = {"number": 0}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        url = os.environ.get(DATABASE_ENV)
        if url:
            engine, lock = _engine(url)
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
            state["engine"], state["lock"] = engine, lock
        try:
            yield
        finally:
            if url:
                await engine.dispose()

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def feed(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()  # the hello
        clients.add(websocket)
        try:
            await websocket.send_text('{"type":"ready"}')
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            clients.discard(websocket)

    async def broadcast(request: Request) -> JSONResponse:
        message = (await request.body()).decode()
        for websocket in list(clients):
            with contextlib.suppress(Exception):
                await websocket.send_text(message)
        return JSONResponse({"sent": len(clients)})

    async def issue(request: Request) -> JSONResponse:
        body = await request.json()
        engine: AsyncEngine = state["engine"]  # type: ignore[assignment]
        lock: asyncio.Lock | None = state["lock"]  # type: ignore[assignment]
        state["number"] = number = int(state["number"]) + 1  # type: ignore[call-overload]
        row = {
            "id": str(uuid.uuid4()),
            "branch_id": "testhall",
            "service_id": body["service_id"],
            "number": number,
            "issued_at": datetime.now(UTC),
        }
        async with lock or contextlib.nullcontext(), engine.begin() as conn:
            await conn.execute(insert(tickets).values(row))
        return JSONResponse({"id": row["id"], "number": number}, status_code=201)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            WebSocketRoute("/ws", feed),
            Route("/broadcast", broadcast, methods=["POST"]),
            Route("/tickets", issue, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
