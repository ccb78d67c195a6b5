"""What flows down the link, from central to a node: one `DownChannel` per kind of thing.

Each channel is a read at central (`GET /api/v1/nodes/{branch}/down/{name}?after=C`, the node's
token) and an apply at the node, at least once and idempotent: the node keeps the answer's
`cursor` in memory and sends it back as `after` (0 after a restart: the channel sends all it
holds again, and applying it again changes nothing). Bookings are the first channel; the
organisation's versions (#14) are the next: docs/offline.md says how it plugs in.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from queue_server.store.bookings import branch_bookings, mirror_bookings
from queue_server.store.change import utc_now

if TYPE_CHECKING:
    from queue_server.app import Rigi

BOOKINGS_BACK = timedelta(days=1)


@dataclass(frozen=True)
class DownChannel:
    """`read(conn, branch, after, now)` at central answers `{"cursor": …, "items": […]}` in
    JSON; `apply(rigi, items)` at the node returns how many things changed."""

    name: str
    read: Callable[[Connection, str, int, datetime], dict[str, Any]]
    apply: Callable[[Rigi, list[dict[str, Any]]], Awaitable[int]]
    every_s: float


def _read_bookings(conn: Connection, branch_id: str, after: int, now: datetime) -> dict[str, Any]:
    """The branch's bookings from yesterday on: no contact, no code. Small enough to send whole
    (a centre's fortnight of appointments), so the cursor is not used."""
    found = branch_bookings(conn, branch_id, now - BOOKINGS_BACK)
    items = [item | {"slot_at": item["slot_at"].isoformat()} for item in found]
    return {"cursor": 0, "items": items}


async def _apply_bookings(rigi: Rigi, items: list[dict[str, Any]]) -> int:
    found = [item | {"slot_at": datetime.fromisoformat(item["slot_at"])} for item in items]
    changed = await rigi.database.transaction(
        functools.partial(mirror_bookings, found=found, now=utc_now())
    )
    return int(changed)


BOOKINGS = DownChannel("bookings", _read_bookings, _apply_bookings, every_s=30.0)
DOWN_CHANNELS: dict[str, DownChannel] = {BOOKINGS.name: BOOKINGS}
