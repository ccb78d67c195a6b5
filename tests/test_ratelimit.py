"""Rate limits count per window, and a Redis outage moves them to memory (logged), never open."""

from __future__ import annotations

import logging

import pytest

from queue_server.access.ratelimit import Limit, MemoryLimiter, RedisLimiter
from queue_server.errors import RateLimited
from tests.support import free_port


async def test_a_limit_refuses_the_request_past_it_and_says_when_to_retry() -> None:
    limiter = MemoryLimiter()
    for _ in range(3):
        await limiter.hit("kiosk-1", Limit.parse("3/minute"))
    with pytest.raises(RateLimited) as refused:
        await limiter.hit("kiosk-1", Limit.parse("3/minute"))
    assert 1 <= refused.value.retry_after <= 60
    await limiter.hit("kiosk-2", Limit.parse("3/minute"))  # another key is unaffected


async def test_an_unreachable_redis_holds_the_limit_in_memory_never_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = RedisLimiter(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    try:
        with caplog.at_level(logging.WARNING):
            await limiter.hit("kiosk-1", Limit.parse("1/minute"))
            with pytest.raises(RateLimited):
                await limiter.hit("kiosk-1", Limit.parse("1/minute"))
            await limiter.hit("kiosk-2", Limit.parse("1/minute"))
    finally:
        await limiter.close()
    assert "rate limits held in this process's memory, Redis unavailable" in caplog.text


def test_rates_are_written_as_count_per_period() -> None:
    assert Limit.parse("30/minute") == Limit(30, 60)
    assert Limit.parse("5/10s") == Limit(5, 10)
    assert Limit.parse("10/5m") == Limit(10, 300)
    with pytest.raises(ValueError):
        Limit.parse("lots")
