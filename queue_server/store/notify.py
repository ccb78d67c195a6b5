"""Queries of notifications: subscriptions, the outbox and its claims, the one "late" move.

Plain synchronous bodies for `Database.transaction` / `Database.reading`, as everywhere in the
store. The outbox's UNIQUE key makes enqueueing idempotent: a message enqueued twice (two
processes, a restart that reads the same events again) is one row.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    Row,
    String,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    literal,
    select,
    update,
)

from queue_server.catalog.loader import Catalog
from queue_server.domain.tickets import Priority, TicketStatus
from queue_server.errors import Conflict, NotFound
from queue_server.store import statements
from queue_server.store.bookings import CONFIRMED as BOOKING_CONFIRMED
from queue_server.store.events import append_event
from queue_server.store.schema import tickets
from queue_server.store.schema_bookings import bookings
from queue_server.store.schema_notify import late_moves, messages, notify_cursors, subscriptions
from queue_server.store.statements import upsert_insert
from queue_server.store.views import ticket_view

QUEUED, SENDING, SENT, FAILED = "queued", "sending", "sent", "failed"
REMINDER_KIND = "reminder"
MOVED = "the booking was moved; its new slot is reminded"
ENDED = (
    TicketStatus.DONE.value,
    TicketStatus.NO_SHOW.value,
    TicketStatus.CANCELLED.value,
)


def reminder_kind(reschedules: int) -> str:
    """The kind of a booking's reminder for its slot: `reminder` for the slot it was booked
    for, `reminder+N` after its N-th move. So the outbox's dedup key keeps one reminder per
    slot, and a moved booking is reminded of its new slot."""
    return REMINDER_KIND if reschedules == 0 else f"{REMINDER_KIND}+{reschedules}"


def _reminder_kind_of(reschedules: Any) -> Any:
    """`reminder_kind` in SQL, for a booking's `reschedules` column."""
    return case(
        (reschedules == 0, literal(REMINDER_KIND)),
        else_=literal(f"{REMINDER_KIND}+") + cast(reschedules, String),
    )


@dataclass(frozen=True, slots=True)
class OutgoingRow:
    """A message to enqueue for one subscription."""

    ticket_id: str
    branch_id: str
    subscription_id: str
    channel: str
    kind: str
    language: str
    params: dict[str, Any]


def ticket_row(conn: Connection, ticket_id: str) -> Row[Any]:
    row = conn.execute(statements.TICKET, {"ticket_id": ticket_id}).one_or_none()
    if row is None:
        raise NotFound("No such ticket.", code="unknown_ticket")
    return row


def subscriptions_since(conn: Connection, contact_hash: str, since: datetime) -> int:
    """How many tickets this contact subscribed to since `since` (the flood limit)."""
    return int(
        conn.execute(
            select(func.count())
            .select_from(subscriptions)
            .where(
                subscriptions.c.contact_hash == contact_hash,
                subscriptions.c.created_at >= since,
            )
        ).scalar_one()
    )


def save_subscription(conn: Connection, values: dict[str, Any]) -> None:
    """Subscribe a ticket on a channel; a second subscription on that channel replaces the
    contact (one contact per ticket and channel)."""
    insert = upsert_insert(conn.dialect.name)(subscriptions).values(**values)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[subscriptions.c.ticket_id, subscriptions.c.channel],
            set_={
                "contact_hash": values["contact_hash"],
                "contact_secret": values["contact_secret"],
                "language": values["language"],
                "created_at": values["created_at"],
            },
        )
    )


def subscriptions_of(conn: Connection, ticket_ids: Collection[str]) -> list[Row[Any]]:
    if not ticket_ids:
        return []
    return list(
        conn.execute(
            select(subscriptions).where(subscriptions.c.ticket_id.in_(list(ticket_ids)))
        ).all()
    )


def has_subscriptions(conn: Connection, branch_id: str) -> bool:
    return (
        conn.execute(
            select(subscriptions.c.id).where(subscriptions.c.branch_id == branch_id).limit(1)
        ).first()
        is not None
    )


def successors(conn: Connection, ticket_ids: Collection[str]) -> dict[str, Row[Any]]:
    """The new visit of each transferred ticket: old id → its successor's row."""
    if not ticket_ids:
        return {}
    found = conn.execute(select(tickets).where(tickets.c.transferred_from.in_(list(ticket_ids))))
    return {row.transferred_from: row for row in found}


def move_subscriptions(conn: Connection, old_id: str, new_id: str) -> None:
    """A transfer is a new visit that keeps the citizen's number: their contact follows it."""
    conn.execute(
        update(subscriptions).where(subscriptions.c.ticket_id == old_id).values(ticket_id=new_id)
    )


def end_subscriptions(conn: Connection, ticket_ids: Collection[str], expires_at: datetime) -> None:
    """The visits ended: their contacts are deleted at `expires_at`."""
    if ticket_ids:
        conn.execute(
            update(subscriptions)
            .where(subscriptions.c.ticket_id.in_(list(ticket_ids)))
            .values(expires_at=expires_at)
        )


def prune_subscriptions(conn: Connection, now: datetime) -> int:
    """Delete the contacts whose retention ended (once nothing waits to be sent to them);
    returns how many."""
    pending = exists().where(
        messages.c.subscription_id == subscriptions.c.id,
        messages.c.state.in_((QUEUED, SENDING)),
    )
    result = conn.execute(delete(subscriptions).where(subscriptions.c.expires_at <= now, ~pending))
    return result.rowcount or 0


def enqueue(conn: Connection, outgoing: Sequence[OutgoingRow], now: datetime) -> int:
    """Add messages to the outbox; one already there (same ticket, channel, kind) is kept as
    it is. Returns how many were new."""
    added = 0
    insert = upsert_insert(conn.dialect.name)(messages)
    for item in outgoing:
        result = conn.execute(
            insert.values(
                ticket_id=item.ticket_id,
                branch_id=item.branch_id,
                subscription_id=item.subscription_id,
                channel=item.channel,
                kind=item.kind,
                language=item.language,
                params=json.dumps(item.params, ensure_ascii=False),
                state=QUEUED,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            ).on_conflict_do_nothing(
                index_elements=[messages.c.ticket_id, messages.c.channel, messages.c.kind]
            )
        )
        added += result.rowcount or 0
    return added


# A subscription whose ticket was already told "near" on its channel.
_TOLD_NEAR = exists().where(
    messages.c.ticket_id == subscriptions.c.ticket_id,
    messages.c.channel == subscriptions.c.channel,
    messages.c.kind == "near",
)


def untold_near(conn: Connection, ticket_ids: Collection[str]) -> list[Row[Any]]:
    """The subscriptions of these tickets not yet told "near", with each ticket's letter and
    number (for the message's label)."""
    if not ticket_ids:
        return []
    query = (
        select(subscriptions, tickets.c.letter, tickets.c.number)
        .join(tickets, tickets.c.id == subscriptions.c.ticket_id)
        .where(subscriptions.c.ticket_id.in_(list(ticket_ids)), ~_TOLD_NEAR)
    )
    return list(conn.execute(query))


def near_candidates(
    conn: Connection,
    branch_id: str,
    *,
    first: int,
    count: int,
    services: Collection[str] | None = None,
) -> list[Row[Any]]:
    """Subscriptions of the branch's waiting tickets that have not been told "near" yet, with
    what orders their tickets in line (service, priority, queue time, a target counter) and
    `place`: of the tickets in line behind one another (normal, no target counter), those at
    places `first`+1 … `first`+`count` of their service's line (of `services` when given);
    with `first` 0 also every ticket that may jump its line (`place` 0). The database ranks
    and cuts, so a check after each call reads a few rows per service, not every subscriber."""
    waiting = (
        select(
            subscriptions,
            tickets.c.service_id,
            tickets.c.priority,
            tickets.c.queued_at,
            tickets.c.target_counter_id,
        )
        .join(tickets, tickets.c.id == subscriptions.c.ticket_id)
        .where(
            subscriptions.c.branch_id == branch_id,
            tickets.c.status == TicketStatus.WAITING.value,
            ~_TOLD_NEAR,
        )
    )
    in_line = and_(
        tickets.c.priority == Priority.NORMAL.value, tickets.c.target_counter_id.is_(None)
    )
    place = func.dense_rank().over(
        partition_by=tickets.c.service_id, order_by=(tickets.c.queued_at, tickets.c.id)
    )
    ranked = waiting.where(in_line).add_columns(place.label("place"))
    if services is not None:
        ranked = ranked.where(tickets.c.service_id.in_(list(services)))
    line = ranked.subquery()
    found = list(
        conn.execute(select(line).where(line.c.place > first, line.c.place <= first + count))
    )
    if first == 0:
        found += conn.execute(waiting.where(~in_line).add_columns(literal(0).label("place")))
    return found


def waiting_subscriptions(
    conn: Connection, branch_id: str, service_id: str | None
) -> list[Row[Any]]:
    """Subscriptions of the branch's waiting tickets (of one service), with the ticket's letter
    and number."""
    query = (
        select(subscriptions, tickets.c.letter, tickets.c.number)
        .join(tickets, tickets.c.id == subscriptions.c.ticket_id)
        .where(
            subscriptions.c.branch_id == branch_id,
            tickets.c.status == TicketStatus.WAITING.value,
        )
    )
    if service_id is not None:
        query = query.where(tickets.c.service_id == service_id)
    return list(conn.execute(query).all())


def read_cursor(conn: Connection, branch_id: str) -> int | None:
    return conn.execute(
        select(notify_cursors.c.seq).where(notify_cursors.c.branch_id == branch_id)
    ).scalar()


def advance_cursor(conn: Connection, branch_id: str, seq: int) -> None:
    """Move the cursor forward (never back: two processes may both have read further)."""
    insert = upsert_insert(conn.dialect.name)(notify_cursors).values(branch_id=branch_id, seq=seq)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[notify_cursors.c.branch_id],
            set_={"seq": func.max(notify_cursors.c.seq, seq)}
            if conn.dialect.name == "sqlite"
            else {"seq": func.greatest(notify_cursors.c.seq, seq)},
        )
    )


def claim_due(conn: Connection, now: datetime, limit: int, lease: timedelta) -> list[Row[Any]]:
    """Claim up to `limit` due messages for this process: queued ones whose time has come, and
    ones another process claimed but did not finish within its lease (it died). On
    PostgreSQL `FOR UPDATE SKIP LOCKED` lets processes claim side by side without waiting or
    taking the same row; SQLite has one writer at a time."""
    due = (
        select(messages)
        .where(
            messages.c.state.in_((QUEUED, SENDING)),
            messages.c.next_attempt_at <= now,
        )
        .order_by(messages.c.next_attempt_at, messages.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = list(conn.execute(due).all())
    if claimed:
        conn.execute(
            update(messages)
            .where(messages.c.id.in_([row.id for row in claimed]))
            .values(state=SENDING, attempts=messages.c.attempts + 1, next_attempt_at=now + lease)
        )
    return claimed


def contacts_of(conn: Connection, subscription_ids: Collection[str]) -> dict[str, Row[Any]]:
    """The contacts messages go to: a ticket's subscription, or for a booking reminder the
    booking itself while it is confirmed (both have channel, contact_hash, contact_secret)."""
    if not subscription_ids:
        return {}
    wanted = list(subscription_ids)
    found = {
        row.id: row
        for row in conn.execute(select(subscriptions).where(subscriptions.c.id.in_(wanted)))
    }
    rest = [i for i in wanted if i not in found]
    if rest:
        booked = select(bookings).where(
            bookings.c.id.in_(rest), bookings.c.status == BOOKING_CONFIRMED
        )
        found |= {row.id: row for row in conn.execute(booked)}
    return found


def bookings_to_remind(
    conn: Connection, due_from: datetime, due_until: datetime, limit: int
) -> list[Row[Any]]:
    """Confirmed bookings whose slot is between the two times and that were not reminded of
    it yet (the reminder is an outbox message keyed by the booking's id and `reminder_kind`)."""
    reminded = exists().where(
        messages.c.ticket_id == bookings.c.id,
        messages.c.kind == _reminder_kind_of(bookings.c.reschedules),
    )
    return list(
        conn.execute(
            select(bookings)
            .where(
                bookings.c.status == BOOKING_CONFIRMED,
                bookings.c.slot_at > due_from,
                bookings.c.slot_at <= due_until,
                bookings.c.contact_secret != "",
                ~reminded,
            )
            .order_by(bookings.c.slot_at)
            .limit(limit)
        ).all()
    )


def settle(conn: Connection, message_id: int, values: dict[str, Any]) -> None:
    """Record the outcome of one sending attempt (sent, retry later, failed)."""
    conn.execute(
        update(messages)
        .where(and_(messages.c.id == message_id, messages.c.state == SENDING))
        .values(**values)
    )


def message_states(conn: Connection, branch_id: str, limit: int) -> list[dict[str, Any]]:
    """The branch's newest messages and their state, for staff (no contact in it)."""
    rows = conn.execute(
        select(
            messages.c.id,
            messages.c.ticket_id,
            messages.c.channel,
            messages.c.kind,
            messages.c.language,
            messages.c.state,
            messages.c.attempts,
            messages.c.created_at,
            messages.c.sent_at,
            messages.c.last_error,
            messages.c.params,
        )
        .where(messages.c.branch_id == branch_id)
        .order_by(messages.c.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "id": r.id,
            "ticket_id": r.ticket_id,
            "params": json.loads(r.params),  # label, counter, a broadcast's template: no contact
            "channel": r.channel,
            "kind": r.kind,
            "language": r.language,
            "state": r.state,
            "attempts": r.attempts,
            "created_at": r.created_at.isoformat(),
            "sent_at": r.sent_at.isoformat() if r.sent_at else None,
            "last_error": r.last_error,
        }
        for r in rows
    ]


def delay_ticket(
    conn: Connection, catalog: Catalog, ticket_id: str, now: datetime, minutes: int, actor: str
) -> dict[str, Any]:
    """Move a waiting ticket back by `minutes` of queue time, once, never past the end of the
    branch's day. The move is an event (`ticket.delayed`): estimates and consoles see it."""
    row = conn.execute(statements.TICKET_LOCKED, {"ticket_id": ticket_id}).one_or_none()
    if row is None:
        raise NotFound("No such ticket.", code="unknown_ticket")
    if row.status != TicketStatus.WAITING.value:
        raise Conflict("Only a waiting ticket can be moved back.", code="late_not_waiting")
    used = conn.execute(
        select(late_moves.c.ticket_id).where(late_moves.c.ticket_id == ticket_id)
    ).first()
    if used is not None:
        raise Conflict("This ticket has already been moved back once.", code="late_already_used")
    zone = ZoneInfo(catalog.branch(row.branch_id).timezone)
    local_now = now.astimezone(zone)
    end_of_day = datetime.combine(local_now.date(), time(23, 59, 59), zone)
    queued_at = min(row.queued_at + timedelta(minutes=minutes), end_of_day)
    conn.execute(late_moves.insert().values(ticket_id=ticket_id, at=now, minutes=minutes))
    conn.execute(statements.UPDATE_TICKET, {"queued_at": queued_at, "ticket_id": ticket_id})
    view = ticket_view(catalog, dict(row._mapping) | {"queued_at": queued_at})
    view["queued_at"] = queued_at.isoformat()
    append_event(conn, row.branch_id, "ticket.delayed", now, {"ticket": view}, actor)
    return view


def open_ticket_of(conn: Connection, contact_hash: str) -> str | None:
    """The newest waiting ticket subscribed by SMS with this contact (an SMS reply's ticket)."""
    return conn.execute(
        select(subscriptions.c.ticket_id)
        .join(tickets, tickets.c.id == subscriptions.c.ticket_id)
        .where(
            subscriptions.c.contact_hash == contact_hash,
            subscriptions.c.channel == "sms",
            tickets.c.status == TicketStatus.WAITING.value,
        )
        .order_by(subscriptions.c.created_at.desc())
        .limit(1)
    ).scalar()
