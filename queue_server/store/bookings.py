"""Queries of bookings: plain synchronous bodies for `Database.transaction` / `reading`.

Two bookings for one person or one slot must not both pass their checks: on PostgreSQL a
transaction takes an advisory lock on the person and the slot first (SQLite has one writer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, func, or_, select, text, update

from queue_server.errors import NotFound
from queue_server.store.schema_bookings import bookings

PENDING, CONFIRMED, CANCELLED = "pending", "confirmed", "cancelled"
CHECKED_IN, NO_SHOW = "checked_in", "no_show"
SLOT, REMOTE = "slot", "remote"


def lock(conn: Connection, *keys: str) -> None:
    """Serialise transactions about the same person or slot across processes (PostgreSQL)."""
    if conn.dialect.name != "postgresql":
        return
    for key in sorted(keys):
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})


def _holding(now: datetime) -> Any:
    """A booking that holds its slot: confirmed, or pending with a code still valid."""
    return or_(
        bookings.c.status == CONFIRMED,
        and_(bookings.c.status == PENDING, bookings.c.code_expires_at > now),
    )


def sweep(
    conn: Connection, now: datetime, missed_before: datetime, retention_until: Any,
    remote_joined_before: datetime,
) -> None:  # fmt: skip
    """Confirmed bookings whose slot was before `missed_before` (a day ago), and remote tickets
    not activated in their window (joined before `remote_joined_before`), become no-shows;
    contacts whose retention has passed are blanked (the keyed hash stays for the limits)."""
    conn.execute(
        update(bookings)
        .where(
            bookings.c.status == CONFIRMED,
            or_(
                bookings.c.slot_at < missed_before,
                and_(bookings.c.kind == REMOTE, bookings.c.slot_at < remote_joined_before),
            ),
        )
        .values(status=NO_SHOW, expires_at=retention_until)
    )
    conn.execute(
        update(bookings)
        .where(bookings.c.expires_at < now, bookings.c.contact_secret != "")
        .values(contact_secret="")
    )


@dataclass(frozen=True)
class PersonRecord:
    """What the limits need to know of one person (by their contact's keyed hash)."""

    active_for_service: int
    in_period: int
    no_shows: int


def person_record(
    conn: Connection,
    contact_hash: str,
    service_id: str,
    now: datetime,
    period_start: datetime,
    noshow_start: datetime,
    missed_before: datetime,
) -> PersonRecord:
    """`missed_before`: a confirmed booking whose arrival window closed before this is a
    no-show already (a late arrival still gets a walk-in ticket, and then it is not one)."""
    mine = bookings.c.contact_hash == contact_hash
    active = conn.execute(
        select(func.count())
        .select_from(bookings)
        .where(mine, bookings.c.service_id == service_id, _holding(now))
    ).scalar_one()
    counted = or_(
        bookings.c.confirmed_at.is_not(None),
        and_(bookings.c.status == PENDING, bookings.c.code_expires_at > now),
    )
    in_period = conn.execute(
        select(func.count())
        .select_from(bookings)
        .where(mine, counted, bookings.c.created_at >= period_start)
    ).scalar_one()
    no_shows = conn.execute(
        select(func.count())
        .select_from(bookings)
        .where(
            mine,
            or_(
                bookings.c.status == NO_SHOW,
                and_(
                    bookings.c.status == CONFIRMED,
                    bookings.c.kind == SLOT,
                    bookings.c.slot_at < missed_before,
                ),
            ),
            bookings.c.slot_at >= noshow_start,
        )
    ).scalar_one()
    return PersonRecord(active, in_period, no_shows)


def slot_load(
    conn: Connection, branch_id: str, service_id: str, start: datetime, end: datetime, now: datetime
) -> dict[datetime, int]:
    """Bookings holding each slot of [start, end)."""
    found = conn.execute(
        select(bookings.c.slot_at, func.count())
        .where(
            bookings.c.branch_id == branch_id,
            bookings.c.service_id == service_id,
            bookings.c.slot_at >= start,
            bookings.c.slot_at < end,
            bookings.c.kind == SLOT,
            _holding(now),
        )
        .group_by(bookings.c.slot_at)
    )
    return {slot_at: count for slot_at, count in found}


def insert(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(bookings.insert(), row)


def booking_row(conn: Connection, booking_id: str) -> Row[Any]:
    row = conn.execute(select(bookings).where(bookings.c.id == booking_id)).one_or_none()
    if row is None:
        raise NotFound("No such booking.", code="booking_not_found")
    return row


def booking_by_code(conn: Connection, short_code: str) -> Row[Any] | None:
    return conn.execute(select(bookings).where(bookings.c.short_code == short_code)).one_or_none()


def change(conn: Connection, booking_id: str, expected: str, **values: Any) -> bool:
    """Update a booking only while it is still `expected`; False when another request won."""
    result = conn.execute(
        update(bookings)
        .where(bookings.c.id == booking_id, bookings.c.status == expected)
        .values(**values)
    )
    return result.rowcount == 1
