"""Real parts for the branch-node tests: a TCP link the test cuts and restores, and the node and
central processes it joins (docs/offline.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.support import PASSWORD, free_port

NODE_BRANCH = "cc01-shashiani"  # a real Community Centre of the shipped configuration
SERVER = [sys.executable, "-m", "queue_server"]
START_TIMEOUT_S = 40.0
PIPE_BYTES = 64 * 1024


class LinkProxy:
    """A TCP proxy on loopback between a node and central's processes (round robin, the next
    one when a process is down). `cut()` drops every open connection and refuses new ones, as
    a rural line going down; `restore()` lets them through again."""

    def __init__(self, upstream_ports: list[int]) -> None:
        self.upstream_ports = upstream_ports
        self.port = free_port()
        self.up = True
        self.connected_at: float | None = None  # monotonic time of the last connection let in
        self._next = 0
        self._pipes: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> LinkProxy:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        return self

    def cut(self) -> None:
        self.up = False
        for writer in list(self._pipes):
            writer.transport.abort()
        self._pipes.clear()

    def restore(self) -> None:
        self.up = True

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
            handler.add_done_callback(self._handlers.discard)
        if not self.up:
            writer.transport.abort()
            return
        upstream = await self._connect()
        if upstream is None:
            writer.transport.abort()
            return
        self.connected_at = asyncio.get_running_loop().time()
        up_reader, up_writer = upstream
        self._pipes |= {writer, up_writer}
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._pipes -= {writer, up_writer}
            writer.transport.abort()
            up_writer.transport.abort()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in self.upstream_ports:
            port = self.upstream_ports[self._next % len(self.upstream_ports)]
            self._next += 1
            with contextlib.suppress(OSError):
                return await asyncio.open_connection("127.0.0.1", port)
        return None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while chunk := await reader.read(PIPE_BYTES):
            writer.write(chunk)
            await writer.drain()
    writer.transport.abort()


@dataclass
class Process:
    """A server process of the test's own (stopped by its pid, never by name)."""

    env: dict[str, str]
    port: int = field(default_factory=free_port)
    popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Process:
        command = [*SERVER, "serve", "--port", str(self.port)]
        self.popen = subprocess.Popen(command, env=self.env)  # noqa: ASYNC220 - returns at once
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
        async with httpx.AsyncClient(timeout=1) as client:
            while asyncio.get_running_loop().time() < deadline:
                if self.popen.poll() is not None:
                    raise RuntimeError(f"{self.url} exited with {self.popen.returncode}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(self.url + "/readyz")).status_code == 200:
                        return self
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.url} did not become ready")

    def kill(self) -> None:
        """kill -9: no shutdown, no flush."""
        if self.popen is not None and self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


def node_ticket(
    ticket_id: str,
    number: int,
    at: datetime,
    *,
    status: str = "waiting",
    branch: str = NODE_BRANCH,
    counter_id: str | None = None,
) -> dict[str, Any]:
    """A ticket as a node's events carry it (the keys of `store.views.ticket_view`)."""
    return {
        "id": ticket_id, "branch": branch, "label": f"A{number:03d}", "letter": "A",
        "number": number, "service_id": "id_card", "service_name": "ID card", "status": status,
        "priority": "normal", "language": "ka", "counter_id": counter_id, "counter_number": None,
        "issued_at": at.isoformat(), "called_at": None, "recalls": 0,
    }  # fmt: skip


def base_env(data_dir: Path, **settings: str) -> dict[str, str]:
    env = os.environ | {
        "RIGI_DATA_DIR": str(data_dir),
        "RIGI_SECRET_KEY": "offline-test-secret-" + "y" * 32,
        "RIGI_ISSUE_RATE_DEVICE": "100000/minute",
        "RIGI_ISSUE_RATE_ADDRESS": "100000/minute",
        "RIGI_LOGIN_RATE": "100000/minute",
        "RIGI_LOG_LEVEL": "warning",
    }
    env.pop("RIGI_CONFIG", None)  # the shipped organisation: 86 branches, the real centre
    return env | {f"RIGI_{name.upper()}": value for name, value in settings.items()}


async def node_token(database_url: str, central_admin: str | None = None) -> str:
    """Migrate central's database and make the centre's node token (and, if named, an
    administrator at central, who edits the organisation there), in this process (a server
    process started for it would cost seconds of imports)."""
    from queue_server.access.accounts import Accounts
    from queue_server.access.principal import Role
    from queue_server.replication.routes import make_node_token
    from queue_server.store.change import utc_now
    from queue_server.store.database import Database
    from queue_server.store.migrate import migrate

    database = Database(database_url)
    try:
        await migrate(database)
        if central_admin is not None:
            accounts = Accounts(database, utc_now)
            await accounts.create_user(central_admin, PASSWORD, Role.ADMIN, None, by="test")
        return (await make_node_token(database, NODE_BRANCH, "node", "admin:test"))[1]
    finally:
        await database.dispose()


async def node_staff(sqlite_file: Path, manager: str) -> None:
    """Migrate the node's file and make its manager, in this process."""
    from queue_server.store.database import Database
    from queue_server.store.migrate import migrate
    from tests.support import manager_and_display

    database = Database(f"sqlite+aiosqlite:///{sqlite_file}")
    try:
        await migrate(database)
    finally:
        await database.dispose()
    await manager_and_display(f"sqlite+aiosqlite:///{sqlite_file}", manager, NODE_BRANCH)


def run(env: dict[str, str], *arguments: str) -> str:
    done = subprocess.run(
        [*SERVER, *arguments], env=env, check=True, timeout=120, capture_output=True, text=True
    )
    return done.stdout


def node_events(sqlite_file: Path) -> list[tuple[int, str, str, Any]]:
    """The node's own log, read from its file while it runs (WAL lets a reader in)."""
    with contextlib.closing(sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT seq, epoch, kind, data FROM events WHERE branch_id = ? ORDER BY seq",
            (NODE_BRANCH,),
        ).fetchall()
    return [(seq, epoch, kind, json.loads(data)) for seq, epoch, kind, data in rows]


async def central_events(database_url: str) -> list[tuple[int, str, str, Any]]:
    import asyncpg

    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await conn.fetch(
            "SELECT seq, epoch, kind, data FROM events WHERE branch_id = $1 ORDER BY seq",
            NODE_BRANCH,
        )
    finally:
        await conn.close()
    return [(r["seq"], r["epoch"], r["kind"], json.loads(r["data"])) for r in rows]


_FACTS = (
    "SELECT ticket_id, service_id, outcome, counter_id, wait_s FROM visit_facts "
    "WHERE branch_id = {} ORDER BY ticket_id"
)


def node_facts(sqlite_file: Path) -> list[tuple[Any, ...]]:
    """The node's own report facts (one row per visit)."""
    with contextlib.closing(sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True)) as conn:
        rows = conn.execute(_FACTS.format("?"), (NODE_BRANCH,)).fetchall()
    return [(*row[:4], None if row[4] is None else round(row[4], 3)) for row in rows]


async def central_facts(database_url: str) -> list[tuple[Any, ...]]:
    import asyncpg

    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await conn.fetch(_FACTS.format("$1"), NODE_BRANCH)
    finally:
        await conn.close()
    return [(*tuple(r)[:4], None if r[4] is None else round(r[4], 3)) for r in rows]


_TICKETS = (
    "SELECT id, status, letter, number, visit, counter_id, call_seq, transferred_from "
    "FROM tickets WHERE branch_id = {} ORDER BY id"
)


def node_tickets(sqlite_file: Path) -> list[tuple[Any, ...]]:
    """The node's own ticket rows (what its phones and boards read)."""
    with contextlib.closing(sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True)) as conn:
        return [tuple(row) for row in conn.execute(_TICKETS.format("?"), (NODE_BRANCH,))]


async def central_tickets(database_url: str) -> list[tuple[Any, ...]]:
    """Central's ticket rows of the centre, kept from its replicated events."""
    import asyncpg

    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        return [tuple(r) for r in await conn.fetch(_TICKETS.format("$1"), NODE_BRANCH)]
    finally:
        await conn.close()


def node_floor(sqlite_file: Path) -> tuple[int, datetime | None, int]:
    """The centre's floor as the node holds it: tickets waiting, the oldest one's queue time,
    counters open."""
    with contextlib.closing(sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True)) as conn:
        count, oldest = conn.execute(
            "SELECT count(*), min(queued_at) FROM tickets WHERE branch_id = ? AND status = ?",
            (NODE_BRANCH, "waiting"),
        ).fetchone()
        (open_now,) = conn.execute(
            "SELECT count(*) FROM counter_states WHERE branch_id = ? AND state = ?",
            (NODE_BRANCH, "open"),
        ).fetchone()
    when = datetime.fromisoformat(oldest).replace(tzinfo=UTC) if oldest else None
    return count, when, open_now


async def national_snapshot(url: str, client: httpx.AsyncClient) -> dict[str, Any]:
    """The national feed's first snapshot at a central process, for a signed-in administrator."""
    from websockets.asyncio.client import connect

    cookie = client.cookies["rigi_session"]
    ws_url = url.replace("http://", "ws://") + "/ws/national"
    async with connect(
        ws_url, additional_headers={"Cookie": f"rigi_session={cookie}"}, compression=None
    ) as websocket:
        await websocket.send(json.dumps({"type": "hello"}))
        while True:
            message = json.loads(await asyncio.wait_for(websocket.recv(), START_TIMEOUT_S))
            if message["type"] == "snapshot":
                return message  # type: ignore[no-any-return]


async def signed_in(url: str, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=url, timeout=30)
    answer = await client.post("/api/v1/session", json={"username": username, "password": PASSWORD})
    answer.raise_for_status()
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return client


@contextlib.contextmanager
def stopping(processes: list[Process]) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            process.stop()
