"""Granting priority service to a ticket already in the queue (issue 19: "an operator can mark a
waiting ticket priority, audited").

Priority is granted, never declared: a member of staff who has seen the citizen marks their
waiting ticket. One transaction changes the ticket's class and appends `ticket.prioritized`,
so the boards, consoles, phones and the next `call_next` see it, and the event's staff actor
writes the audit row (`store/audit.py`) in that same transaction.
"""

from __future__ import annotations

from sqlalchemy import Connection, update

from queue_server.catalog.loader import Catalog
from queue_server.domain.tickets import Priority, TicketStatus
from queue_server.errors import Conflict, NotFound
from queue_server.store import rows
from queue_server.store.change import Change, Clock
from queue_server.store.database import Database
from queue_server.store.events import append_event
from queue_server.store.schema import tickets
from queue_server.store.views import ticket_view

PRIORITIZED = "ticket.prioritized"


class PriorityMarks:
    """Staff marking a waiting ticket priority."""

    def __init__(self, database: Database, catalog: Catalog, clock: Clock) -> None:
        self.database = database
        self.catalog = catalog
        self.clock = clock

    async def mark_priority(self, branch_id: str, ticket_id: str, *, actor: str) -> Change:
        """Make a waiting ticket of `branch_id` a priority ticket. Marking one that already is
        changes nothing (no event, `created` False), so a retried click is harmless."""
        self.catalog.branch(branch_id)
        now = self.clock()

        def mark(conn: Connection) -> Change:
            row = rows.ticket_row(conn, ticket_id, lock=True)
            if row.branch_id != branch_id:
                raise NotFound("No such ticket in this branch.", code="unknown_ticket")
            if row.status != TicketStatus.WAITING:
                raise Conflict(
                    "Only a waiting ticket can be given priority.",
                    code="priority_not_waiting",
                    status=row.status,
                )
            if row.priority == Priority.PRIORITY:
                return Change(ticket_view(self.catalog, row), [], created=False)
            if row.priority == Priority.APPOINTMENT:
                raise Conflict(
                    "This ticket is a booked appointment; it is already called when due.",
                    code="priority_is_appointment",
                )
            conn.execute(
                update(tickets)
                .where(tickets.c.id == row.id)
                .values(priority=Priority.PRIORITY.value)
            )
            merged = dict(row._mapping) | {"priority": Priority.PRIORITY.value}
            view = ticket_view(self.catalog, merged)
            event = append_event(conn, branch_id, PRIORITIZED, now, {"ticket": view}, actor)
            return Change(view, [event])

        return await self.database.transaction(mark)
