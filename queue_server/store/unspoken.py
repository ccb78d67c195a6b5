"""Calls a lobby display could not speak: a staff event each, and the recent ones for the live
view, so a manager can call that citizen another way (a call not heard is a call missed).

The event (`display.unspoken`) travels to public boards without its data, like every event that
is not a ticket's or a counter's (see `Event.public_encoded`); the live view reads the data here.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from queue_server.store.events import append_event
from queue_server.store.schema import events

UNSPOKEN = "display.unspoken"
RECENT_SHOWN = 20  # the live view lists at most this many, newest first


def record_unspoken(
    conn: Connection, branch_id: str, data: dict[str, Any], now: datetime, actor: str
) -> None:
    """Append the staff event of one unspoken call (display name, ticket label, counter)."""
    append_event(conn, branch_id, UNSPOKEN, now, data, actor)


def recent_unspoken(conn: Connection, branch_id: str, since: datetime) -> list[dict[str, Any]]:
    """The branch's unspoken calls since `since`, newest first."""
    rows = conn.execute(
        select(events.c.at, events.c.data)
        .where(
            events.c.branch_id == branch_id,
            events.c.kind == UNSPOKEN,
            events.c.at >= since,
        )
        .order_by(events.c.seq.desc())
        .limit(RECENT_SHOWN)
    )
    return [json.loads(r.data) | {"at": r.at.isoformat()} for r in rows]
