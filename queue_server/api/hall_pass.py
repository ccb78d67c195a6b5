"""The hall pass a lobby screen or kiosk shows as a QR code (`access/hall_pass.py`).

Only the hall's own devices and staff may read it: a phone that could fetch it from home would
need no screen at all. The answer carries the QR code itself, so the screen never asks for an
image at an address that holds the pass, and when to fetch the next one, counted in seconds
from the server's clock so that a screen whose clock is wrong still rotates on time.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime
from urllib.parse import quote

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from queue_server.access.device_setup import qr_svg
from queue_server.access.hall_pass import HALL_PASS_QUERY
from queue_server.api.http import Endpoint, json_response
from queue_server.api.routes import public_base
from queue_server.errors import NotFound

# Every screen of a branch shows the same code for a window: made once per process (about 45 ms
# of CPU each, off the event loop), for up to this many branch-windows at once.
QR_CACHE = 1024


@functools.lru_cache(maxsize=QR_CACHE)
def _qr(url: str) -> str:
    return qr_svg(url)


class HallPassView(BaseModel):
    token: str
    url: str
    qr_svg: str
    rotates_in_s: float
    valid_until: datetime


async def hall_pass(request: Request, branch: str) -> Response:
    """The pass of the branch's hall now, with its QR code of the phone page's address."""
    rigi = request.app.state.rigi
    rigi.catalog.branch(branch)  # `unknown_branch` 404 (an administrator may ask for any)
    if not rigi.settings.remote_tickets:
        raise NotFound("Phones do not take tickets at this server.", code="phone_tickets_off")
    now = rigi.store.clock()
    current = rigi.hall_passes.current(branch, now)
    url = f"{public_base(request)}/take/{quote(branch)}?{HALL_PASS_QUERY}={quote(current.token)}"
    answer = {
        "token": current.token,
        "url": url,
        "qr_svg": await asyncio.to_thread(_qr, url),
        "rotates_in_s": round((current.rotates_at - now).total_seconds(), 3),
        "valid_until": current.valid_until.isoformat(),
    }
    return json_response(answer, headers={"Cache-Control": "no-store"})


HALL_PASS_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/v1/branches/{branch}/hall-pass", hall_pass,
             "The rotating hall pass and its QR code, for a lobby screen or kiosk to show",
             response=HallPassView, access="board", errors=(404,), tags=("branches",)),
)  # fmt: skip
