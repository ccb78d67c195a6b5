"""Rate limits and sign-in counters: in memory for one process, in Redis when scaled out.

Two primitives serve every limit: a counter that expires (`incr`, `peek`) and a hold that
expires (`hold`, `held_for`). `hit` is a sliding-window limit built on the counter: a fixed
window would let a burst that straddles its boundary through twice (seen: 100 of a 50-an-hour
kiosk limit at 23:00). When Redis
cannot answer, the same calls go to this process's own memory: the limit then holds per
process instead of across them, but it never falls open.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from queue_server.errors import RateLimited

DEFAULT_KEY_PREFIX = "rigi:"
RATE_NAMESPACE = "rate:"  # after the deployment's prefix: `rigi:bus:rate:…`
MEMORY_KEYS_MAX = 100_000
OUTAGE_LOG_EVERY_S = 30.0
REDIS_RETRY_AFTER_S = 5.0  # after a failure, memory answers alone this long (no 1 s timeouts)
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


class _Windows:
    """`hit` on top of a backend's `incr`: one counter per key and window."""

    async def incr(self, key: str, ttl_s: float) -> int:
        raise NotImplementedError

    async def peek(self, key: str) -> int:
        raise NotImplementedError

    async def hit(self, key: str, limit: Limit) -> None:
        """Count one request; RateLimited once the last `limit.seconds` hold more than the limit:
        this window's count plus the previous window's, weighted by the part of it that still
        lies within the last `limit.seconds` (the sliding-window counter estimate)."""
        now = time.time()
        position = now / limit.seconds
        window = int(position)
        current = await self.incr(f"{key}:{window}", 2 * limit.seconds + 1)
        if current > limit.count:
            raise _limited(limit, now)
        previous = await self.peek(f"{key}:{window - 1}")
        if previous and previous * (1 - (position - window)) + current > limit.count:
            raise _limited(limit, now)


class MemoryLimiter(_Windows):
    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, int]] = {}  # key → (expires at, count)

    def _live(self, key: str, now: float) -> int:
        entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] > now else 0

    def _store(self, key: str, expires: float, value: int, now: float) -> None:
        if len(self._entries) >= MEMORY_KEYS_MAX:  # forget expired entries before growing
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
        self._entries[key] = (expires, value)

    async def incr(self, key: str, ttl_s: float) -> int:
        """Add one to `key`'s counter, which expires `ttl_s` after its first count."""
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is None or entry[0] <= now:
            entry = (now + ttl_s, 0)
        self._store(key, entry[0], entry[1] + 1, now)
        return entry[1] + 1

    async def peek(self, key: str) -> int:
        return self._live(key, time.monotonic())

    async def reset(self, key: str) -> None:
        self._entries.pop(key, None)

    async def hold(self, key: str, seconds: float) -> None:
        now = time.monotonic()
        self._store(key, now + seconds, 1, now)

    async def held_for(self, key: str) -> float:
        """Seconds left on a hold, 0 when none."""
        entry = self._entries.get(key)
        return max(0.0, entry[0] - time.monotonic()) if entry is not None else 0.0

    async def close(self) -> None:
        return None


class RedisLimiter(_Windows):
    """Shared by every process, under the deployment's key prefix. When Redis cannot answer,
    each call is answered from this process's memory instead (and the outage is logged)."""

    def __init__(self, url: str, prefix: str = DEFAULT_KEY_PREFIX) -> None:
        import redis.asyncio as redis

        self._redis: Any = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.prefix = prefix + RATE_NAMESPACE
        self.fallback = MemoryLimiter()
        self._last_outage_log = -math.inf
        self._down_until = -math.inf

    @property
    def _down(self) -> bool:
        return time.monotonic() < self._down_until

    def _outage(self, exc: Exception) -> None:
        now = time.monotonic()
        self._down_until = now + REDIS_RETRY_AFTER_S
        if now - self._last_outage_log >= OUTAGE_LOG_EVERY_S:
            self._last_outage_log = now
            log.warning("rate limits held in this process's memory, Redis unavailable: %s", exc)

    async def incr(self, key: str, ttl_s: float) -> int:
        from redis.exceptions import RedisError

        if self._down:
            return await self.fallback.incr(key, ttl_s)
        name = self.prefix + key
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                _, count = await (
                    pipe.set(name, 0, px=int(ttl_s * 1000), nx=True).incr(name).execute()
                )
            return int(count)
        except (RedisError, OSError) as exc:
            self._outage(exc)
            return await self.fallback.incr(key, ttl_s)

    async def peek(self, key: str) -> int:
        from redis.exceptions import RedisError

        if self._down:
            return await self.fallback.peek(key)
        try:
            value = await self._redis.get(self.prefix + key)
            # What was counted here while Redis was away still counts.
            return max(int(value or 0), await self.fallback.peek(key))
        except (RedisError, OSError) as exc:
            self._outage(exc)
            return await self.fallback.peek(key)

    async def reset(self, key: str) -> None:
        from redis.exceptions import RedisError

        await self.fallback.reset(key)
        if self._down:
            return
        try:
            await self._redis.delete(self.prefix + key)
        except (RedisError, OSError) as exc:
            self._outage(exc)

    async def hold(self, key: str, seconds: float) -> None:
        from redis.exceptions import RedisError

        if self._down:
            return await self.fallback.hold(key, seconds)
        try:
            await self._redis.set(self.prefix + key, 1, px=max(1, int(seconds * 1000)))
        except (RedisError, OSError) as exc:
            self._outage(exc)
            await self.fallback.hold(key, seconds)

    async def held_for(self, key: str) -> float:
        from redis.exceptions import RedisError

        if self._down:
            return await self.fallback.held_for(key)
        try:
            left_ms = int(await self._redis.pttl(self.prefix + key))
            return max(0.0, left_ms / 1000, await self.fallback.held_for(key))
        except (RedisError, OSError) as exc:
            self._outage(exc)
            return await self.fallback.held_for(key)

    async def close(self) -> None:
        await self._redis.aclose()


def _limited(limit: Limit, now: float) -> RateLimited:
    retry = max(1, math.ceil(limit.seconds - (now % limit.seconds)))
    return RateLimited(
        f"Too many requests: at most {limit.count} every {limit.seconds} s. "
        f"Try again in {retry} s.",
        retry_after=retry,
    )


def create_limiter(bus_url: str, prefix: str = DEFAULT_KEY_PREFIX) -> MemoryLimiter | RedisLimiter:
    """Redis limits when the bus is Redis (several processes), memory otherwise."""
    if bus_url.startswith(("redis://", "rediss://")):
        return RedisLimiter(bus_url, prefix)
    return MemoryLimiter()
