"""The node's shipper: sends the branch's event log to central, in order, and resumes from what
central acknowledges after any outage (an acknowledged position, as PostgreSQL replicas keep).

It runs beside the node's server and is never in its way: issuing, calling and printing commit
locally and only wake it. While central is unreachable it retries with a growing pause; the
node keeps every event central has not acknowledged (`node_acks` bounds pruning).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from queue_server.replication.down import DOWN_CHANNELS
from queue_server.replication.routes import NODES_PATH
from queue_server.replication.wire import decode_response, encode_batch
from queue_server.store.change import utc_now
from queue_server.store.database import Database
from queue_server.store.events import Event
from queue_server.store.replication import (
    Cursor,
    ensure_ack_row,
    epoch_starts,
    node_head,
    record_ack,
    resume_after,
    unshipped,
)

if TYPE_CHECKING:
    from queue_server.app import Rigi

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5.0
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0


@dataclass
class LinkState:
    """What the node knows of its link, for its live view."""

    connected: bool = False
    acked_seq: int = 0
    last_ack_at: datetime | None = None
    last_error: str | None = None
    shipped_events: int = 0
    down_at: datetime | None = None  # when central's bookings (and so on) were last taken
    down_changes: int = 0  # things changed at the node by what it took down, since its start
    head_seq: int = 0  # the node's newest event


class Shipper:
    """Ships one branch's events to central; `wake` is a `Database.listeners` entry."""

    def __init__(
        self,
        rigi: Rigi,
        branch: str,
        client: httpx.AsyncClient,
        *,
        batch_events: int,
        heartbeat_s: float,
    ) -> None:
        self.rigi = rigi
        self.database: Database = rigi.database
        self.branch = branch
        self.client = client
        self.batch_events = batch_events
        self.heartbeat_s = heartbeat_s
        self.state = LinkState()
        self._woken = asyncio.Event()
        self._after: int | None = None  # None: ask central where to resume
        self._cursor_epochs: set[str] = set()
        self._down_due: dict[str, float] = {}  # channel → monotonic time of its next pull
        self._down_cursors: dict[str, int] = {}
        self._pulling = asyncio.Lock()  # one pull at a time: each channel's cursor moves in order
        # the next batch, read while the last one is on its way: (after, its rows and body)
        self._ahead: tuple[int, asyncio.Future[tuple[list[Any], bytes]]] | None = None

    async def wake(self, events: Sequence[Event]) -> None:
        ours = [event.seq for event in events if event.branch == self.branch]
        if ours:
            self.state.head_seq = max(self.state.head_seq, *ours)
            self._woken.set()

    async def run(self) -> None:
        acked = await self.database.transaction(
            functools.partial(ensure_ack_row, branch_id=self.branch, now=utc_now())
        )
        self.state.acked_seq = acked
        head, _ = await self.database.reading(functools.partial(node_head, branch_id=self.branch))
        self.state.head_seq = max(self.state.head_seq, head)
        pause = RETRY_FIRST_S
        while True:
            self._woken.clear()
            try:
                sent = await self.exchange()
            except Exception as exc:  # never dies: the link, central or a read failed
                self._lost(exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_MAX_S)
                continue
            pause = RETRY_FIRST_S
            if sent >= self.batch_events:
                continue  # more waiting: no pause while catching up
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self.heartbeat_s)

    async def exchange(self) -> int:
        """One round: send the next batch (or only the head, as a heartbeat), take the ack.
        While catching up, the batch after this one is read and encoded meanwhile."""
        if self._after is None:
            response = await self.client.get(f"{NODES_PATH}{self.branch}/cursor")
            await self._acknowledged(_cursor(self._checked(response)))
        assert self._after is not None
        rows, body = await self._next_batch(self._after)
        sending = self.client.post(
            f"{NODES_PATH}{self.branch}/events",
            content=body,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        if len(rows) == self.batch_events:
            self._prefetch(rows[-1][1])
        cursor = _cursor(self._checked(await sending))
        await self._acknowledged(cursor, rows[-1] if rows else None)
        self.state.shipped_events += cursor.applied
        if len(rows) < self.batch_events:  # not while catching up
            await self.pull_down()
        return len(rows)

    async def _next_batch(self, after: int) -> tuple[list[Any], bytes]:
        """The rows after `after` and their request body: read ahead if that was `after`."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == after:
            return await ahead[1]
        if ahead is not None:
            ahead[1].cancel()
        return await self._read_batch(after)

    def _prefetch(self, after: int) -> None:
        self._ahead = (after, asyncio.ensure_future(self._read_batch(after)))

    async def _read_batch(self, after: int) -> tuple[list[Any], bytes]:
        rows, head, starts = await self.database.reading(functools.partial(self._read, after=after))
        return rows, encode_batch(rows, head, starts)

    async def pull_down(self, *, now_all: bool = False) -> int:
        """Take what is due (with `now_all`, everything) on each down channel (the same link,
        the other way); returns how many things changed at the node. Pulls take turns, so one
        asked for while the link's own runs finds what that one left."""
        async with self._pulling:
            changed = 0
            for channel in DOWN_CHANNELS.values():
                if not now_all and time.monotonic() < self._down_due.get(channel.name, 0.0):
                    continue
                response = await self.client.get(
                    f"{NODES_PATH}{self.branch}/down/{channel.name}",
                    params={"after": self._down_cursors.get(channel.name, 0)},
                )
                answer = self._checked(response)
                changed += await channel.apply(self.rigi, answer["items"])
                self._down_cursors[channel.name] = int(answer["cursor"])
                self._down_due[channel.name] = time.monotonic() + channel.every_s
            self.state.down_at = utc_now()
            self.state.down_changes += changed
            return changed

    def _read(self, conn: Any, after: int) -> tuple[Any, Any, dict[str, int]]:
        rows = unshipped(conn, self.branch, after, self.batch_events)
        new_epochs = sorted({row[0] for row in rows} - self._cursor_epochs)
        return rows, node_head(conn, self.branch), epoch_starts(conn, self.branch, new_epochs)

    async def _acknowledged(self, cursor: Cursor, last: Any = None) -> None:
        self._cursor_epochs = set(cursor.past_epochs) | ({cursor.epoch} if cursor.epoch else set())
        if last is not None and cursor.epoch == last[0] and cursor.seq == last[1]:
            after = int(last[1])  # everything sent is held: the common case, no read
        else:
            after = await self.database.reading(
                functools.partial(resume_after, branch_id=self.branch, cursor=cursor)
            )
        if after != self.state.acked_seq:
            await self.database.transaction(
                functools.partial(record_ack, branch_id=self.branch, seq=after, now=utc_now())
            )
        self._after = after
        self.state.acked_seq = after
        self.state.connected = True
        self.state.last_ack_at = utc_now()
        self.state.last_error = None

    def _checked(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise ValueError(f"central answered {response.status_code}: {response.text[:200]}")
        return decode_response(response.text)

    def _lost(self, exc: Exception) -> None:
        if self.state.connected:
            log.warning("the link to central is down: %s", exc)
        self.state.connected = False
        self.state.last_error = str(exc)[:200] or type(exc).__name__
        self._after = None  # ask central again where to resume
        if self._ahead is not None:
            self._ahead[1].cancel()
            self._ahead = None
        self._down_due.clear()  # and take what central changed meanwhile first

    def status(self, now: datetime) -> dict[str, Any]:
        """The node's link as its live view shows it."""
        return {
            "branch": self.branch,
            "connected": self.state.connected,
            "acked_seq": self.state.acked_seq,
            "waiting_events": max(0, self.state.head_seq - self.state.acked_seq),
            "last_ack_at": self.state.last_ack_at.isoformat() if self.state.last_ack_at else None,
            "silent_s": (
                round((now - self.state.last_ack_at).total_seconds(), 1)
                if self.state.last_ack_at
                else None
            ),
            "last_error": self.state.last_error,
            "down_at": self.state.down_at.isoformat() if self.state.down_at else None,
        }


def _cursor(answer: dict[str, Any]) -> Cursor:
    return Cursor(
        answer["epoch"], int(answer["seq"]), tuple(answer["past_epochs"]), int(answer["applied"])
    )


@contextlib.asynccontextmanager
async def node_replication(rigi: Rigi) -> AsyncIterator[None]:
    """Lifespan part: in branch-node mode, ship the branch's events to central."""
    settings = rigi.settings
    if not settings.is_node:
        yield
        return
    assert settings.node_branch and settings.node_token and settings.node_central_url
    rigi.catalog.branch(settings.node_branch)  # an unknown branch stops start-up by name
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per heartbeat
    client = httpx.AsyncClient(
        base_url=settings.node_central_url,
        headers={"Authorization": f"Bearer {settings.node_token.get_secret_value()}"},
        timeout=httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
    )
    shipper = Shipper(
        rigi,
        settings.node_branch,
        client,
        batch_events=settings.node_batch_events,
        heartbeat_s=settings.node_heartbeat_s,
    )
    rigi.node = shipper
    rigi.database.listeners.append(shipper.wake)
    task = asyncio.create_task(shipper.run(), name="node-shipper")
    task.add_done_callback(_report_death)
    started = time.monotonic()
    try:
        yield
    finally:
        rigi.database.listeners.remove(shipper.wake)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
        log.info("node shipper stopped after %.0f s", time.monotonic() - started)


def _report_death(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the node shipper stopped", exc_info=task.exception())
