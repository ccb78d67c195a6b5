"""The fairness ledger's input: a branch's visits of one local day from the report facts, each
with its kind (walk-in, appointment, remote place, priority), remote places found through the
bookings that became their tickets."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from queue_server.domain.fairness import Kind, LedgerVisit
from queue_server.store.bookings import REMOTE
from queue_server.store.schema_bookings import bookings
from queue_server.store.schema_reports import visit_facts

CANCELLED = "cancelled"


async def ledger_visits(conn: AsyncConnection, branch_id: str, day: date) -> list[LedgerVisit]:
    """The visits that joined the branch's queue on `day` (its local calendar day)."""
    remote = (
        select(bookings.c.ticket_id)
        .where(bookings.c.branch_id == branch_id, bookings.c.kind == REMOTE)
        .where(bookings.c.ticket_id.is_not(None))
    )
    facts = visit_facts.c
    rows = await conn.execute(
        select(
            facts.ticket_id, facts.service_id, facts.priority, facts.issued_at, facts.called_at,
            facts.finished_at, facts.outcome, facts.counter_id, facts.target_wait_s,
            facts.ticket_id.in_(remote).label("remote"),
        ).where(facts.branch_id == branch_id, facts.local_date == day)
    )  # fmt: skip
    return [
        LedgerVisit(
            ticket_id=row.ticket_id,
            service_id=row.service_id,
            kind=_kind(row.priority, bool(row.remote)),
            arrived_at=row.issued_at,
            called_at=row.called_at,
            left_at=row.finished_at if row.called_at is None else None,
            counter_id=row.counter_id,
            target_wait_s=row.target_wait_s,
        )
        for row in rows
    ]


def _kind(priority: str, remote: bool) -> Kind:
    if remote:
        return Kind.REMOTE
    if priority == "appointment":
        return Kind.APPOINTMENT
    if priority == "priority":
        return Kind.PRIORITY
    return Kind.WALK_IN
