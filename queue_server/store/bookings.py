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


# ---- branch nodes (docs/offline.md) ----------------------------------------------------------

CLAIMED_CHANNEL = "central"  # a booking a node learnt of from its signed code or from central
_NODE_KEPT = ("checked_in", "no_show")  # what the node saw happen at its door wins


def booking_row_or_claimed(
    conn: Connection,
    booking_id: str,
    branch_id: str,
    slot_at: datetime,
    service_id: str | None,
    language: str | None,
    now: datetime,
) -> Row[Any]:
    """The booking; on a branch node that has not received a booking made centrally yet, the
    one its signed check-in code describes (the code is proof enough: central signed it)."""
    row = conn.execute(select(bookings).where(bookings.c.id == booking_id)).one_or_none()
    if row is not None:
        return row
    if service_id is None or language is None:
        raise NotFound("No such booking.", code="booking_not_found")
    insert(conn, _mirrored(booking_id, branch_id, service_id, slot_at, language, "confirmed", now))
    return booking_row(conn, booking_id)


def mirror_bookings(conn: Connection, found: list[dict[str, Any]], now: datetime) -> int:
    """Apply central's bookings of the node's branch (id, service, slot, language, status),
    idempotently: new ones are added without any contact, known ones take central's status
    unless the node has checked them in or marked them missed. Returns how many changed."""
    changed = 0
    for item in found:
        row = conn.execute(
            select(bookings.c.status, bookings.c.slot_at).where(bookings.c.id == item["id"])
        ).one_or_none()
        if row is None:
            insert(
                conn,
                _mirrored(
                    item["id"],
                    item["branch_id"],
                    item["service_id"],
                    item["slot_at"],
                    item["language"],
                    item["status"],
                    now,
                ),
            )
            changed += 1
        elif row.status not in _NODE_KEPT and (row.status, row.slot_at) != (
            item["status"],
            item["slot_at"],
        ):
            conn.execute(
                update(bookings)
                .where(bookings.c.id == item["id"])
                .values(status=item["status"], slot_at=item["slot_at"])
            )
            changed += 1
    return changed  # fmt: skip


def _mirrored(
    booking_id: str,
    branch_id: str,
    service_id: str,
    slot_at: datetime,
    language: str,
    status: str,
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": booking_id,
        "branch_id": branch_id,
        "service_id": service_id,
        "slot_at": slot_at,
        "status": status,
        "short_code": "~" + booking_id[:11],  # never typed: '~' is not in the code alphabet
        "channel": CLAIMED_CHANNEL,
        "contact_hash": "",
        "contact_secret": "",
        "language": language,
        "code_hash": "",
        "code_expires_at": now,
        "attempts": 0,
        "reschedules": 0,
        "created_at": now,
        "confirmed_at": now,
    }


def branch_bookings(conn: Connection, branch_id: str, since: datetime) -> list[dict[str, Any]]:
    """What a branch's node needs of its bookings from `since` on: no contact, no code."""
    rows = conn.execute(
        select(bookings.c.id, bookings.c.branch_id, bookings.c.service_id, bookings.c.slot_at,
               bookings.c.language, bookings.c.status)
        .where(bookings.c.branch_id == branch_id, bookings.c.slot_at >= since,
               bookings.c.status.in_(("confirmed", "cancelled")))
        .order_by(bookings.c.slot_at)
    )  # fmt: skip
    return [dict(row._mapping) for row in rows]
