"""The event bus contract shared by every backend.

The database is the source of truth (DESIGN.md, decision 1): the bus only *tells* other parts and
other processes that an event was committed. Delivery is best effort, so the contract's promise is
not "nothing is lost" but "you will know when something may have been lost": a `Gap` is delivered
whenever messages may be missing, and the subscriber then fills the gap from the event table.
"""

from __future__ import annotations

import abc
import asyncio
import collections
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

# Every Redis key and channel Rigi uses starts with this prefix, so Rigi can share a Redis with
# other programs and tests can clean up only what is theirs.
REDIS_PREFIX = "rigi:"
CHANNEL_PREFIX = REDIS_PREFIX + "bus:"

# A subscription holds at most this many undelivered items. A consumer that falls further behind
# (a stuck WebSocket, a slow display) resyncs from the database instead of growing memory or
# slowing the publisher.
DEFAULT_MAX_QUEUED = 1000

GAP_OVERFLOW = "overflow"
GAP_RECONNECTED = "reconnected"
GAP_UNCONFIRMED = "subscribe_unconfirmed"


class BusUnavailable(Exception):
    """The bus could not carry a message; the event is still safe in the database."""

    code = "bus_unavailable"


@dataclass(frozen=True)
class Message:
    """One message as published: the bus never parses `data`, it only carries it."""

    channel: str
    data: str
    # When the backend read it (time.perf_counter()), for the timeline; 0 if not stamped.
    received: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class Gap:
    """Messages on `channel` may have been lost before this point; resync from the database."""

    channel: str
    reason: str


class Subscription:
    """An async iterator over one channel's messages and gaps, with a bounded queue.

    Overflow rule: when an item arrives and `max_queued` items are already waiting, every queued
    item is dropped and a single `Gap(reason="overflow")` takes their place (an arriving gap keeps
    its own reason). The publisher never waits for a consumer, and a consumer that catches up
    learns that it must resync. Iteration ends once the subscription is closed (its context
    exited or the bus disconnected) and the items already queued have been read.

    One task should iterate a subscription; the queue is not meant to be shared by consumers.
    """

    def __init__(self, channel: str, *, max_queued: int = DEFAULT_MAX_QUEUED) -> None:
        if max_queued < 1:
            raise ValueError("max_queued must be at least 1")
        self.channel = channel
        self._max_queued = max_queued
        self._items: collections.deque[Message | Gap] = collections.deque()
        self._wakeup = asyncio.Event()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def _deliver(self, item: Message | Gap) -> None:
        """Queue one item without ever blocking the caller (the publisher or the reader task)."""
        if self._closed:
            return
        if len(self._items) >= self._max_queued:
            self._items.clear()
            if isinstance(item, Message):
                item = Gap(self.channel, GAP_OVERFLOW)
        self._items.append(item)
        self._wakeup.set()

    def _close(self) -> None:
        """End iteration once the queued items are read; further deliveries are ignored."""
        self._closed = True
        self._wakeup.set()

    def __aiter__(self) -> AsyncIterator[Message | Gap]:
        return self

    async def __anext__(self) -> Message | Gap:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._items.popleft()


class Bus(abc.ABC):
    """Publish/subscribe between parts of one process or between processes.

    Backends implement `connect`, `disconnect`, `publish` and the two hooks that attach and detach
    a subscription; `subscribe` is shared so every backend has the same life cycle.
    """

    def __init__(self, *, max_queued: int = DEFAULT_MAX_QUEUED) -> None:
        self._max_queued = max_queued
        self._connected = False

    @property
    def connected(self) -> bool:
        """True between `connect()` and `disconnect()` (not whether Redis is reachable now)."""
        return self._connected

    @abc.abstractmethod
    async def connect(self) -> None:
        """Make the bus ready; call once at start-up, before subscribing or publishing."""

    @abc.abstractmethod
    async def disconnect(self) -> None:
        """Stop the bus and end the iteration of every open subscription."""

    @abc.abstractmethod
    async def publish(self, channel: str, message: str) -> None:
        """Send `message` to the subscribers of `channel` in every process.

        Never blocks for long; raises `BusUnavailable` when the message cannot be sent. The caller
        logs it and goes on: the event is already committed and subscribers will resync.
        """

    @abc.abstractmethod
    async def _attach(self, subscription: Subscription) -> None:
        """Start delivering the subscription's channel to it; must not raise on a backend outage."""

    @abc.abstractmethod
    async def _detach(self, subscription: Subscription) -> None:
        """Stop delivering to the subscription; must never raise, it runs during cleanup."""

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[Subscription]:
        """Subscribe to `channel` for the duration of an `async with` block.

        Messages published after entering the block are delivered (or a `Gap` says they may not
        have been), so a subscriber can subscribe first and then read the database, then apply
        live messages idempotently by `seq`.
        """
        return self._subscription(channel)

    @asynccontextmanager
    async def _subscription(self, channel: str) -> AsyncIterator[Subscription]:
        if not self._connected:
            raise BusUnavailable("the bus is not connected; call connect() first")
        subscription = Subscription(channel, max_queued=self._max_queued)
        await self._attach(subscription)
        try:
            yield subscription
        finally:
            subscription._close()
            # _detach never raises, so the error that ended the block (if any) is the one seen.
            await self._detach(subscription)


async def told_or_polled(bus: Bus, channel: str, poll_s: float) -> AsyncIterator[Message | None]:
    """Follow `channel`: each message as it comes, or None after `poll_s` of silence and for a
    gap. On None the follower reads the truth from the database, since the bus only tells
    (DESIGN.md, decision 1). Ends when the bus closes the subscription."""
    async with bus.subscribe(channel) as subscription:
        items = aiter(subscription)
        while True:
            try:
                item = await asyncio.wait_for(anext(items), poll_s)
            except TimeoutError:
                yield None
                continue
            except StopAsyncIteration:
                return
            yield None if isinstance(item, Gap) else item
