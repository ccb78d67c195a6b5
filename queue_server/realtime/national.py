"""`/ws/national`: every branch's floor on one feed, for the central office (docs/protocol.md).

One `NationalFloor` per process follows every branch's stream through the hub (one listener per
branch, started when the first national client (or page) comes and stopped `LINGER_S` after the
last left). An event only marks its branch changed; the changed branches are read again in one
grouped query (`store.national`): a branch at once, unless it was read less than `COALESCE_S`
ago (a busy hall's burst is one read), and reads at least `READ_GAP_S` apart. The rows that
differ go to every client in one frame, encoded once. Waits grow while nothing happens, so
every branch is read again each `REFRESH_S`, beside those reads (a change does not wait behind
it; a row it brings that a newer read replaced meanwhile is dropped by its `seq`).

A client always starts from a snapshot of every row: rows replace each other whole, so there
is nothing to replay. The snapshot is encoded once until a row changes, shared by the clients
that join and by the page, which is served with it (`web.national_page`) and paints at once.
A client answers pings like on every feed; one that does not read is closed with 4008 and
reconnects to a new snapshot.

A client is an administrator's session: when that person is disabled, loses the role or has the
password reset, the feed closes with 4403 at once, like a console's. An administrator belongs to
no branch, so no branch stream tells of it: the API asks the floor to check the person's clients
(`sessions_changed`), which also tells the other processes on the bus's `sessions` channel; a
branch event of that kind (a role change to a branch) does the same, and every heartbeat the
floor checks every client's session against the database in case a message was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Collection
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket

from queue_server.access.credentials import ENDS_SESSIONS
from queue_server.access.principal import Role
from queue_server.bus.base import BusUnavailable, told_or_polled
from queue_server.domain.national import country_totals
from queue_server.realtime.hub import Item, Listener
from queue_server.store.events import Event
from queue_server.store.national import floor_rows
from queue_server.store.rows import iso
from rigi_protocol.closecodes import CLOSE_FORBIDDEN, CLOSE_RESYNC, CLOSE_TOO_SLOW
from rigi_protocol.wire import compact_json

if TYPE_CHECKING:
    from queue_server.app import Rigi

log = logging.getLogger(__name__)

COALESCE_S = 0.2  # a branch's events of this long are read as one: a busy hall, ~5 reads a second
READ_GAP_S = 0.05  # between two reads of the floor, whichever branches: at most 20 a second
REFRESH_S = 15.0  # every branch read again: the longest waits grow without events
SEND_QUEUE_LIMIT = 64  # frames a client may fall behind before it is closed
MISSED_PONGS = 2
RETRY_S = 1.0  # after a failed read
PING = '{"type":"ping"}'
LINGER_S = 600.0  # the floor keeps running this long after its last client left
# A node's branch is read from the report facts, which the projector writes about a second
# (reporting.background.GATHER_S) after the events: such a branch is read again this much later.
FACTS_LAG_S = 1.5
SESSIONS_CHANNEL = "sessions"  # bus: "check this person's national feeds" (a user id)
SIGNED_OUT = "signed out: session ended"


class NationalClient:
    """One national connection: frames wait in a bounded queue for the connection's sender."""

    def __init__(
        self, websocket: WebSocket, heartbeat_s: float, user_id: str, session_version: int
    ) -> None:
        self.websocket = websocket
        self.heartbeat_s = heartbeat_s
        self.user_id = user_id
        self.session_version = session_version  # the session's; the person's moves on at sign-out
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
        self._read_at: dict[str, float] = {}  # branch → when it was last read (the loop's clock)
        self._later: set[str] = set()  # node branches to read again after FACTS_LAG_S
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._following: contextlib.AsyncExitStack | None = None
        self._task: asyncio.Task[None] | None = None
        self._every: asyncio.Task[None] | None = None  # the REFRESH_S read of every branch
        self._linger: asyncio.Task[None] | None = None
        self._sessions: asyncio.Task[None] | None = None
        self._checks: set[asyncio.Task[None]] = set()
        self._snapshot: str | None = None  # every row, encoded once until a row changes

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
            client.offer(self.snapshot_frame())

    async def page_snapshot(self) -> str:
        """The snapshot frame for the page to paint from before its feed opens
        (`web.national_page`). The floor starts for it as for a client; if no feed follows,
        it stops LINGER_S later."""
        async with self._lock:
            if self._task is None:
                await self._start()
                self._linger_if_idle()
            return self.snapshot_frame()

    def snapshot_frame(self) -> str:
        """Every row and the country's totals, one text shared by every client that joins
        until a row changes (211 rows are ~60 KB of JSON: not encoded once per client)."""
        if self._snapshot is None:
            self._snapshot = self._frame("snapshot", self.rows)
        return self._snapshot

    async def leave(self, client: NationalClient) -> None:
        """Forget a client; the floor stops LINGER_S after the last one left, so a reloaded
        page or a reconnecting screen finds it running."""
        async with self._lock:
            self.clients.discard(client)
            self._linger_if_idle()

    def _linger_if_idle(self) -> None:
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
            self._snapshot = None
        except BaseException:
            await self._following.aclose()
            self._following = None
            raise
        self._task = asyncio.create_task(self._keep_current(), name="national-floor")
        self._sessions = asyncio.create_task(self._follow_sessions(), name="national-sessions")

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
                if item.kind in ENDS_SESSIONS:
                    self._check_later(item.data.get("user_id"))
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
        tasks = [
            t for t in (self._task, self._every, self._sessions, *self._checks) if t is not None
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = self._every = self._sessions = None
        self._checks.clear()
        if self._following is not None:
            await self._following.aclose()
            self._following = None
        self.rows = {}
        self._snapshot = None
        self._dirty.clear()
        self._read_at.clear()

    # ---- sessions: a signed-out administrator's feed closes at once ---------------------------

    async def sessions_changed(self, user_id: str) -> None:
        """A person's sessions may have ended (disabled, role changed, password reset): check
        their feeds here now, and have every other process check its own."""
        await self._check_sessions(user_id)
        if self.rigi.hub is None:
            return
        try:
            await self.rigi.hub.bus.publish(SESSIONS_CHANNEL, user_id)
        except BusUnavailable:
            log.warning("bus unavailable: other processes close that feed within a heartbeat")

    def _check_later(self, user_id: object) -> None:
        """From a branch event (the hub's callback must not wait on the database)."""
        if any(client.user_id == user_id for client in self.clients):
            task = asyncio.create_task(self._check_sessions(str(user_id)))
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)

    async def _check_sessions(self, user_id: str | None = None) -> None:
        """Close the feeds (of `user_id`, else every one) whose session is no longer an
        administrator's: disabled, signed out everywhere, another role."""
        accounts = self.rigi.accounts
        for client in [c for c in self.clients if user_id in (None, c.user_id)]:
            person = await accounts.user_for_session(
                client.user_id, client.session_version, fresh=True
            )
            if person is None or person.role is not Role.ADMIN:
                client.end(CLOSE_FORBIDDEN, SIGNED_OUT)

    async def _follow_sessions(self) -> None:
        """Check the person another process names on the bus; every heartbeat (or after a gap
        in the bus) check every client, since the bus only tells (DESIGN.md, decision 1)."""
        assert self.rigi.hub is not None
        poll_s = self.rigi.settings.heartbeat_s
        async for item in told_or_polled(self.rigi.hub.bus, SESSIONS_CHANNEL, poll_s):
            try:
                if item is None:
                    await self._check_sessions()
                else:
                    await self._check_sessions(item.data)
            except Exception:
                log.exception("checking the national feeds' sessions failed; trying again")

    async def _keep_current(self) -> None:
        """Read each changed branch at once, unless it was read less than COALESCE_S ago (then
        when that spell ends, with whatever else changed there meanwhile); reads are at least
        READ_GAP_S apart, whichever branches they hold."""
        loop = asyncio.get_running_loop()
        heartbeat_s = self.rigi.settings.heartbeat_s
        next_refresh, next_ping = loop.time() + REFRESH_S, loop.time() + heartbeat_s
        last_read = 0.0
        while True:
            now = loop.time()
            if now >= next_ping:
                next_ping = now + heartbeat_s
                for client in list(self.clients):
                    client.ping(now)
            if now >= next_refresh:
                next_refresh = now + REFRESH_S
                self._read_every_branch()
            if self._due(now):
                await asyncio.sleep(max(0.0, last_read + READ_GAP_S - now))
                last_read = loop.time()
                await self._read_due(last_read)
                continue
            self._wake.clear()  # nothing due: sleep until a mark, a branch's spell ends, or a tick
            wait_s = max(0.0, min(next_refresh, next_ping, self._next_due()) - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait_s)

    def _due(self, now: float) -> set[str]:
        """The changed branches whose last read is COALESCE_S old (or never read)."""
        return {b for b in self._dirty if self._due_at(b) <= now}

    def _next_due(self) -> float:
        return min((self._due_at(b) for b in self._dirty), default=float("inf"))

    def _due_at(self, branch: str) -> float:
        return self._read_at.get(branch, -math.inf) + COALESCE_S

    async def _read_due(self, now: float) -> None:
        due = self._due(now)
        self._dirty -= due
        for branch in due:
            self._read_at[branch] = now
        try:
            await self._refresh(due)
        except Exception:
            log.exception("reading the national floor failed; trying again")
            self._dirty |= due
            await asyncio.sleep(RETRY_S)

    def _read_every_branch(self) -> None:
        """Read every branch again (waits grow without events) in a task beside the changed
        branches' reads: at load the 211 take ~200 ms, which a change must not wait behind.
        One at a time; a row it brings that a newer read already replaced is dropped."""
        if self._every is not None and not self._every.done():
            return
        self._every = asyncio.create_task(self._refresh_every(), name="national-every-branch")

    async def _refresh_every(self) -> None:
        try:
            await self._refresh(set(self.rows))
        except Exception:
            log.exception("reading every national branch failed; again in %s s", REFRESH_S)

    def _newer(self, branch: str, row: dict[str, Any]) -> bool:
        """Whether a row read for `branch` is to replace the one kept: it differs, and it is
        of another epoch or not behind it (two reads may end in either order)."""
        known = self.rows.get(branch)
        if known is None:
            return True
        if known == row:
            return False
        return bool(known["epoch"] != row["epoch"] or row["seq"] >= known["seq"])

    async def _refresh(self, branches: set[str]) -> None:
        rows = await self._read(branches)
        changed = {b: row for b, row in rows.items() if self._newer(b, row)}
        if not changed:
            return
        self.rows.update(changed)
        self._snapshot = None
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


async def follow_people(rigi: Rigi) -> None:
    """Forget the kept row of a person another process names on the bus's `sessions` channel
    (everyone's after a quiet heartbeat or a gap: the bus only tells), so that a person
    disabled or signed out there is refused here at once (`Accounts.user_for_session`)."""
    assert rigi.hub is not None
    async for item in told_or_polled(rigi.hub.bus, SESSIONS_CHANNEL, rigi.settings.heartbeat_s):
        rigi.accounts.forget_person(None if item is None else str(item.data))


@contextlib.asynccontextmanager
async def national_view(rigi: Rigi) -> AsyncIterator[None]:
    """Lifespan part (after `realtime`): the process's national floor, idle until a client,
    and the follower that keeps the process's sessions current."""
    rigi.national = NationalFloor(rigi)
    people = asyncio.create_task(_following_people(rigi), name="sessions-people")
    try:
        yield
    finally:
        people.cancel()
        await asyncio.gather(people, return_exceptions=True)
        await rigi.national.close()


async def _following_people(rigi: Rigi) -> None:
    while True:  # a bus that closes the subscription (stopping, or lost) is followed again
        try:
            await follow_people(rigi)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("following the sessions channel failed; again in a heartbeat")
        rigi.accounts.forget_person()
        await asyncio.sleep(rigi.settings.heartbeat_s)
