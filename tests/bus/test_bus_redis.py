"""What only the Redis backend promises: crossing processes and surviving a Redis restart."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from queue_server.bus import (
    GAP_RECONNECTED,
    Bus,
    BusUnavailable,
    Gap,
    Message,
    Subscription,
    create_bus,
)
from tests.support import RedisServer

BusFactory = Callable[..., Awaitable[Bus]]

pytestmark = pytest.mark.redis

GUARD = 10.0  # a guard against a hang, never a measurement
POLL = 0.05


async def take(subscription: Subscription, count: int) -> list[Message | Gap]:
    items: list[Message | Gap] = []
    async with asyncio.timeout(GUARD):
        async for item in subscription:
            items.append(item)
            if len(items) == count:
                break
    return items


async def answers(url: str) -> bool:
    client = aioredis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(await client.ping())
    except (aioredis.RedisError, OSError):
        return False
    finally:
        await client.aclose()


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll outside state (another process, the Redis server) until `check` holds."""
    for _ in range(int(GUARD / POLL)):
        if await check():
            return
        await asyncio.sleep(POLL)
    pytest.fail(f"gave up waiting: {what}")


@pytest.fixture
async def process_a(make_redis_bus: BusFactory) -> Bus:
    return await make_redis_bus()


@pytest.fixture
async def process_b(make_redis_bus: BusFactory) -> Bus:
    return await make_redis_bus()


async def test_two_processes_see_each_others_events(process_a: Bus, process_b: Bus) -> None:
    async with (
        process_a.subscribe("board:tbilisi") as in_a,
        process_b.subscribe("board:tbilisi") as in_b,
    ):
        await process_a.publish("board:tbilisi", "called by A")
        await process_b.publish("board:tbilisi", "called by B")
        expected = [
            Message("board:tbilisi", "called by A"),
            Message("board:tbilisi", "called by B"),
        ]
        assert await take(in_a, 2) == expected
        assert await take(in_b, 2) == expected


async def test_leaving_the_last_subscription_unsubscribes_in_redis(
    process_a: Bus, redis_url: str, channel_prefix: str
) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    key = channel_prefix + "board:poti"
    try:
        async with process_a.subscribe("board:poti"), process_a.subscribe("board:poti"):
            # One Redis subscription per process, however many local subscribers.
            assert await client.pubsub_numsub(key) == [(key, 1)]

        async def unsubscribed() -> bool:
            return await client.pubsub_numsub(key) == [(key, 0)]

        await eventually(unsubscribed, "UNSUBSCRIBE to reach Redis")
    finally:
        await client.aclose()


async def test_an_idle_subscription_survives_its_keepalive_pings(
    make_redis_bus: BusFactory,
) -> None:
    bus = await make_redis_bus(idle_ping_interval=0.05)
    async with bus.subscribe("board:senaki") as board:
        await asyncio.sleep(0.3)  # several PING/PONG rounds with nothing to deliver
        await bus.publish("board:senaki", "after the quiet")
        assert await take(board, 1) == [Message("board:senaki", "after the quiet")]


async def test_start_up_fails_clearly_when_redis_is_unreachable(unused_tcp_port: int) -> None:
    bus = create_bus(
        f"redis://:s3cret@127.0.0.1:{unused_tcp_port}/15", start_attempts=2, backoff_initial=0.01
    )
    with pytest.raises(BusUnavailable, match="cannot reach Redis") as failure:
        await bus.connect()
    assert "s3cret" not in str(failure.value)
    assert not bus.connected


async def test_a_redis_restart_gives_subscribers_a_gap_then_live_events(
    make_own_redis_bus: BusFactory, redis_server: RedisServer
) -> None:
    # The test's own Redis: stopping the one in RIGI_TEST_REDIS_URL would hit other users of it.
    process_a = await make_own_redis_bus()
    process_b = await make_own_redis_bus()
    async with (
        process_a.subscribe("board:tbilisi") as before_outage,
        process_b.subscribe("board:tbilisi") as elsewhere,
    ):
        await asyncio.to_thread(redis_server.stop)
        assert not await answers(redis_server.url)

        # Redis is down: publishing fails fast and plainly, and subscribing still works.
        async with asyncio.timeout(GUARD):
            with pytest.raises(BusUnavailable):
                await process_a.publish("board:tbilisi", "lost in the outage")
        async with process_a.subscribe("board:tbilisi") as during_outage:
            await asyncio.to_thread(redis_server.start)

            # Everyone learns that messages may be missing, then live events flow again.
            gap = Gap("board:tbilisi", GAP_RECONNECTED)
            assert await take(before_outage, 1) == [gap]
            assert await take(during_outage, 1) == [gap]
            assert await take(elsewhere, 1) == [gap]
            await process_a.publish("board:tbilisi", "from A after")
            await process_b.publish("board:tbilisi", "from B after")
            after = [
                Message("board:tbilisi", "from A after"),
                Message("board:tbilisi", "from B after"),
            ]
            assert await take(before_outage, 2) == after
            assert await take(during_outage, 2) == after
            assert await take(elsewhere, 2) == after
