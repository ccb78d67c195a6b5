"""What operators do at a counter, and a citizen's cancel: each one transaction that changes
state and appends its event (published by the transaction after its commit).

Lock order, to keep PostgreSQL free of lock cycles: the counter's row, then ticket rows, then
the branch's event stream (taken by `append_event`).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, Row, func, select, update

from queue_server.catalog.loader import Catalog
from queue_server.domain import dispatch
from queue_server.domain.tickets import Outcome, TicketAction, TicketStatus, transition
from queue_server.errors import Conflict, NotFound
from queue_server.store import rows, statements
from queue_server.store.change import Change, Clock
from queue_server.store.database import Database
from queue_server.store.events import append_event
from queue_server.store.rows import CounterMode
from queue_server.store.schema import counter_states, tickets
from queue_server.store.views import ticket_view

TAKEN_OVER = "counter.taken_over"
# Tickets read from the head of each line for "call next" (`rows.line_heads`); when other
# counters are taking every one of the first this many picks, the whole line is read instead.
CANDIDATES_PER_LINE = 4

COUNTER_EVENT = {
    CounterMode.OPEN: "counter.opened",
    CounterMode.PAUSED: "counter.paused",
    CounterMode.CLOSED: "counter.closed",
}

_EVENT_KIND = {
    TicketAction.CALL: "called",
    TicketAction.RECALL: "recalled",
    TicketAction.RECYCLE: "recycled",
    TicketAction.START: "started",
    TicketAction.FINISH: "finished",
    TicketAction.NO_SHOW: "no_show",
    TicketAction.TRANSFER: "transferred",
    TicketAction.CANCEL: "cancelled",
}


class CounterActions:
    """Counter modes and the life-cycle steps of the visit a counter has in hand."""

    def __init__(
        self,
        database: Database,
        catalog: Catalog,
        clock: Clock,
        guard: float | None = dispatch.FAIRNESS_GUARD,
    ) -> None:
        self.database = database
        self.catalog = catalog
        self.clock = clock
        self.guard = guard  # the dispatcher's fairness guard (None: off)

    async def cancel_ticket(self, ticket_id: str, actor: str = "citizen") -> Change:
        def cancel(conn: Connection) -> Change:
            row = rows.ticket_row(conn, ticket_id, lock=True)
            return self._apply(conn, row, TicketAction.CANCEL, actor, None)

        return await self.database.transaction(cancel)

    async def set_counter_mode(
        self,
        branch_id: str,
        counter_id: str,
        mode: CounterMode,
        *,
        actor: str,
        reason: str | None = None,
    ) -> Change:
        """Open, pause (with a reason) or close a counter. Closing needs no visit in hand."""
        counter = self.catalog.counter(branch_id, counter_id)
        now = self.clock()

        def change(conn: Connection) -> Change:
            current = _locked_counter(conn, branch_id, counter_id, now)
            _require_holder(current, actor, counter.number)
            if mode is CounterMode.CLOSED and current and current.current_ticket_id:
                raise Conflict(
                    "Finish or hand back the current visit before closing the counter.",
                    code="counter_busy",
                )
            if mode is CounterMode.PAUSED and (current is None or current.state == "closed"):
                raise Conflict("Open the counter before pausing it.", code="counter_closed")
            values = {
                "state": mode.value,
                "pause_reason": reason if mode is CounterMode.PAUSED else None,
                "operator": actor if mode is not CounterMode.CLOSED else None,
                "updated_at": now,
            }
            rows.upsert_counter(conn, branch_id, counter_id, values)
            view = {
                "branch": branch_id,
                "counter_id": counter_id,
                "counter_number": counter.number,
                "state": mode.value,
                "pause_reason": values["pause_reason"],
                "current_ticket_id": current.current_ticket_id if current else None,
            }
            event = append_event(conn, branch_id, COUNTER_EVENT[mode], now, view, actor)
            return Change(view, [event])

        return await self.database.transaction(change)

    async def call_next(self, branch_id: str, counter_id: str, *, actor: str) -> Change:
        """Call the most urgent ticket this counter may serve; atomic across processes."""
        profile = self.catalog.profile(branch_id, counter_id)
        counter = self.catalog.counter(branch_id, counter_id)
        now = self.clock()

        def call(conn: Connection) -> Change:
            self._require_free_counter(conn, branch_id, counter_id, actor, counter.number)
            heads = rows.line_heads(
                conn, branch_id, counter_id, profile, now, self.catalog, CANDIDATES_PER_LINE
            )
            ranked = dispatch.rank_for_counter(heads, counter_id, profile, now, self.guard)
            first = ranked[:CANDIDATES_PER_LINE]
            change = self._call_first(conn, first, actor, counter.number, counter_id)
            if change is None and first:  # other counters are taking each of them right now
                waiting = rows.waiting(conn, branch_id, self.catalog)
                ranked = dispatch.rank_for_counter(waiting, counter_id, profile, now, self.guard)
                change = self._call_first(conn, ranked, actor, counter.number, counter_id)
            if change is None:
                raise NotFound("No ticket is waiting for this counter.", code="queue_empty")
            return change

        return await self.database.transaction(call)

    async def call_ticket(
        self, branch_id: str, counter_id: str, ticket_id: str, *, actor: str
    ) -> Change:
        """Call one particular waiting ticket (e.g. a citizen who came to the counter)."""
        counter = self.catalog.counter(branch_id, counter_id)

        def call(conn: Connection) -> Change:
            self._require_free_counter(conn, branch_id, counter_id, actor, counter.number)
            row = rows.ticket_row(conn, ticket_id, lock=True)
            if row.branch_id != branch_id:
                raise NotFound("No such ticket in this branch.", code="unknown_ticket")
            return self._apply(
                conn, row, TicketAction.CALL, actor, counter.number, counter_id=counter_id
            )

        return await self.database.transaction(call)

    async def act_on_current(
        self,
        branch_id: str,
        counter_id: str,
        action: TicketAction,
        *,
        actor: str,
        outcome: Outcome | None = None,
    ) -> Change:
        """Recall, recycle, start, finish or mark no-show the counter's current visit."""
        counter = self.catalog.counter(branch_id, counter_id)

        def act(conn: Connection) -> Change:
            row = self._current_ticket(conn, branch_id, counter_id, actor, counter.number)
            return self._apply(
                conn, row, action, actor, counter.number, counter_id=counter_id, outcome=outcome
            )

        return await self.database.transaction(act)

    async def transfer(
        self,
        branch_id: str,
        counter_id: str,
        *,
        actor: str,
        service_id: str | None = None,
        to_counter_id: str | None = None,
        keep_queue_time: bool = True,
    ) -> Change:
        """End the current visit as transferred and queue a new visit for another service or
        counter. The citizen keeps the printed number and, unless asked otherwise, the time
        already waited."""
        counter = self.catalog.counter(branch_id, counter_id)
        if to_counter_id is not None:
            self.catalog.counter(branch_id, to_counter_id)
        now = self.clock()

        def move(conn: Connection) -> Change:
            row = self._current_ticket(conn, branch_id, counter_id, actor, counter.number)
            target_service = service_id or row.service_id
            self.catalog.service(target_service)
            if not self.catalog.serves(branch_id, target_service):
                raise NotFound(
                    f"Service {target_service} is not offered at {branch_id}.",
                    code="service_not_offered",
                )
            change = self._apply(
                conn, row, TicketAction.TRANSFER, actor, counter.number, counter_id=counter_id
            )
            visit = conn.execute(
                select(func.max(tickets.c.visit)).where(
                    tickets.c.branch_id == branch_id,
                    tickets.c.letter == row.letter,
                    tickets.c.day == row.day,
                    tickets.c.number == row.number,
                )
            ).scalar_one()
            new = {
                "id": uuid.uuid4().hex,
                "branch_id": branch_id,
                "service_id": target_service,
                "letter": row.letter,
                "number": row.number,
                "day": row.day,
                "priority": row.priority,
                "language": row.language,
                "status": TicketStatus.WAITING.value,
                "target_counter_id": to_counter_id,
                "issued_at": row.issued_at,
                "queued_at": row.queued_at if keep_queue_time else now,
                "appointment_at": row.appointment_at,
                "recalls": 0,
                "visit": visit + 1,
                "transferred_from": row.id,
            }
            conn.execute(tickets.insert().values(**new))
            rows.record(conn, new["id"], None, TicketStatus.WAITING, "issue", now, actor)
            view = ticket_view(self.catalog, new)
            event = append_event(conn, branch_id, "ticket.issued", now, {"ticket": view}, actor)
            change.events.append(event)
            change.result["transferred_to"] = view
            return change

        return await self.database.transaction(move)

    async def take_over(self, branch_id: str, counter_id: str, *, actor: str) -> Change:
        """Bind an open or paused counter to `actor` in place of the operator holding it (who
        may be away from the desk). The event tells the first operator's console; who may do
        this is the edge's decision (managers and admins)."""
        counter = self.catalog.counter(branch_id, counter_id)
        now = self.clock()

        def take(conn: Connection) -> Change:
            state = rows.counter_row(conn, branch_id, counter_id, lock=True)
            if state is None or state.state == CounterMode.CLOSED:
                raise Conflict("Nobody holds this counter: open it instead.", code="counter_closed")
            if state.operator == actor:
                raise Conflict("You already hold this counter.", code="counter_already_held")
            conn.execute(
                update(counter_states)
                .where(
                    counter_states.c.branch_id == branch_id,
                    counter_states.c.counter_id == counter_id,
                )
                .values(operator=actor, updated_at=now)
            )
            view = {
                "branch": branch_id,
                "counter_id": counter_id,
                "counter_number": counter.number,
                "state": state.state,
                "pause_reason": state.pause_reason,
                "current_ticket_id": state.current_ticket_id,
                "operator": holder_name(actor),
                "previous_operator": holder_name(state.operator),
            }
            event = append_event(conn, branch_id, TAKEN_OVER, now, view, actor)
            return Change(view, [event])

        return await self.database.transaction(take)

    def _apply(
        self,
        conn: Connection,
        row: Row[Any],
        action: TicketAction,
        actor: str,
        counter_number: int | None,
        *,
        counter_id: str | None = None,
        outcome: Outcome | None = None,
    ) -> Change:
        """Run one life-cycle step on a locked ticket row and store its event."""
        now = self.clock()
        step = transition(
            TicketStatus(row.status),
            action,
            at=now,
            actor=actor,
            counter_id=counter_id,
            outcome=outcome,
        )
        values: dict[str, Any] = {"status": step.to_status.value}
        if step.outcome is not None:
            values["outcome"] = step.outcome.value
        if action is TicketAction.CALL:
            values |= {"counter_id": counter_id, "called_at": now}
        elif action is TicketAction.RECALL:
            values["recalls"] = row.recalls + 1
        elif action is TicketAction.RECYCLE:
            values |= {"counter_id": None, "called_at": None, "call_seq": None}
        elif action is TicketAction.START:
            values["started_at"] = now
        elif step.to_status in (TicketStatus.DONE, TicketStatus.NO_SHOW, TicketStatus.TRANSFERRED):
            values["finished_at"] = now
        rows.record(conn, row.id, step.from_status, step.to_status, action, now, actor, step)
        if row.counter_id or counter_id:
            holding = step.to_status in (TicketStatus.CALLED, TicketStatus.SERVING)
            conn.execute(
                statements.UPDATE_COUNTER,
                {
                    "current_ticket_id": row.id if holding else None,
                    "updated_at": now,
                    "key_branch_id": row.branch_id,
                    "key_counter_id": counter_id or row.counter_id,
                },
            )
        merged = dict(row._mapping) | values
        view = ticket_view(self.catalog, merged, counter_number=counter_number)
        data: dict[str, Any] = {"ticket": view}
        if action in (TicketAction.CALL, TicketAction.RECALL):
            data |= {"counter_id": view["counter_id"], "counter_number": counter_number}
        kind = "ticket." + _EVENT_KIND[action]
        event = append_event(conn, row.branch_id, kind, now, data, actor)
        # One UPDATE after the event, which gives a call its `call_seq` (two round trips before).
        if action in (TicketAction.CALL, TicketAction.RECALL):
            values["call_seq"] = event.seq
        conn.execute(statements.UPDATE_TICKET, values | {"ticket_id": row.id})
        return Change(view, [event])

    def _call_first(
        self,
        conn: Connection,
        picks: list[dispatch.Pick],
        actor: str,
        counter_number: int,
        counter_id: str,
    ) -> Change | None:
        """Call the first of `picks` that no other counter is taking (None: each was taken)."""
        for pick in picks:
            row = rows.ticket_row(conn, pick.ticket.id, lock=True, skip_locked=True)
            if row is None or row.status != TicketStatus.WAITING:
                continue  # another counter is taking it right now
            change = self._apply(
                conn, row, TicketAction.CALL, actor, counter_number, counter_id=counter_id
            )
            change.result["reason"] = pick.reason
            return change
        return None

    def _require_free_counter(
        self, conn: Connection, branch_id: str, counter_id: str, actor: str, number: int
    ) -> None:
        state = rows.counter_row(conn, branch_id, counter_id, lock=True)
        if state is None or state.state != CounterMode.OPEN:
            raise Conflict("Open the counter first.", code="counter_not_open")
        _require_holder(state, actor, number)
        if state.current_ticket_id:
            raise Conflict(
                "This counter already has a visit in hand: finish it, mark a no-show or "
                "put it back in the queue first.",
                code="counter_busy",
                ticket_id=state.current_ticket_id,
            )

    def _current_ticket(
        self, conn: Connection, branch_id: str, counter_id: str, actor: str, number: int
    ) -> Row[Any]:
        state = rows.counter_row(conn, branch_id, counter_id, lock=True)
        _require_holder(state, actor, number)
        if state is None or not state.current_ticket_id:
            raise Conflict("This counter has no visit in hand.", code="no_current_ticket")
        return rows.ticket_row(conn, state.current_ticket_id, lock=True)


def holder_name(actor: str | None) -> str | None:
    """The name an actor is shown by: `operator:nino` → `nino`."""
    if actor is None:
        return None
    return actor.split(":", 1)[1] if ":" in actor else actor


def _require_holder(state: Row[Any] | None, actor: str, counter_number: int) -> None:
    """An open or paused counter belongs to the operator who opened it: anyone else must take
    it over first (`take_over`), so two people never work one counter unknowingly."""
    if state is None or state.state == CounterMode.CLOSED or not state.operator:
        return
    if state.operator != actor:
        name = holder_name(state.operator)
        raise Conflict(
            f"Counter {counter_number} is held by {name}. Ask them to close it, or ask a "
            "manager to take it over.",
            code="counter_held_by_other",
            held_by=name,
        )


def _locked_counter(conn: Connection, branch_id: str, counter_id: str, now: Any) -> Row[Any] | None:
    """The counter's state row, locked. A row (closed) is made first when there is none, so two
    operators opening a never-used counter at once queue on its lock on PostgreSQL instead of
    both finding nothing to lock. Returns None for a counter that was never opened."""
    insert = statements.upsert_insert(conn.dialect.name)(counter_states).values(
        branch_id=branch_id,
        counter_id=counter_id,
        state=CounterMode.CLOSED.value,
        updated_at=now,
    )
    created = conn.execute(insert.on_conflict_do_nothing()).rowcount
    row = rows.counter_row(conn, branch_id, counter_id, lock=True)
    return None if created else row
