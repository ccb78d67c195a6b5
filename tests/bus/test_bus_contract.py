"""The bus contract, told as the stories of the realtime layer; every test runs on each backend."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable

import pytest

from queue_server.bus import (
    GAP_OVERFLOW,
    Bus,
    BusUnavailable,
    Gap,
    Message,
    Subscription,
    create_bus,
)

BusFactory = Callable[..., Awaitable[Bus]]

# A guard against a hang, never a measurement: every awaited outcome here arrives in milliseconds.
GUARD = 10.0


async def take(subscription: Subscription, count: int) -> list[Message | Gap]:
    """The next `count` items of a subscription, failing the test instead of hanging."""
    items: list[Message | Gap] = []
    async with asyncio.timeout(GUARD):
        async for item in subscription:
            items.append(item)
            if len(items) == count:
                break
    return items


async def rest(subscription: Subscription) -> list[Message | Gap]:
    """What is still queued in a closed subscription (iteration must end by itself)."""
    async with asyncio.timeout(GUARD):
        return [item async for item in subscription]


async def test_subscriber_receives_messages_in_published_order(bus: Bus) -> None:
    async with bus.subscribe("board:tbilisi") as board:
        for seq in range(1, 6):
            await bus.publish("board:tbilisi", f'{{"seq": {seq}}}')
        received = await take(board, 5)
    assert received == [Message("board:tbilisi", f'{{"seq": {seq}}}') for seq in range(1, 6)]


async def test_every_display_of_a_branch_gets_each_call(bus: Bus) -> None:
    async with bus.subscribe("board:rustavi") as lobby, bus.subscribe("board:rustavi") as hall:
        await bus.publish("board:rustavi", "A012 → 5")
        await bus.publish("board:rustavi", "B003 → 2")
        expected = [Message("board:rustavi", "A012 → 5"), Message("board:rustavi", "B003 → 2")]
        assert await take(lobby, 2) == expected
        assert await take(hall, 2) == expected


async def test_a_branch_never_sees_another_branchs_events(bus: Bus) -> None:
    async with bus.subscribe("board:batumi") as batumi, bus.subscribe("board:kutaisi") as kutaisi:
        await bus.publish("board:batumi", "batumi-1")
        await bus.publish("board:kutaisi", "kutaisi-1")
        await bus.publish("board:batumi", "batumi-2")
        assert await take(kutaisi, 1) == [Message("board:kutaisi", "kutaisi-1")]
        assert await take(batumi, 2) == [
            Message("board:batumi", "batumi-1"),
            Message("board:batumi", "batumi-2"),
        ]


async def test_a_closed_display_stops_receiving_while_others_go_on(bus: Bus) -> None:
    async with bus.subscribe("board:gori") as staying:
        async with bus.subscribe("board:gori") as leaving:
            await bus.publish("board:gori", "before")
            assert await take(leaving, 1) == [Message("board:gori", "before")]
        await bus.publish("board:gori", "after")
        assert await take(staying, 2) == [
            Message("board:gori", "before"),
            Message("board:gori", "after"),
        ]
    assert leaving.closed
    assert await rest(leaving) == []


async def test_a_slow_display_gets_a_gap_and_never_stalls_the_others(make_bus: BusFactory) -> None:
    bus = await make_bus(max_queued=3)
    published = [f"event-{seq}" for seq in range(10)]
    async with (
        bus.subscribe("board:zugdidi") as slow,
        bus.subscribe("board:zugdidi") as fast,
        bus.subscribe("marker") as marker,
    ):
        fast_received: list[Message | Gap] = []
        for data in published:
            await bus.publish("board:zugdidi", data)
            # The fast display keeps up: it reads each event as it comes.
            fast_received += await take(fast, 1)
        # Sent after the events on the same connection, so once it arrives they all have.
        await bus.publish("marker", "done")
        await take(marker, 1)
    slow_received = await rest(slow)

    assert fast_received == [Message("board:zugdidi", data) for data in published]
    assert slow_received[0] == Gap("board:zugdidi", GAP_OVERFLOW)
    kept = [item.data for item in slow_received if isinstance(item, Message)]
    assert len(kept) < len(published)
    assert kept == sorted(kept, key=published.index)  # what survives keeps its order


async def test_disconnect_ends_every_subscribers_iteration(bus: Bus) -> None:
    async def listen(channel: str) -> list[Message | Gap]:
        async with bus.subscribe(channel) as subscription:
            ready.release()
            return [item async for item in subscription]

    ready = asyncio.Semaphore(0)
    listeners = [asyncio.create_task(listen(channel)) for channel in ("board:telavi", "other")]
    for _ in listeners:
        await ready.acquire()
    await bus.publish("board:telavi", "last words")
    async with bus.subscribe("marker") as marker:
        await bus.publish("marker", "done")
        await take(marker, 1)

    await bus.disconnect()
    async with asyncio.timeout(GUARD):
        telavi, other = await asyncio.gather(*listeners)
    assert telavi == [Message("board:telavi", "last words")]
    assert other == []


async def test_a_disconnected_bus_refuses_to_publish_or_subscribe(bus: Bus) -> None:
    await bus.disconnect()
    with pytest.raises(BusUnavailable):
        await bus.publish("board:tbilisi", "late")
    with pytest.raises(BusUnavailable):
        async with bus.subscribe("board:tbilisi"):
            pass


async def test_an_error_inside_the_block_is_the_one_raised(bus: Bus) -> None:
    class DisplayGone(Exception):
        pass

    with pytest.raises(DisplayGone):
        async with bus.subscribe("board:tbilisi"):
            raise DisplayGone
    async with bus.subscribe("board:tbilisi") as again:
        await bus.publish("board:tbilisi", "still works")
        assert await take(again, 1) == [Message("board:tbilisi", "still works")]


def test_the_bus_url_picks_the_backend() -> None:
    assert type(create_bus()).__name__ == "MemoryBus"
    assert type(create_bus("memory://")).__name__ == "MemoryBus"
    assert type(create_bus("redis://127.0.0.1:6379/0")).__name__ == "RedisBus"
    with pytest.raises(ValueError, match="kafka"):
        create_bus("kafka://broker")


def test_the_memory_bus_does_not_load_redis() -> None:
    """The embedded default must start without the Redis client (it is imported lazily)."""
    code = (
        "import sys\n"
        "from queue_server.bus import create_bus\n"
        "create_bus('memory://')\n"
        "assert 'queue_server.bus.redis' not in sys.modules, 'redis backend imported'\n"
        "assert 'redis' not in sys.modules, 'redis package imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=GUARD)
