"""The per-process hub between the bus and the WebSocket connections of this process.

Every process publishes its committed events on the bus and receives everyone's (its own
included) from it. Per branch the hub forwards events strictly in `seq` order: a duplicate is
dropped, a gap (an event lost while Redis was away, or overtaken) is filled from the event table,
so a connection sees each event once and in order. What waits for a connection is bounded; one
that overflows is closed so that it resyncs, and never slows the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from queue_server.bus.base import Bus, BusUnavailable, Gap
from queue_server.ops import timeline
from queue_server.ops.metrics import GAP_FILLS, SEND_QUEUE_DROPS
from queue_server.realtime.eager import start_eagerly
from queue_server.store.database import Database
from queue_server.store.events import Event, events_after, stream_head

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "branch:"
SEND_QUEUE_LIMIT = 512  # items a connection may fall behind before it is dropped
GAP_FILL_LIMIT = 5_000


def channel_of(branch_id: str) -> str:
    return CHANNEL_PREFIX + branch_id


class Beat:
    """Tells an idle connection that a heartbeat is due (`Listener.beat`)."""


BEAT = Beat()

# What a connection is handed: an event; BEAT: nothing, but look at `ping_due`; None: close
# the connection so that it resyncs.
Item = Event | Beat | None
Handler = Callable[[Item], Awaitable[bool]]


@dataclass(eq=False)
class Listener:
    """One connection's view of a branch stream: what it has been sent and what waits.

    The hub `offer`s items; the connection `consume`s them with a handler. An idle listener
    costs no task: an offer starts a pump that hands the waiting items to the handler, in
    order, until none are left. An `eager` listener's pump starts inside the offer itself
    (`start_eagerly`): for a lobby board, whose handler is a plain send, the hub then writes
    each socket in one pass and wakes no task, unless a send has to wait for its client.
    """

    branch: str
    accepts: Callable[[Event], bool] = lambda event: True
    eager: bool = False
    last_seq: int = 0
    epoch: str | None = None
    overflowed: bool = False
    ping_due: bool = False
    pending: deque[Item] = field(default_factory=deque)
    _handler: Handler | None = None
    _finished: asyncio.Future[None] | None = None
    _pumping: bool = False
    _pump_task: asyncio.Task[None] | None = None

    def offer(self, item: Event | Beat) -> None:
        if self.overflowed:
            return
        if len(self.pending) >= SEND_QUEUE_LIMIT:
            self._overflow()
            return
        self.pending.append(item)
        self._kick()

    @property
    def sending(self) -> bool:
        """Its items are being handed over in a task of its own (a send that had to wait)."""
        return self._pump_task is not None

    def beat(self) -> None:
        """A heartbeat is due. A busy connection sees the flag with its next item; an idle one
        is handed a BEAT. (A BEAT only ever goes to an empty listener, so it is never queued
        behind an event: a feed that refreshes after the last waiting event still sees it.)"""
        self.ping_due = True
        if not self.pending:
            self.offer(BEAT)

    def close(self) -> None:
        """Ask the connection to close and resync, after what it was already handed."""
        if not self.overflowed:
            self.pending.append(None)
            self._kick()

    def consume(self, handler: Handler) -> asyncio.Future[None]:
        """Hand every item to `handler`, in order, from now on; the handler returns False to
        stop. The future is done when it stops, when it raises (with that error), or when
        the listener overflows: then the connection is too slow and must resync."""
        self._finished = asyncio.get_running_loop().create_future()
        self._handler = handler
        self._kick()
        return self._finished

    def stop(self) -> None:
        """The connection is ending: hand nothing more, and cancel a handler that waits."""
        self._handler = None
        if self._pump_task is not None:
            self._pump_task.cancel()

    def _overflow(self) -> None:
        # The handler may be stuck in a send to a client that stopped reading, so it is
        # cancelled rather than told through the items it no longer takes.
        self.overflowed = True
        SEND_QUEUE_DROPS.inc()
        self.pending.clear()
        self.stop()
        self._finish(None)

    def _kick(self) -> None:
        if self._pumping or self._handler is None or not self.pending:
            return
        self._pumping = True
        if self.eager:
            self._pump_task = start_eagerly(self._pump())
        else:
            self._pump_task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        try:
            while self.pending and self._handler is not None:
                if not await self._handler(self.pending.popleft()):
                    self._handler = None
                    self._finish(None)
        except Exception as error:
            self._handler = None
            self._finish(error)
        finally:
            self._pumping = False
            self._pump_task = None

    def _finish(self, error: Exception | None) -> None:
        if self._finished is None or self._finished.done():
            return
        if error is None:
            self._finished.set_result(None)
        else:
            self._finished.set_exception(error)


@dataclass
class _BranchStream:
    epoch: str | None = None
    last_seq: int = 0
    listeners: set[Listener] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    task: asyncio.Task[None] | None = None


class Hub:
    """Fans a branch's events out to this process's connections, in order, exactly once."""

    def __init__(self, bus: Bus, database: Database) -> None:
        self.bus = bus
        self.database = database
        self._streams: dict[str, _BranchStream] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # Awaited for each event from the bus before it reaches a connection here (the live
        # organisation swaps its catalog first, so a kiosk told of an edit reads the new one).
        self.before_forward: list[Callable[[Event], Awaitable[None]]] = []

    async def publish(self, events: Sequence[Event]) -> None:
        """Called after a commit. Local connections are served at once; the bus carries the
        events to other processes (and back here, where duplicates are dropped)."""
        for event in events:
            stream = self._streams.get(event.branch)
            if stream is not None:
                async with stream.lock:
                    await self._forward(stream, event)
            try:
                # Stamped as it is handed over: another process may read it off the bus before
                # this one's publish returns, and the timeline keeps cause before effect.
                handed = timeline.now()
                await self.bus.publish(channel_of(event.branch), event.to_json())
                timeline.mark("published", event.branch, event.seq, handed)
            except BusUnavailable:
                log.warning("bus unavailable: other processes catch up from the event table")

    @contextlib.asynccontextmanager
    async def listen(self, listener: Listener) -> AsyncIterator[_BranchStream]:
        """Register a connection. It is registered before the caller reads its replay or
        snapshot, so no event falls between the two; the listener skips what it already has."""
        stream = await self._stream(listener.branch)
        async with stream.lock:
            stream.listeners.add(listener)
        try:
            yield stream
        finally:
            stream.listeners.discard(listener)
            if not stream.listeners and stream.task is not None:
                stream.task.cancel()
                self._streams.pop(listener.branch, None)

    async def beat(self, interval_s: float) -> None:
        """Every `interval_s`, tell each connection of this process that a heartbeat is due:
        one timer for the process instead of one per connection and message."""
        while True:
            await asyncio.sleep(interval_s)
            for stream in list(self._streams.values()):
                for listener in list(stream.listeners):
                    listener.beat()

    async def close(self) -> None:
        for stream in self._streams.values():
            for listener in list(stream.listeners):
                listener.close()
            if stream.task is not None:
                stream.task.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _stream(self, branch: str) -> _BranchStream:
        stream = self._streams.get(branch)
        if stream is not None:
            return stream
        stream = _BranchStream()
        self._streams[branch] = stream
        async with self.database.read() as conn:
            head = await stream_head(conn, branch)
        if head is not None:
            stream.epoch, stream.last_seq = head.epoch, head.seq
        ready = asyncio.Event()
        stream.task = self._own(self._follow(branch, stream, ready))
        await ready.wait()
        return stream

    async def _follow(self, branch: str, stream: _BranchStream, ready: asyncio.Event) -> None:
        """Read the branch's channel on the bus for as long as anybody here listens. If the
        bus gives up, every listener here is closed so that it reconnects and resyncs: nobody
        is left waiting on a dead stream."""
        try:
            async with self.bus.subscribe(channel_of(branch)) as subscription:
                ready.set()
                async for message in subscription:
                    async with stream.lock:
                        if isinstance(message, Gap):
                            await self._fill(stream, branch, None)
                            continue
                        event = Event.from_json(message.data)
                        if timeline.enabled():
                            timeline.mark(
                                "bus", branch, event.seq, message.received, timeline.now()
                            )
                        for hook in self.before_forward:
                            await hook(event)
                        await self._forward(stream, event)
        finally:
            ready.set()
            if self._streams.get(branch) is stream:
                del self._streams[branch]
            for listener in list(stream.listeners):
                listener.close()

    async def _forward(self, stream: _BranchStream, event: Event) -> None:
        if stream.epoch is not None and event.epoch != stream.epoch:
            log.warning("branch %s changed epoch: listeners resync", event.branch)
            stream.epoch, stream.last_seq = event.epoch, event.seq
            for listener in list(stream.listeners):
                listener.close()
            return
        stream.epoch = event.epoch
        if event.seq <= stream.last_seq:
            return  # already forwarded (our own event coming back from the bus)
        if event.seq > stream.last_seq + 1:
            await self._fill(stream, event.branch, event.seq - 1)
        if event.seq == stream.last_seq + 1:
            self._deliver(stream, event)

    async def _fill(self, stream: _BranchStream, branch: str, up_to: int | None) -> None:
        """Forward what the bus lost, read back from the event table."""
        async with self.database.read() as conn:
            missed = await events_after(conn, branch, stream.last_seq, GAP_FILL_LIMIT)
        GAP_FILLS.labels("too_old" if missed is None else "filled").inc()
        if missed is None:
            log.warning("branch %s: gap too old to fill, listeners resync", branch)
            for listener in list(stream.listeners):
                listener.close()
            async with self.database.read() as conn:
                head = await stream_head(conn, branch)
            if head:
                stream.epoch, stream.last_seq = head.epoch, head.seq
            return
        for event in missed:
            if up_to is not None and event.seq > up_to:
                break
            self._deliver(stream, event)

    def _deliver(self, stream: _BranchStream, event: Event) -> None:
        stream.last_seq = event.seq
        recording = timeline.enabled()  # off in production: no count on the fan-out's path
        started = timeline.now()
        waiting = 0
        for listener in list(stream.listeners):
            if event.seq > listener.last_seq and listener.accepts(event):
                listener.offer(event)
                if recording:
                    waiting += listener.sending
        if recording:
            timeline.mark(
                "offer",
                event.branch,
                event.seq,
                started,
                timeline.now(),
                len(stream.listeners),
                waiting,
            )

    def _own(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("hub task failed", exc_info=task.exception())
