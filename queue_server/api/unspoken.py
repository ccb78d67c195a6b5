"""Calls the lobby displays could not speak lately, for the managers' live view."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request

from queue_server.api.http import Endpoint
from queue_server.store.unspoken import recent_unspoken

RECENT_MINUTES = 30  # older calls have been answered, or missed, by now


async def unspoken_calls(request: Request, branch: str) -> list[dict[str, Any]]:
    """The branch's unspoken calls of the last half hour, newest first."""
    rigi = request.app.state.rigi
    rigi.catalog.branch(branch)
    since = rigi.store.clock() - timedelta(minutes=RECENT_MINUTES)
    return await rigi.database.reading(  # type: ignore[no-any-return]
        lambda c: recent_unspoken(c, branch, since)
    )


UNSPOKEN_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/v1/branches/{branch}/unspoken-calls", unspoken_calls,
             "Calls the branch's displays could not speak in the last half hour",
             access="manager", errors=(404,), tags=("branches",)),
)  # fmt: skip
