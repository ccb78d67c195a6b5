"""Queries of conference room requests: plain synchronous bodies for `Database.transaction`.

Two requests for overlapping times must not both pass: on PostgreSQL a transaction takes an
advisory lock on the room first (SQLite has one writer). A centre may have several rooms; each
request names its own (`room_id`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update

from queue_server.errors import NotFound
from queue_server.store.bookings import lock
from queue_server.store.schema_rooms import room_requests

PENDING, APPROVED, DECLINED = "pending", "approved", "declined"
HOLDING = (PENDING, APPROVED)  # a pending request holds its time until it is decided


def lock_room(conn: Connection, branch_id: str, room_id: str) -> None:
    lock(conn, f"room:{branch_id}:{room_id}")


def overlapping(
    conn: Connection, branch_id: str, room_id: str, starts_at: datetime, ends_at: datetime,
    statuses: tuple[str, ...] = HOLDING, other_than: str | None = None,
) -> int:  # fmt: skip
    """How many requests of `statuses` for the room overlap [starts_at, ends_at)."""
    query = select(room_requests.c.id).where(
        room_requests.c.branch_id == branch_id,
        room_requests.c.room_id == room_id,
        room_requests.c.status.in_(statuses),
        room_requests.c.starts_at < ends_at,
        room_requests.c.ends_at > starts_at,
    )
    if other_than is not None:
        query = query.where(room_requests.c.id != other_than)
    return len(conn.execute(query).all())


def busy(
    conn: Connection, branch_id: str, room_id: str, start: datetime, end: datetime
) -> list[Row[Any]]:
    """The room's held times of [start, end), earliest first: no names, only times, status."""
    return list(
        conn.execute(
            select(room_requests.c.starts_at, room_requests.c.ends_at, room_requests.c.status)
            .where(
                room_requests.c.branch_id == branch_id,
                room_requests.c.room_id == room_id,
                room_requests.c.status.in_(HOLDING),
                room_requests.c.starts_at < end,
                room_requests.c.ends_at > start,
            )
            .order_by(room_requests.c.starts_at)
        )
    )


def requests_of(conn: Connection, branch_id: str, since: datetime) -> list[Row[Any]]:
    """The branch's requests for times from `since`, for its manager."""
    return list(
        conn.execute(
            select(room_requests)
            .where(room_requests.c.branch_id == branch_id, room_requests.c.ends_at > since)
            .order_by(room_requests.c.starts_at)
        )
    )


def insert(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(room_requests.insert(), row)


def request_row(conn: Connection, request_id: str, branch_id: str) -> Row[Any]:
    row = conn.execute(
        select(room_requests).where(
            room_requests.c.id == request_id, room_requests.c.branch_id == branch_id
        )
    ).one_or_none()
    if row is None:
        raise NotFound("No such room request.", code="room_request_not_found")
    return row


def decide(conn: Connection, request_id: str, **values: Any) -> bool:
    """Record a decision on a pending request; False when it was decided already."""
    result = conn.execute(
        update(room_requests)
        .where(room_requests.c.id == request_id, room_requests.c.status == PENDING)
        .values(**values)
    )
    return result.rowcount == 1
