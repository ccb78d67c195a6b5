"""Bus fixtures: the backends under test, and the Redis they need.

A Redis test uses only the Redis named by RIGI_TEST_REDIS_URL, never a guessed one (the machine's
6379 may hold someone's data). Without the variable, or when that Redis cannot be reached, it skips
on a developer's machine but fails when `CI` is set, so a broken CI service can never turn the
Redis tests into silent skips. A test that stops Redis starts a `redis-server` of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from queue_server.bus import REDIS_PREFIX, Bus, create_bus
from tests.support import REDIS_ENV, RedisServer, need_service, own_redis

# Fast reconnects keep the restart test short; the shipped defaults are gentler on a real outage.
TEST_BACKOFF_MAX = 0.5

BusFactory = Callable[..., Awaitable[Bus]]


def redis_or_skip() -> str:
    """The test Redis URL if it answers a PING; otherwise skip, or fail when `CI` is set."""
    import redis

    url = need_service(REDIS_ENV, "Redis")
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        message = f"Redis at {url} ({REDIS_ENV}) is unreachable: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    finally:
        client.close()
    return url


@pytest.fixture
def redis_url() -> str:
    return redis_or_skip()


@pytest.fixture
def channel_prefix() -> str:
    """A prefix of this test's own: pub/sub ignores db numbers, so parallel runs could collide."""
    return f"{REDIS_PREFIX}test:{uuid.uuid4().hex}:"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> str:
    """Every contract test runs once per backend."""
    return str(request.param)


async def _connected_buses(url: str, defaults: dict[str, object]) -> AsyncIterator[BusFactory]:
    buses: list[Bus] = []

    async def _make(**options: object) -> Bus:
        bus = create_bus(url, **{**defaults, **options})
        await bus.connect()
        buses.append(bus)
        return bus

    try:
        yield _make
    finally:
        for bus in buses:
            await bus.disconnect()


@pytest.fixture
async def make_redis_bus(redis_url: str, channel_prefix: str) -> AsyncIterator[BusFactory]:
    """Build connected Redis buses, each standing for one server process.

    Each has its own connections, all share this test's channel prefix, and all are
    disconnected afterwards.
    """
    defaults = {"channel_prefix": channel_prefix, "backoff_max": TEST_BACKOFF_MAX}
    async for factory in _connected_buses(redis_url, defaults):
        yield factory


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A `redis-server` of this test's own, which the test may stop and start."""
    with own_redis(tmp_path / "redis") as server:
        yield server


@pytest.fixture
async def make_own_redis_bus(
    redis_server: RedisServer, channel_prefix: str
) -> AsyncIterator[BusFactory]:
    """Like `make_redis_bus`, on the test's own Redis."""
    defaults = {"channel_prefix": channel_prefix, "backoff_max": TEST_BACKOFF_MAX}
    async for factory in _connected_buses(redis_server.url, defaults):
        yield factory


@pytest.fixture
def make_bus(backend: str, request: pytest.FixtureRequest) -> BusFactory:
    """Build connected buses of the backend under test; all are disconnected afterwards."""
    if backend == "redis":
        return request.getfixturevalue("make_redis_bus")  # type: ignore[no-any-return]
    return request.getfixturevalue("make_memory_bus")  # type: ignore[no-any-return]


@pytest.fixture
async def make_memory_bus() -> AsyncIterator[BusFactory]:
    async for factory in _connected_buses("memory://", {}):
        yield factory


@pytest.fixture
async def bus(make_bus: BusFactory) -> Bus:
    return await make_bus()
