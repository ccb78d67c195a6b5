"""What screens and people read of a branch: tickets with their estimates, the lobby board,
the queues, the counters and their consoles. Plain queries run through `Database.reading`."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from queue_server.catalog.loader import Catalog
from queue_server.domain import dispatch
from queue_server.domain.numbering import local_day
from queue_server.domain.public import public_call
from queue_server.domain.tickets import TicketStatus
from queue_server.errors import NotFound
from queue_server.store import rows
from queue_server.store.change import Clock
from queue_server.store.database import Database
from queue_server.store.estimates import Estimates
from queue_server.store.events import current_head
from queue_server.store.schema import tickets
from queue_server.store.views import counter_view, ticket_view

# Adds parts to ticket views inside their read (the views by ticket id, changed in place).
AddToViews = Callable[[Connection, dict[str, dict[str, Any]]], None]
BOARD_CALLS = 12  # calls shown on a lobby board, newest first


class Reads:
    """Read views of every branch."""

    def __init__(
        self,
        database: Database,
        catalog: Catalog,
        clock: Clock,
        estimates: Estimates,
        guard: float | None = dispatch.FAIRNESS_GUARD,
    ) -> None:
        self.database = database
        self.catalog = catalog
        self.clock = clock
        self.estimates = estimates
        self.guard = guard  # the dispatcher's fairness guard: a console lists in its order

    async def ticket(self, ticket_id: str) -> dict[str, Any]:
        """A ticket as its holder sees it: status, people ahead, estimated wait, counter."""
        views = await self.tickets([ticket_id])
        if ticket_id not in views:
            raise NotFound("No such ticket.", code="unknown_ticket")
        return views[ticket_id]

    async def tickets(
        self,
        ticket_ids: Collection[str],
        also: AddToViews | None = None,
        *,
        forecast: bool = True,
    ) -> dict[str, dict[str, Any]]:
        """Several tickets as their holders see them, read together: one query for the
        tickets and one estimate's inputs per branch, however many phones follow them.
        Unknown ids are left out. `also` adds to the views in the same read (a print job's
        status): one connection checkout per refresh, not one per part. With `forecast` False
        a changed line does not ask for a forecast refresh (`Estimates.remember`): for a reader
        of people ahead only."""
        now = self.clock()

        def read(conn: Connection) -> dict[str, dict[str, Any]]:
            views = self._tickets(conn, ticket_ids, now, forecast)
            if also is not None and views:
                also(conn, views)
            return views

        return await self.database.reading(read)

    def _tickets(
        self, conn: Connection, ticket_ids: Collection[str], now: datetime, forecast: bool
    ) -> dict[str, dict[str, Any]]:
        found = conn.execute(select(tickets).where(tickets.c.id.in_(list(ticket_ids)))).all()
        views: dict[str, dict[str, Any]] = {}
        inputs: dict[str, Any] = {}
        for row in found:
            guess = None
            if row.status == TicketStatus.WAITING:
                if row.branch_id not in inputs:
                    # `reading` runs on the loop's thread: the caches may be updated here.
                    read = self.estimates.read_inputs(conn, row.branch_id, now)
                    self.estimates.remember(row.branch_id, read, forecast=forecast)
                    inputs[row.branch_id] = read
                read = inputs[row.branch_id]
                guess = self.estimates.guess(
                    row.branch_id, rows.queued(row, self.catalog), read, now
                )
            views[row.id] = ticket_view(self.catalog, row, guess)
        transferred = [r.id for r in found if r.status == TicketStatus.TRANSFERRED]
        for ticket_id in transferred:
            views[ticket_id]["transferred_to"] = None
        if transferred:
            successors = conn.execute(
                select(tickets.c.transferred_from, tickets.c.id).where(
                    tickets.c.transferred_from.in_(transferred)
                )
            )
            for old_id, new_id in successors:
                views[old_id]["transferred_to"] = new_id
        return views

    async def board(self, branch_id: str) -> dict[str, Any]:
        """What a lobby screen shows: latest calls, waiting counts, counters' states."""
        self.catalog.branch(branch_id)
        return await self.database.reading(lambda conn: self._board(conn, branch_id))

    async def snapshot(self, branch_id: str) -> tuple[dict[str, Any], int, str | None]:
        """The board with the event sequence number it is consistent with."""
        self.catalog.branch(branch_id)

        def read(conn: Connection) -> tuple[dict[str, Any], int, str | None]:
            head = current_head(conn, branch_id)
            board = self._board(conn, branch_id)
            return board, (head.seq if head else 0), (head.epoch if head else None)

        async with self.database.snapshot() as conn:
            return await conn.run_sync(read)

    def _board(self, conn: Connection, branch_id: str) -> dict[str, Any]:
        day = local_day(self.clock(), self.catalog.branch(branch_id).timezone)
        calls = conn.execute(
            select(tickets)
            .where(
                tickets.c.branch_id == branch_id,
                tickets.c.day == day,
                tickets.c.call_seq.is_not(None),
            )
            .order_by(tickets.c.call_seq.desc())
            .limit(BOARD_CALLS)
        ).all()
        waiting = conn.execute(
            select(tickets.c.service_id, func.count())
            .where(tickets.c.branch_id == branch_id, tickets.c.status == TicketStatus.WAITING)
            .group_by(tickets.c.service_id)
        ).all()
        states = rows.counter_rows(conn, branch_id)
        counters = self.catalog.branch(branch_id).counters
        return {
            "branch": branch_id,
            "calls": [public_call(ticket_view(self.catalog, r)) for r in calls],
            "waiting": {service: count for service, count in waiting},
            "counters": {
                c.id: {"number": c.number, "state": counter_view(c, states.get(c.id))["state"]}
                for c in counters
            },
        }

    async def queues(self, branch_id: str) -> list[dict[str, Any]]:
        """Waiting tickets per service with the longest wait against its target."""
        self.catalog.branch(branch_id)
        now = self.clock()
        waiting = await self.database.reading(
            lambda conn: rows.waiting(conn, branch_id, self.catalog)
        )
        by_service: dict[str, list[dispatch.QueuedTicket]] = {}
        for ticket in waiting:
            by_service.setdefault(ticket.service_id, []).append(ticket)
        result = []
        for service in self.catalog.branch_services(branch_id):
            queued = by_service.get(service.id, [])
            longest = max(((now - t.queued_at).total_seconds() for t in queued), default=0.0)
            result.append(
                {
                    "service_id": service.id,
                    "letter": service.letter,
                    "waiting": len(queued),
                    "longest_wait_s": round(longest),
                    "target_wait_s": round(service.target_wait_min * 60),
                }
            )
        return result

    async def consoles(
        self, branch_id: str, counter_ids: Collection[str]
    ) -> dict[str, dict[str, Any]]:
        """What each of these counters' consoles shows: the counter, its visit in hand and its
        waiting list (what it may serve, most urgent first). One read for all of them: the
        waiting tickets are read and viewed once, and ranked for each counter."""
        branch = self.catalog.branch(branch_id)
        now = self.clock()

        def read(conn: Connection) -> tuple[dict[str, Any], Sequence[Any], dict[Any, Any]]:
            states = rows.counter_rows(conn, branch_id)
            waiting = conn.execute(
                select(tickets).where(
                    tickets.c.branch_id == branch_id, tickets.c.status == TicketStatus.WAITING
                )
            ).all()
            in_hand = [s.current_ticket_id for s in states.values() if s.current_ticket_id]
            current: dict[str | None, dict[str, Any]] = {}
            if in_hand:
                held = conn.execute(select(tickets).where(tickets.c.id.in_(in_hand)))
                current = {row.id: ticket_view(self.catalog, row) for row in held}
            return states, waiting, current

        states, waiting, current = await self.database.reading(read)
        queued = [rows.queued(row, self.catalog) for row in waiting]
        views = {row.id: ticket_view(self.catalog, row) for row in waiting}
        consoles = {}
        for counter in branch.counters:
            if counter.id not in counter_ids:
                continue
            state = counter_view(counter, states.get(counter.id))
            ranked = dispatch.rank_for_counter(
                queued, counter.id, self.catalog.profile(branch_id, counter.id), now, self.guard
            )
            consoles[counter.id] = {
                "counter": state,
                "current": current.get(state["current_ticket_id"]),
                "waiting": [
                    views[pick.ticket.id]
                    | {
                        "waited_s": round((now - pick.ticket.queued_at).total_seconds()),
                        "reason": pick.reason,
                    }
                    for pick in ranked
                ],
            }
        return consoles

    async def counters(self, branch_id: str) -> list[dict[str, Any]]:
        branch = self.catalog.branch(branch_id)
        states = await self.database.reading(lambda conn: rows.counter_rows(conn, branch_id))
        return [counter_view(c, states.get(c.id)) for c in branch.counters]
