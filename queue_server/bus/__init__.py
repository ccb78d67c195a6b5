"""The event bus: tells other parts and processes that an event was committed.

`create_bus(url)` picks the backend by URL scheme: `memory://` (the default, one process) or
`redis://` / `rediss://` / `unix://` (several processes). The Redis backend is imported only when
asked for, so the embedded default never needs the redis package loaded.
"""

from __future__ import annotations

from typing import Any

from queue_server.bus.base import (
    CHANNEL_PREFIX,
    DEFAULT_MAX_QUEUED,
    GAP_OVERFLOW,
    GAP_RECONNECTED,
    GAP_UNCONFIRMED,
    REDIS_PREFIX,
    Bus,
    BusUnavailable,
    Gap,
    Message,
    Subscription,
)

__all__ = [
    "CHANNEL_PREFIX",
    "DEFAULT_MAX_QUEUED",
    "GAP_OVERFLOW",
    "GAP_RECONNECTED",
    "GAP_UNCONFIRMED",
    "REDIS_PREFIX",
    "Bus",
    "BusUnavailable",
    "Gap",
    "Message",
    "Subscription",
    "create_bus",
]

_REDIS_SCHEMES = ("redis", "rediss", "unix")


def create_bus(url: str = "memory://", **options: Any) -> Bus:
    """Build the bus named by `url` (not yet connected); `options` go to the backend.

    Common options: `max_queued` (per-subscription queue bound); the Redis backend also takes
    `channel_prefix`, `publish_timeout`, `backoff_max` and the other `RedisBus` arguments.
    """
    scheme = url.partition("://")[0].lower()
    if scheme == "memory":
        from queue_server.bus.memory import MemoryBus

        return MemoryBus(**options)
    if scheme in _REDIS_SCHEMES:
        from queue_server.bus.redis import RedisBus

        return RedisBus(url, **options)
    raise ValueError(f"unknown bus URL scheme {scheme!r}: use memory:// or redis://")
