"""The Redis bus: carries events between the processes of a scaled-out Rigi (`redis://…`).

Redis pub/sub drops everything while a connection is down, so this backend is built around
noticing that: one subscriber connection per process is read by one owned task, which reconnects
with bounded exponential backoff, resubscribes every channel and then hands every subscription a
`Gap`, so subscribers resync from the database instead of waiting for messages that will never come.
Publishing uses a separate connection with short timeouts, so a Redis outage costs a publisher at
most about `publish_timeout` seconds and a `BusUnavailable`, never a hang.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from queue_server.bus.base import (
    CHANNEL_PREFIX,
    DEFAULT_MAX_QUEUED,
    GAP_RECONNECTED,
    GAP_UNCONFIRMED,
    Bus,
    BusUnavailable,
    Gap,
    Message,
    Subscription,
)
from queue_server.ops.metrics import BUS_RECONNECTS

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT = 1.0  # seconds a publish may take in all, retry included
CONNECT_TIMEOUT = 2.0  # seconds to open a connection or to get an answer to one command
IDLE_PING_INTERVAL = 5.0  # a silent subscriber connection is PINGed after this many seconds
BACKOFF_INITIAL = 0.1  # first reconnect delay; doubles per failed attempt ...
BACKOFF_MAX = 5.0  # ... up to this
START_ATTEMPTS = 5  # connect() gives up (BusUnavailable) after this many failed attempts

# What a lost or refused connection looks like: redis-py wraps most of these, but not all.
_CONNECTION_ERRORS = (RedisError, OSError, TimeoutError)


def _redacted(url: str) -> str:
    """The URL without its password, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


class RedisBus(Bus):
    """One subscriber connection and one reader task per process, fanning out locally."""

    def __init__(
        self,
        url: str,
        *,
        max_queued: int = DEFAULT_MAX_QUEUED,
        channel_prefix: str = CHANNEL_PREFIX,
        publish_timeout: float = PUBLISH_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        idle_ping_interval: float = IDLE_PING_INTERVAL,
        backoff_initial: float = BACKOFF_INITIAL,
        backoff_max: float = BACKOFF_MAX,
        start_attempts: int = START_ATTEMPTS,
    ) -> None:
        super().__init__(max_queued=max_queued)
        self._url = url
        self._prefix = channel_prefix
        self._publish_timeout = publish_timeout
        self._connect_timeout = connect_timeout
        self._idle_ping_interval = idle_ping_interval
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._start_attempts = start_attempts

        self._subscriptions: dict[str, set[Subscription]] = {}
        self._publisher: Redis | None = None
        self._pool: ConnectionPool | None = None  # only a factory for the subscriber connection
        self._conn: AbstractConnection | None = None
        self._online = False  # the subscriber connection is up and resubscribed
        self._redis_channels: set[str] = set()  # local channel names subscribed on _conn
        self._confirmations: dict[str, asyncio.Future[bool | None]] = {}
        self._commands: asyncio.Lock | None = None  # orders SUBSCRIBE/UNSUBSCRIBE/reconnect
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"RedisBus({_redacted(self._url)!r})"

    # -- life cycle -------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open both connections, retrying a few times; raise `BusUnavailable` if Redis is away.

        Failing at start-up names the problem at once; outages after start-up are survived.
        """
        if self._connected:
            return
        self._commands = asyncio.Lock()
        self._publisher = Redis.from_url(
            self._url,
            decode_responses=True,
            socket_timeout=self._publish_timeout,
            socket_connect_timeout=self._publish_timeout,
            # One retry replaces a pooled connection that died while Redis restarted.
            retry=Retry(NoBackoff(), 1),
            health_check_interval=0,
        )
        self._pool = ConnectionPool.from_url(
            self._url,
            # RESP2 on purpose: redis-py speaks RESP3 by default, where pub/sub frames arrive as
            # push messages that read_response() hands to a callback instead of returning them.
            protocol=2,
            decode_responses=True,
            socket_timeout=self._connect_timeout,
            socket_connect_timeout=self._connect_timeout,
            health_check_interval=0,
        )
        if str(self._pool.connection_kwargs.get("protocol", 2)) != "2":
            await self._close_clients()
            raise ValueError("the Redis bus URL must not ask for protocol=3 (pub/sub reads RESP2)")
        delay = self._backoff_initial
        for attempt in range(1, self._start_attempts + 1):
            try:
                self._conn = await self._open_subscriber(())
                break
            except _CONNECTION_ERRORS as exc:
                log.warning(
                    "bus: cannot reach %s (attempt %d of %d): %s",
                    _redacted(self._url),
                    attempt,
                    self._start_attempts,
                    exc,
                )
                if attempt == self._start_attempts:
                    await self._close_clients()
                    raise BusUnavailable(
                        f"cannot reach Redis at {_redacted(self._url)}: {exc}"
                    ) from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max)
        self._online = True
        self._connected = True
        self._spawn(self._read_forever(), name="rigi-bus-reader")
        log.info("bus: connected to %s", _redacted(self._url))

    async def disconnect(self) -> None:
        """Stop the reader, end every subscription's iteration, close both connections."""
        if not self._connected:
            return
        self._connected = False
        self._online = False
        tasks = tuple(self._tasks)
        for task in tasks:
            task.cancel("bus disconnect")
        await asyncio.gather(*tasks, return_exceptions=True)
        self._close_all_subscriptions()
        self._settle_confirmations()
        await self._close_clients()
        log.info("bus: disconnected from %s", _redacted(self._url))

    async def _close_clients(self) -> None:
        """Close what connect() opened; errors are logged, since this runs during shutdown."""
        conn, self._conn = self._conn, None
        publisher, self._publisher = self._publisher, None
        pool, self._pool = self._pool, None
        if conn is not None:
            await self._drop(conn)
        try:
            if publisher is not None:
                await publisher.aclose()
            if pool is not None:
                await pool.aclose()
        except _CONNECTION_ERRORS as exc:
            log.warning("bus: error while closing Redis clients: %s", exc)

    def _close_all_subscriptions(self) -> None:
        subscriptions, self._subscriptions = self._subscriptions, {}
        for subscribers in subscriptions.values():
            for subscription in subscribers:
                subscription._close()

    # -- owned tasks ------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        log.error("bus: task %s failed", task.get_name(), exc_info=exc)
        # Without the reader nothing would ever arrive: end iteration rather than hang subscribers.
        self._online = False
        self._close_all_subscriptions()
        self._settle_confirmations()

    # -- publishing -------------------------------------------------------------------------

    async def publish(self, channel: str, message: str) -> None:
        if not self._connected or self._publisher is None:
            raise BusUnavailable("the bus is not connected")
        try:
            async with asyncio.timeout(self._publish_timeout):
                await self._publisher.publish(self._prefix + channel, message)
        except _CONNECTION_ERRORS as exc:
            reason = str(exc) or type(exc).__name__
            raise BusUnavailable(
                f"cannot publish on {channel!r} via {_redacted(self._url)}: {reason}"
            ) from exc

    # -- subscribing ------------------------------------------------------------------------

    async def _attach(self, subscription: Subscription) -> None:
        """Register locally, then SUBSCRIBE in Redis and wait for its confirmation.

        Waiting for the confirmation is what lets a subscriber read the database right after
        subscribing without a window in which an event could slip between the two. While Redis is
        down the subscription is only registered; the reconnect resubscribes it and sends a Gap.
        """
        channel = subscription.channel
        self._subscriptions.setdefault(channel, set()).add(subscription)
        assert self._commands is not None
        async with self._commands:
            if not self._online or channel in self._redis_channels:
                return
            if channel not in self._subscriptions:  # left again while we waited for the lock
                return
            confirmed = await self._subscribe_and_wait(channel)
            if confirmed is None:
                return  # connection lost: the reconnect resubscribes and sends a Gap
            self._redis_channels.add(channel)
            if not confirmed:
                # The SUBSCRIBE was sent, so Redis will honour it, but we cannot say since when.
                log.warning("bus: SUBSCRIBE %s not confirmed in time", channel)
                subscription._deliver(Gap(channel, GAP_UNCONFIRMED))

    async def _subscribe_and_wait(self, channel: str) -> bool | None:
        """True when Redis confirmed, False on a timeout, None if the connection was lost."""
        conn = self._conn
        key = self._prefix + channel
        future = self._confirmations.get(key)
        if future is None or future.done():
            future = asyncio.get_running_loop().create_future()
            self._confirmations[key] = future
        try:
            await self._send(conn, "SUBSCRIBE", key)
            async with asyncio.timeout(self._connect_timeout):
                return await future
        except TimeoutError:
            return False
        except _CONNECTION_ERRORS as exc:
            log.warning("bus: SUBSCRIBE %s failed: %s", channel, exc)
            return None
        finally:
            if self._confirmations.get(key) is future:
                del self._confirmations[key]

    async def _detach(self, subscription: Subscription) -> None:
        channel = subscription.channel
        subscribers = self._subscriptions.get(channel)
        if subscribers is None:
            return
        subscribers.discard(subscription)
        if subscribers:
            return
        del self._subscriptions[channel]
        if self._commands is None:
            return
        async with self._commands:
            if channel in self._subscriptions or channel not in self._redis_channels:
                return  # someone subscribed again meanwhile, or Redis never knew the channel
            self._redis_channels.discard(channel)
            if not self._online:
                return
            try:
                await self._send(self._conn, "UNSUBSCRIBE", self._prefix + channel)
            except _CONNECTION_ERRORS as exc:
                # Harmless: the reader notices the lost connection, and a stray message for a
                # channel without local subscribers is ignored.
                log.warning("bus: UNSUBSCRIBE %s failed: %s", channel, exc)

    @staticmethod
    async def _send(conn: AbstractConnection | None, *args: str) -> None:
        """Send one command on the subscriber connection, never reconnecting it behind our back."""
        if conn is None or not conn.is_connected:
            raise RedisConnectionError("subscriber connection is down")
        await conn.send_command(*args)

    # -- the reader -------------------------------------------------------------------------

    async def _read_forever(self) -> None:
        """Read the subscriber connection until cancelled; reconnect whenever it is lost."""
        while True:
            try:
                await self._read_until_lost()
            except _CONNECTION_ERRORS as exc:
                log.warning(
                    "bus: lost the subscriber connection to %s: %s", _redacted(self._url), exc
                )
            except Exception:
                # A bug, not an outage; log it and rebuild the connection rather than stop.
                log.exception("bus: the reader failed; reconnecting")
            await self._go_offline()
            await self._reconnect()

    async def _read_until_lost(self) -> None:
        conn = self._conn
        if conn is None:
            raise RedisConnectionError("no subscriber connection")
        awaiting_pong = False
        while True:
            response = await conn.read_response(timeout=self._idle_ping_interval)
            if response is None:
                # Silence may be a dead peer that never sent a FIN: ask, and give up if no answer.
                if awaiting_pong:
                    raise TimeoutError("no answer to PING on the subscriber connection")
                await self._send(conn, "PING")
                awaiting_pong = True
                continue
            awaiting_pong = False
            self._dispatch(response)

    def _dispatch(self, response: Any) -> str | None:
        """Hand one pub/sub frame to local subscriptions; return the channel of a confirmation."""
        if not isinstance(response, list) or len(response) < 2:
            return None  # PONG and other replies
        kind: str = response[0]
        key: str = response[1]
        if kind == "subscribe":
            future = self._confirmations.get(key)
            if future is not None and not future.done():
                future.set_result(True)
            return key
        if kind != "message" or len(response) < 3 or not key.startswith(self._prefix):
            return None
        channel = key[len(self._prefix) :]
        item = Message(channel, response[2], time.perf_counter())
        for subscription in tuple(self._subscriptions.get(channel, ())):
            subscription._deliver(item)
        return None

    async def _go_offline(self) -> None:
        self._online = False
        self._redis_channels.clear()
        self._settle_confirmations()
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._drop(conn)

    def _settle_confirmations(self) -> None:
        """Wake every subscribe() waiting for a confirmation that will not come."""
        confirmations, self._confirmations = self._confirmations, {}
        for future in confirmations.values():
            if not future.done():
                future.set_result(None)

    async def _reconnect(self) -> None:
        """Retry with bounded exponential backoff until Redis answers, then resubscribe and Gap."""
        assert self._commands is not None
        delay = self._backoff_initial
        attempt = 0
        while True:
            attempt += 1
            await asyncio.sleep(delay)
            async with self._commands:
                channels = set(self._subscriptions)
                try:
                    conn = await self._open_subscriber(channels)
                except _CONNECTION_ERRORS as exc:
                    delay = min(delay * 2, self._backoff_max)
                    log.warning(
                        "bus: reconnect attempt %d to %s failed: %s; next in %.1f s",
                        attempt,
                        _redacted(self._url),
                        exc or type(exc).__name__,
                        delay,
                    )
                    continue
                self._conn = conn
                self._redis_channels = channels
                self._online = True
            BUS_RECONNECTS.inc()
            log.warning(
                "bus: reconnected to %s after %d attempt(s); resubscribed %d channel(s)",
                _redacted(self._url),
                attempt,
                len(channels),
            )
            for channel, subscribers in tuple(self._subscriptions.items()):
                for subscription in tuple(subscribers):
                    subscription._deliver(Gap(channel, GAP_RECONNECTED))
            return

    async def _open_subscriber(self, channels: Iterable[str]) -> AbstractConnection:
        """A new subscriber connection, subscribed to `channels` with every one confirmed."""
        assert self._pool is not None
        conn: AbstractConnection = self._pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.connect()  # type: ignore[no-untyped-call]
            pending = {self._prefix + channel for channel in channels}
            if pending:
                await conn.send_command("SUBSCRIBE", *sorted(pending))
            while pending:
                response = await conn.read_response(timeout=self._connect_timeout)
                if response is None:
                    raise TimeoutError("Redis did not confirm SUBSCRIBE")
                pending.discard(self._dispatch(response))  # messages in between are delivered
        except BaseException:
            await self._drop(conn)
            raise
        return conn

    @staticmethod
    async def _drop(conn: AbstractConnection) -> None:
        """Close a connection that may already be broken, without raising."""
        try:
            await conn.disconnect(nowait=True)
        except _CONNECTION_ERRORS as exc:
            log.debug("bus: error while closing a connection: %s", exc)
