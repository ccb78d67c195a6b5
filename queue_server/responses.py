"""JSON responses and error bodies, shared by the API routes and the access middleware (which
runs before any route, so it must not import the API)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from queue_server.errors import Overloaded, RateLimited, RigiError
from rigi_protocol.wire import compact_json


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = compact_json(payload).encode()
    return Response(body, status, headers=headers, media_type="application/json")


def error_response(error: RigiError) -> Response:
    """An error's JSON body with its status (and `Retry-After` when rate limited or
    overloaded)."""
    headers = (
        {"Retry-After": str(error.retry_after)}
        if isinstance(error, RateLimited | Overloaded)
        else None
    )
    return json_response(error.to_dict(), error.status, headers)
