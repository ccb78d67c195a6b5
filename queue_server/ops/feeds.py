"""Open WebSocket feeds by kind, for `rigi_feed_connections`."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.websockets import WebSocket

from queue_server.ops.metrics import FEED_CONNECTIONS

Feed = Callable[[WebSocket], Awaitable[None]]


def counted(kind: str, feed: Feed) -> Feed:
    """`feed`, counted as an open connection of `kind` for as long as it runs."""
    gauge = FEED_CONNECTIONS.labels(kind)

    @functools.wraps(feed)
    async def _counted(websocket: WebSocket) -> None:
        gauge.inc()
        try:
            await feed(websocket)
        finally:
            gauge.dec()

    return _counted
