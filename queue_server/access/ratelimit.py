"""Fixed-window rate limits: in memory for one process, in Redis when scaled out."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from queue_server.errors import RateLimited

REDIS_KEY_PREFIX = "rigi:rate:"
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limit:
    """`count` requests per `seconds`, e.g. Limit(30, 60)."""

    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Limit:
        """'30/minute', '5/10s', '100/hour'."""
        count, _, period = text.partition("/")
        units = {"second": 1, "s": 1, "minute": 60, "m": 60, "hour": 3600, "h": 3600}
        digits = "".join(ch for ch in period if ch.isdigit()) or "1"
        unit = period.lstrip("0123456789")
        if unit not in units or not count.isdigit():
            raise ValueError(f"not a rate like '30/minute': {text!r}")
        return cls(int(count), int(digits) * units[unit])


class MemoryLimiter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, int]] = {}

    async def hit(self, key: str, limit: Limit) -> None:
        now = time.time()
        window = int(now // limit.seconds)
        start, count = self._windows.get(key, (window, 0))
        if start != window:
            start, count = window, 0
        if count >= limit.count:
            raise _limited(limit, now)
        self._windows[key] = (start, count + 1)
        if len(self._windows) > 100_000:  # forget old windows rather than grow without bound
            self._windows = {k: v for k, v in self._windows.items() if v[0] == window}

    async def close(self) -> None:
        return None


class RedisLimiter:
    """Shared by every process: INCR on a key per window, which expires with the window."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis: Any = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)

    async def hit(self, key: str, limit: Limit) -> None:
        """Count one request. If Redis cannot answer, the request is let through and logged:
        a citizen's ticket matters more than a limit during an outage."""
        from redis.exceptions import RedisError

        now = time.time()
        window = int(now // limit.seconds)
        name = f"{REDIS_KEY_PREFIX}{key}:{window}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                count, _ = await pipe.incr(name).expire(name, limit.seconds + 1).execute()
        except (RedisError, OSError) as exc:
            log.warning("rate limit not checked, Redis unavailable: %s", exc)
            return
        if count > limit.count:
            raise _limited(limit, now)

    async def close(self) -> None:
        await self._redis.aclose()


def _limited(limit: Limit, now: float) -> RateLimited:
    retry = max(1, math.ceil(limit.seconds - (now % limit.seconds)))
    return RateLimited(
        f"Too many requests: at most {limit.count} every {limit.seconds} s. "
        f"Try again in {retry} s.",
        retry_after=retry,
    )


def create_limiter(bus_url: str) -> MemoryLimiter | RedisLimiter:
    """Redis limits when the bus is Redis (several processes), memory otherwise."""
    if bus_url.startswith(("redis://", "rediss://")):
        return RedisLimiter(bus_url)
    return MemoryLimiter()
