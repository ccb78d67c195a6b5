"""`/ws/national`: every branch's floor on one feed, for the central office (docs/protocol.md).

One `NationalFloor` per process follows every branch's stream through the hub (one listener per
branch, started when the first national client comes and stopped `LINGER_S` after the last left). An
event only marks its branch changed; the changed branches are read again in one grouped query
(`store.national`) at once after a quiet spell, at most every `COALESCE_S` under a stream of
events, and the rows that differ go to every client in one frame, encoded once. Waits grow
while nothing happens, so every branch is read again each `REFRESH_S`.

A client always starts from a snapshot of every row: rows replace each other whole, so there
is nothing to replay. It answers pings like on every feed; one that does not read is closed with
4008 and reconnects to a new snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Collection
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket

from queue_server.domain.national import country_totals
from queue_server.realtime.hub import Item, Listener
from queue_server.store.events import Event
from queue_server.store.national import floor_rows
from queue_server.store.rows import iso
from rigi_protocol.closecodes import CLOSE_RESYNC, CLOSE_TOO_SLOW
from rigi_protocol.wire import compact_json

if TYPE_CHECKING:
    from queue_server.app import Rigi

log = logging.getLogger(__name__)

COALESCE_S = 0.2  # events of this long are read as one: 211 busy branches, ~5 reads a second
REFRESH_S = 15.0  # every branch read again: the longest waits grow without events
SEND_QUEUE_LIMIT = 64  # frames a client may fall behind before it is closed
MISSED_PONGS = 2
RETRY_S = 1.0  # after a failed read
PING = '{"type":"ping"}'
LINGER_S = 600.0  # the floor keeps running this long after its last client left
# A node's branch is read from the report facts, which the projector writes about a second
# (reporting.background.GATHER_S) after the events: such a branch is read again this much later.
FACTS_LAG_S = 1.5


class NationalClient:
    """One national connection: frames wait in a bounded queue for the connection's sender."""

    def __init__(self, websocket: WebSocket, heartbeat_s: float) -> None:
        self.websocket = websocket
        self.heartbeat_s = heartbeat_s
        self.pending: deque[str] = deque()
        self.ready = asyncio.Event()
        self.ended = asyncio.get_running_loop().create_future()
        self.last_heard = asyncio.get_running_loop().time()

    def offer(self, frame: str) -> None:
        if self.ended.done():
            return
        if len(self.pending) >= SEND_QUEUE_LIMIT:
            self.end(CLOSE_TOO_SLOW, "too slow: reconnect for a snapshot")
            return
        self.pending.append(frame)
        self.ready.set()

    def end(self, code: int, reason: str) -> None:
        if not self.ended.done():
            self.ended.set_result((code, reason))

    def ping(self, now: float) -> None:
        if now - self.last_heard > self.heartbeat_s * MISSED_PONGS:
            self.end(CLOSE_TOO_SLOW, "no pong")
        else:
            self.offer(PING)

    async def send_all(self) -> None:
        while True:
            await self.ready.wait()
            self.ready.clear()
            while self.pending:
                await self.websocket.send_text(self.pending.popleft())

    async def read_all(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            self.last_heard = asyncio.get_running_loop().time()


class NationalFloor:
    """Every branch's row, kept current from the hub, sent to this process's national clients."""

    def __init__(self, rigi: Rigi) -> None:
        self.rigi = rigi
        self.rows: dict[str, dict[str, Any]] = {}
        self.clients: set[NationalClient] = set()
        self._dirty: set[str] = set()
        self._later: set[str] = set()  # node branches to read again after FACTS_LAG_S
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._following: contextlib.AsyncExitStack | None = None
        self._task: asyncio.Task[None] | None = None
        self._linger: asyncio.Task[None] | None = None

    async def join(self, client: NationalClient) -> None:
        """Register a client and queue its snapshot in the same step, so that every later
        change reaches it after the snapshot (a change already in it is sent again, harmlessly)."""
        async with self._lock:
            if self._linger is not None:
                self._linger.cancel()
                self._linger = None
            if self._task is None:
                await self._start()
            self.clients.add(client)
            client.offer(self._frame("snapshot", self.rows))

    async def leave(self, client: NationalClient) -> None:
        """Forget a client; the floor stops LINGER_S after the last one left, so a reloaded
        page or a reconnecting screen finds it running."""
        async with self._lock:
            self.clients.discard(client)
            if not self.clients and self._linger is None:
                self._linger = asyncio.create_task(self._stop_later(), name="national-linger")

    async def _stop_later(self) -> None:
        await asyncio.sleep(LINGER_S)
        async with self._lock:
            self._linger = None
            if not self.clients:
                await self._stop()

    async def close(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            await asyncio.gather(self._linger, return_exceptions=True)
            self._linger = None
        async with self._lock:
            for client in list(self.clients):
                client.end(CLOSE_RESYNC, "server stopping")
            self.clients.clear()
            await self._stop()

    async def _start(self) -> None:
        branches = list(self.rigi.catalog.branches)
        self._following = contextlib.AsyncExitStack()
        listeners = [Listener(b, eager=True) for b in branches]
        try:
            entered = await asyncio.gather(*(self._follow(listener) for listener in listeners))
            for exit_stack in entered:
                self._following.push_async_exit(exit_stack)
            self.rows = await self._read(branches)
        except BaseException:
            await self._following.aclose()
            self._following = None
            raise
        self._task = asyncio.create_task(self._keep_current(), name="national-floor")

    async def _follow(self, listener: Listener) -> contextlib.AsyncExitStack:
        """Register one branch's listener with the hub; an event marks the branch changed."""
        stack = contextlib.AsyncExitStack()
        assert self.rigi.hub is not None
        await stack.enter_async_context(self.rigi.hub.listen(listener))

        async def changed(item: Item) -> bool:
            if item is None:  # the branch's stream was lost: clients start again
                self._resync()
                return False
            if isinstance(item, Event):
                listener.last_seq = item.seq
                self._mark(listener.branch)
                if self.rows.get(listener.branch, {}).get("link") is not None:
                    self._mark_later(listener.branch)
            return True

        listener.consume(changed)
        return stack

    def _mark(self, branch: str) -> None:
        self._dirty.add(branch)
        self._wake.set()

    def _mark_later(self, branch: str) -> None:
        """Read a node's branch again once the projector has applied its events (one timer
        per branch however many events a catch-up brings)."""
        if branch in self._later:
            return
        self._later.add(branch)

        def due() -> None:
            self._later.discard(branch)
            self._mark(branch)

        asyncio.get_running_loop().call_later(FACTS_LAG_S, due)

    def _resync(self) -> None:
        for client in list(self.clients):
            client.end(CLOSE_RESYNC, "resync: reconnect for a snapshot")

    async def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._following is not None:
            await self._following.aclose()
            self._following = None
        self.rows = {}

    async def _keep_current(self) -> None:
        loop = asyncio.get_running_loop()
        heartbeat_s = self.rigi.settings.heartbeat_s
        next_refresh, next_ping = loop.time() + REFRESH_S, loop.time() + heartbeat_s
        last_read = 0.0
        while True:
            wait_s = max(0.0, min(next_refresh, next_ping) - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait_s)
            now = loop.time()
            if now >= next_ping:
                next_ping = now + heartbeat_s
                for client in list(self.clients):
                    client.ping(now)
            if now >= next_refresh:
                next_refresh = now + REFRESH_S
                self._dirty.update(self.rows)
            if not self._dirty:
                continue
            # At once after a quiet spell; under a stream of events, at most every COALESCE_S.
            await asyncio.sleep(max(0.0, last_read + COALESCE_S - loop.time()))
            last_read = loop.time()
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            try:
                await self._refresh(dirty)
            except Exception:
                log.exception("reading the national floor failed; trying again")
                self._dirty |= dirty
                await asyncio.sleep(RETRY_S)

    async def _refresh(self, branches: set[str]) -> None:
        rows = await self._read(branches)
        changed = {b: row for b, row in rows.items() if self.rows.get(b) != row}
        if not changed:
            return
        self.rows.update(changed)
        frame = self._frame("update", changed)
        for client in list(self.clients):
            client.offer(frame)

    async def _read(self, branches: Collection[str]) -> dict[str, dict[str, Any]]:
        rigi = self.rigi
        stale_s = rigi.settings.node_stale_s
        return await floor_rows(rigi.database, rigi.catalog, branches, rigi.store.clock(), stale_s)

    def _frame(self, kind: str, rows: dict[str, dict[str, Any]]) -> str:
        return compact_json(
            {
                "type": kind,
                "at": iso(self.rigi.store.clock()),
                "rows": rows,
                "totals": country_totals(self.rows.values()),
            }
        )


@contextlib.asynccontextmanager
async def national_view(rigi: Rigi) -> AsyncIterator[None]:
    """Lifespan part (after `realtime`): the process's national floor, idle until a client."""
    rigi.national = NationalFloor(rigi)
    try:
        yield
    finally:
        await rigi.national.close()
