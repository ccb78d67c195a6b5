"""Open WebSocket feeds by kind, for `rigi_feed_connections`; an overloaded server's feed
closes with "try again later"."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from queue_server.errors import Overloaded
from queue_server.ops.metrics import FEED_CONNECTIONS
from rigi_protocol.closecodes import CLOSE_TRY_AGAIN

Feed = Callable[[WebSocket], Awaitable[None]]
CLOSE_TIMEOUT_S = 10.0


def counted(kind: str, feed: Feed) -> Feed:
    """`feed`, counted as an open connection of `kind` for as long as it runs. A feed that
    could not get the database in time (`Overloaded`) is closed with CLOSE_TRY_AGAIN (1013)
    and the code `overloaded`, which clients answer by reconnecting later, instead of an
    internal error (1011) and a traceback. A client that leaves while the feed writes to it
    (its snapshot or replay, before the connection's own loop that expects it) ends the feed
    quietly: no error of the server, so no traceback either."""
    gauge = FEED_CONNECTIONS.labels(kind)

    @functools.wraps(feed)
    async def _counted(websocket: WebSocket) -> None:
        gauge.inc()
        try:
            await feed(websocket)
        except Overloaded:
            await _try_again_later(websocket)
        except WebSocketDisconnect:
            pass
        finally:
            gauge.dec()

    return _counted


async def _try_again_later(websocket: WebSocket) -> None:
    if websocket.application_state == WebSocketState.DISCONNECTED:
        return
    with contextlib.suppress(RuntimeError, WebSocketDisconnect, TimeoutError):
        await asyncio.wait_for(websocket.close(CLOSE_TRY_AGAIN, Overloaded.code), CLOSE_TIMEOUT_S)
