"""A manager's broadcast to everyone waiting in a branch, or for one of its services, who left a
contact: "the wait is about 40 minutes longer", "the hall closes early at 16:00".

The words are fixed templates in five languages (a manager's free text could not reach each
citizen in their own language), filled with the minutes or the time. One transaction puts one
message per waiting subscription in the outbox (kind `bc:<id>`, so the dedup key keeps each
broadcast once per ticket and channel) and writes the audit row. Broadcasts are limited per
branch (`RIGI_NOTIFY_BROADCAST_RATE`, default 3 an hour): a citizen is not spammed.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from queue_server.access.ratelimit import Limit
from queue_server.domain.numbering import ticket_label
from queue_server.errors import NotFound, RateLimited, ValidationFailed
from queue_server.notify.texts import BROADCAST_PREFIX
from queue_server.store import audit
from queue_server.store import notify as queries

if TYPE_CHECKING:
    from queue_server.app import Rigi

_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class Broadcast(BaseModel):
    """`delay` needs `minutes`; `closing` needs `closes_at` ("HH:MM", the branch's clock)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["delay", "closing"]
    service_id: str | None = Field(default=None, max_length=64)
    minutes: int | None = Field(default=None, ge=5, le=480)
    closes_at: str | None = Field(default=None, max_length=5)


class Broadcasted(BaseModel):
    id: str
    kind: str
    service_id: str | None
    recipients: int


async def broadcast(rigi: Rigi, branch_id: str, body: Broadcast, actor: str) -> dict[str, Any]:
    """Queue the broadcast for every waiting subscribed ticket; returns how many it reaches."""
    catalog = rigi.catalog
    catalog.branch(branch_id)
    if body.service_id is not None and body.service_id not in {
        s.id for s in catalog.branch_services(branch_id)
    }:
        raise NotFound("The branch offers no such service.", code="unknown_service")
    params = _params(body)
    try:
        limit = Limit.parse(rigi.settings.notify_broadcast_rate)
        await rigi.limiter.hit(f"notify-broadcast:{branch_id}", limit)
    except RateLimited as limited:
        raise RateLimited(
            "This branch has broadcast too often; try again later.",
            retry_after=limited.retry_after,
            code="broadcast_limited",
        ) from None
    broadcast_id = uuid.uuid4().hex[:8]
    now = rigi.store.clock()

    def body_of(conn: Connection) -> int:
        return _enqueue(conn, branch_id, body, params, broadcast_id, now, actor)

    recipients = await rigi.database.transaction(body_of)
    if rigi.notify is not None and recipients:
        rigi.notify.outbox.enqueued.set()
    return {"id": broadcast_id, "kind": body.kind, "service_id": body.service_id,
            "recipients": recipients}  # fmt: skip


def _params(body: Broadcast) -> dict[str, Any]:
    if body.kind == "delay":
        if body.minutes is None:
            raise ValidationFailed("Say how many minutes longer.", code="bad_broadcast")
        return {"template": "delay", "minutes": body.minutes}
    if body.closes_at is None or not _CLOCK.match(body.closes_at):
        raise ValidationFailed("Say when the branch closes, as HH:MM.", code="bad_broadcast")
    return {"template": "closing", "time": body.closes_at}


def _enqueue(
    conn: Connection,
    branch_id: str,
    body: Broadcast,
    params: dict[str, Any],
    broadcast_id: str,
    now: datetime,
    actor: str,
) -> int:
    waiting = queries.waiting_subscriptions(conn, branch_id, body.service_id)
    outgoing = [
        queries.OutgoingRow(sub.ticket_id, branch_id, sub.id, sub.channel,
                            BROADCAST_PREFIX + broadcast_id, sub.language,
                            params | {"label": ticket_label(sub.letter, sub.number)})
        for sub in waiting
    ]  # fmt: skip
    queries.enqueue(conn, outgoing, now)
    audit.record(
        conn,
        at=now,
        actor=actor,
        kind="notify.broadcast",
        branch_id=branch_id,
        target=body.service_id or branch_id,
        detail=params | {"id": broadcast_id, "recipients": len(outgoing)},
    )
    return len(outgoing)
