"""One outermost ASGI layer for operations: the request id, HTTP timing and the access log,
and `/metrics` (answered here, before authentication, so a scrape costs no token lookup).

The access log names the route's template, never the path itself: paths hold ticket ids (the
key to a ticket's page) and query strings may hold a setup link's token.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from queue_server.ops.context import REQUEST_ID_HEADER, accept_request_id, request_id
from queue_server.ops.exposition import METRICS_PATH, serve_metrics
from queue_server.ops.metrics import HTTP_SECONDS
from queue_server.ops.timeline import request_started

access_log = logging.getLogger("queue_server.access")

PROBES = frozenset({"/healthz", "/readyz"})  # asked every few seconds: logged at debug only
UNMATCHED = "unmatched"  # 404s and mounts: one label, so scanners cannot grow the series


class OpsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: dict[Any, str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(REQUEST_ID_HEADER.encode())
        rid = accept_request_id(incoming.decode("latin-1") if incoming else None)
        token = request_id.set(rid)
        try:
            if scope["type"] == "websocket":
                await self.app(scope, receive, send)
            elif scope["path"] == METRICS_PATH:
                await serve_metrics(scope, receive, _with_request_id(send, rid))
            else:
                await self._timed(scope, receive, _with_request_id(send, rid))
        finally:
            request_id.reset(token)

    async def _timed(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = 500

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        token = request_started.set(started)
        try:
            await self.app(scope, receive, _send)
        finally:
            request_started.reset(token)
            elapsed = time.perf_counter() - started
            template = self._template(scope)
            HTTP_SECONDS.labels(scope["method"], template, str(status)).observe(elapsed)
            access_log.info("%s %s %d %.1f ms", scope["method"], template, status, elapsed * 1000)

    def _template(self, scope: Scope) -> str:
        """The matched route's path template (`/api/v1/branches/{branch}/tickets`)."""
        if self._templates is None:
            routes = getattr(scope["app"], "routes", [])
            self._templates = {r.endpoint: r.path for r in routes if isinstance(r, Route)}
        return self._templates.get(scope.get("endpoint"), UNMATCHED)


def _with_request_id(send: Send, rid: str) -> Send:
    header = (REQUEST_ID_HEADER.encode(), rid.encode())

    async def _send(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), header]}
        await send(message)

    return _send
