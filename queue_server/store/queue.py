"""Queue operations: each one is a single transaction that changes state and appends its event.

The pure rules come from `queue_server.domain`; this module loads what they need, applies
their verdict and stores it. Lock order, to keep PostgreSQL free of lock cycles: the counter's
row, then ticket rows, then the branch's event stream (taken by `append_event`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from queue_server.catalog.loader import Catalog
from queue_server.domain import dispatch, estimate
from queue_server.domain.numbering import local_day, ticket_label
from queue_server.domain.public import public_call
from queue_server.domain.tickets import (
    Outcome,
    Priority,
    TicketAction,
    TicketStatus,
    transition,
)
from queue_server.errors import Conflict, NotFound
from queue_server.store import statements
from queue_server.store.batching import GroupCommit
from queue_server.store.database import Database
from queue_server.store.events import (
    Event,
    NewEvent,
    StreamHead,
    append_event,
    append_events,
    stream_head,
)
from queue_server.store.schema import (
    counter_states,
    idempotency_keys,
    ticket_numbers,
    ticket_transitions,
    tickets,
)

BOARD_CALLS = 12  # calls shown on a lobby board, newest first
SERVICE_TIMES_TTL = timedelta(minutes=1)  # how long learned service times are reused
Clock = Callable[[], datetime]


class CounterState(StrEnum):
    OPEN = "open"
    PAUSED = "paused"
    CLOSED = "closed"


COUNTER_EVENT = {
    CounterState.OPEN: "counter.opened",
    CounterState.PAUSED: "counter.paused",
    CounterState.CLOSED: "counter.closed",
}


@dataclass(slots=True)
class Change:
    """What an operation returns: its result for the caller and the events to publish."""

    result: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    created: bool = True


def utc_now() -> datetime:
    return datetime.now(UTC)


class QueueStore:
    """Tickets and counters of every branch, kept in the database."""

    def __init__(self, database: Database, catalog: Catalog, clock: Clock = utc_now) -> None:
        self.database = database
        self.catalog = catalog
        self.clock = clock
        self._configured_s = {s.id: s.service_time_min * 60 for s in catalog.services.values()}
        # branch → (when learned, service times learned from the day's finished visits)
        self._learned: dict[str, tuple[datetime, estimate.ServiceTimes]] = {}
        self._issuing: GroupCommit[_Issue, Change] = GroupCommit(self._issue_batch)
        self._waiting_cache: dict[str, _WaitingSeen] = {}

    # ---- tickets -------------------------------------------------------------------------

    async def issue_ticket(
        self,
        branch_id: str,
        service_id: str,
        *,
        priority: Priority = Priority.NORMAL,
        language: str = "ka",
        appointment_at: datetime | None = None,
        idempotency_key: str | None = None,
        actor: str = "kiosk",
    ) -> Change:
        """Issue the next number of the service's letter for today, with a wait estimate.
        A retried request with the same idempotency key returns the same ticket. Tickets
        issued at the same moment in a branch share one transaction (`GroupCommit`)."""
        self.catalog.branch(branch_id)
        service = self.catalog.service(service_id)
        if not self.catalog.serves(branch_id, service_id):
            raise NotFound(
                f"Service {service_id} is not offered at {branch_id}.",
                code="service_not_offered",
            )
        fingerprint = _fingerprint(service_id, priority, language, appointment_at)
        if idempotency_key:
            async with self.database.read() as conn:
                earlier = await self._replay(conn, branch_id, idempotency_key, fingerprint)
            if earlier:
                return earlier
        request = _Issue(
            service_id=service_id,
            letter=service.letter,
            target_wait_s=service.target_wait_min * 60,
            priority=priority,
            language=language,
            appointment_at=appointment_at,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            actor=actor,
            at=self.clock(),  # read just before joining the batch: numbers follow issue times
        )
        try:
            return await self._issuing.submit(branch_id, request)
        except IntegrityError:
            # Another process stored the same idempotency key first: answer with its ticket.
            if idempotency_key:
                async with self.database.read() as conn:
                    earlier = await self._replay(conn, branch_id, idempotency_key, fingerprint)
                if earlier:
                    return earlier
            raise

    async def _issue_batch(self, branch_id: str, batch: list[_Issue]) -> list[Change | Exception]:
        """Write a batch of issued tickets in one transaction: one number update per letter,
        one sequence update, and one multi-row insert per table. Each ticket keeps the moment
        its request arrived as its issue time."""
        timezone = self.catalog.branch(branch_id).timezone
        now = self.clock()
        try:
            async with self.database.write() as conn:
                # Read before the first write: on PostgreSQL no lock is held yet, and the line
                # is cached, so this is one small query while nothing else changed.
                line, counters, times = await self._estimator_inputs(conn, branch_id, now)
                outcomes = await self._resolve_keys(conn, branch_id, batch)
                fresh_index = [i for i, outcome in enumerate(outcomes) if outcome is None]
                fresh = [batch[i] for i in fresh_index]
                runs = [(request.letter, local_day(request.at, timezone)) for request in fresh]
                numbers = await _take_numbers(conn, branch_id, runs)
                rows, views = [], []
                for request, number, (_, day) in zip(fresh, numbers, runs, strict=True):
                    newcomer = request.queued(uuid.uuid4().hex)
                    guess = estimate.estimate_wait(newcomer, line, counters, times, now)
                    line.add(newcomer)
                    row = request.row(newcomer.id, branch_id, number, day)
                    row["wait_estimate_s"] = round(guess.wait_s)
                    rows.append(row)
                    views.append(self._view(row, guess))
                stored = await self._store_issued(conn, branch_id, fresh, rows, views)
        except BaseException:
            self._waiting_cache.pop(branch_id, None)  # the line holds tickets never stored
            raise
        self._remember_issued(branch_id, line, stored)
        issued = {
            i: Change(view, [event])
            for i, view, event in zip(fresh_index, views, stored, strict=True)
        }
        by_key = {batch[i].idempotency_key: change for i, change in issued.items()}
        answers: list[Change | Exception] = []
        for i, outcome in enumerate(outcomes):
            if outcome is None:
                answers.append(issued[i])
            elif isinstance(outcome, _SameKey):
                answers.append(Change(by_key[outcome.key].result, [], created=False))
            else:
                answers.append(outcome)
        return answers

    async def _store_issued(
        self,
        conn: AsyncConnection,
        branch_id: str,
        requests: list[_Issue],
        rows: list[dict[str, Any]],
        views: list[dict[str, Any]],
    ) -> list[Event]:
        """Insert a batch's tickets with their first step, idempotency keys and events."""
        if not rows:
            return []
        await conn.execute(tickets.insert(), rows)
        await conn.execute(
            ticket_transitions.insert(),
            [
                _transition_row(
                    row["id"], None, TicketStatus.WAITING, "issue", request.at, request.actor
                )
                for request, row in zip(requests, rows, strict=True)
            ],
        )
        keyed = [
            {
                "branch_id": branch_id,
                "key": request.idempotency_key,
                "fingerprint": request.fingerprint,
                "ticket_id": row["id"],
                "created_at": request.at,
            }
            for request, row in zip(requests, rows, strict=True)
            if request.idempotency_key
        ]
        if keyed:
            await conn.execute(idempotency_keys.insert(), keyed)
        new = [
            NewEvent("ticket.issued", request.at, {"ticket": view}, request.actor)
            for request, view in zip(requests, views, strict=True)
        ]
        return await append_events(conn, branch_id, new)

    async def _resolve_keys(
        self, conn: AsyncConnection, branch_id: str, batch: list[_Issue]
    ) -> list[Change | Exception | _SameKey | None]:
        """What each request of a batch gets without a new ticket: the ticket stored earlier
        under its idempotency key, the answer to the same key earlier in this batch, or a
        conflict when the key came with a different request. None: issue a new ticket."""
        keys = {r.idempotency_key for r in batch if r.idempotency_key}
        stored = {}  # one query for the whole batch; a key is found again only on a retry
        if keys:
            rows = await conn.execute(
                select(idempotency_keys).where(
                    idempotency_keys.c.branch_id == branch_id, idempotency_keys.c.key.in_(keys)
                )
            )
            stored = {row.key: row for row in rows}
        outcomes: list[Change | Exception | _SameKey | None] = []
        fresh_keys: dict[str, str] = {}  # key → fingerprint, for keys first seen in this batch
        for request in batch:
            key = request.idempotency_key
            outcome: Change | Exception | _SameKey | None = None
            if key in stored:
                try:
                    outcome = await self._stored_answer(conn, stored[key], request.fingerprint)
                except Conflict as conflict:
                    outcome = conflict
            elif key in fresh_keys:
                outcome = _SameKey(key)
                if fresh_keys[key] != request.fingerprint:
                    outcome = _key_reused()
            elif key:
                fresh_keys[key] = request.fingerprint
            outcomes.append(outcome)
        return outcomes

    async def ticket(self, ticket_id: str) -> dict[str, Any]:
        """A ticket as its holder sees it: status, people ahead, estimated wait, counter."""
        views = await self.tickets([ticket_id])
        if ticket_id not in views:
            raise NotFound("No such ticket.", code="unknown_ticket")
        return views[ticket_id]

    async def tickets(self, ticket_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """Several tickets as their holders see them, read together: one query for the
        tickets and one estimate's inputs per branch, however many phones follow them.
        Unknown ids are left out."""
        async with self.database.read() as conn:
            rows = (
                await conn.execute(select(tickets).where(tickets.c.id.in_(list(ticket_ids))))
            ).all()
            views: dict[str, dict[str, Any]] = {}
            now = self.clock()
            inputs: dict[str, Any] = {}
            for row in rows:
                guess = None
                if row.status == TicketStatus.WAITING:
                    if row.branch_id not in inputs:
                        inputs[row.branch_id] = await self._estimator_inputs(
                            conn, row.branch_id, now
                        )
                    line, counters, times = inputs[row.branch_id]
                    guess = estimate.estimate_wait(
                        _queued(row, self.catalog), line, counters, times, now
                    )
                views[row.id] = self._view(row, guess)
            transferred = [r.id for r in rows if r.status == TicketStatus.TRANSFERRED]
            for ticket_id in transferred:
                views[ticket_id]["transferred_to"] = None
            if transferred:
                successors = await conn.execute(
                    select(tickets.c.transferred_from, tickets.c.id).where(
                        tickets.c.transferred_from.in_(transferred)
                    )
                )
                for old_id, new_id in successors:
                    views[old_id]["transferred_to"] = new_id
            return views

    async def cancel_ticket(self, ticket_id: str, actor: str = "citizen") -> Change:
        async def cancel(conn: AsyncConnection) -> Change:
            row = await _ticket_row(conn, ticket_id, lock=True)
            return await self._apply(conn, row, TicketAction.CANCEL, actor, None)

        return await self.database.transaction(cancel)

    # ---- counters ------------------------------------------------------------------------

    async def set_counter_state(
        self,
        branch_id: str,
        counter_id: str,
        state: CounterState,
        *,
        actor: str,
        reason: str | None = None,
    ) -> Change:
        """Open, pause (with a reason) or close a counter. Closing needs no visit in hand."""
        counter = self.catalog.counter(branch_id, counter_id)
        now = self.clock()

        async def change(conn: AsyncConnection) -> Change:
            current = await _counter_row(conn, branch_id, counter_id, lock=True)
            if state is CounterState.CLOSED and current and current.current_ticket_id:
                raise Conflict(
                    "Finish or hand back the current visit before closing the counter.",
                    code="counter_busy",
                )
            if state is CounterState.PAUSED and (current is None or current.state == "closed"):
                raise Conflict("Open the counter before pausing it.", code="counter_closed")
            values = {
                "state": state.value,
                "pause_reason": reason if state is CounterState.PAUSED else None,
                "operator": actor if state is not CounterState.CLOSED else None,
                "updated_at": now,
            }
            await _upsert_counter(conn, branch_id, counter_id, values)
            view = {
                "branch": branch_id,
                "counter_id": counter_id,
                "counter_number": counter.number,
                "state": state.value,
                "pause_reason": values["pause_reason"],
                "current_ticket_id": current.current_ticket_id if current else None,
            }
            kind = COUNTER_EVENT[state]
            event = await append_event(conn, branch_id, kind, now, view, actor)
            return Change(view, [event])

        return await self.database.transaction(change)

    async def call_next(self, branch_id: str, counter_id: str, *, actor: str) -> Change:
        """Call the most urgent ticket this counter may serve; atomic across processes."""
        profile = self.catalog.profile(branch_id, counter_id)
        counter = self.catalog.counter(branch_id, counter_id)
        now = self.clock()

        async def call(conn: AsyncConnection) -> Change:
            await self._require_free_counter(conn, branch_id, counter_id)
            waiting = await _waiting(conn, branch_id, self.catalog)
            for pick in dispatch.rank_for_counter(waiting, counter_id, profile, now):
                row = await _ticket_row(conn, pick.ticket.id, lock=True, skip_locked=True)
                if row is None or row.status != TicketStatus.WAITING:
                    continue  # another counter is taking it right now
                change = await self._apply(
                    conn, row, TicketAction.CALL, actor, counter.number, counter_id=counter_id
                )
                change.result["reason"] = pick.reason
                return change
            raise NotFound("No ticket is waiting for this counter.", code="queue_empty")

        return await self.database.transaction(call)

    async def call_ticket(
        self, branch_id: str, counter_id: str, ticket_id: str, *, actor: str
    ) -> Change:
        """Call one particular waiting ticket (e.g. a citizen who came to the counter)."""
        counter = self.catalog.counter(branch_id, counter_id)

        async def call(conn: AsyncConnection) -> Change:
            await self._require_free_counter(conn, branch_id, counter_id)
            row = await _ticket_row(conn, ticket_id, lock=True)
            if row.branch_id != branch_id:
                raise NotFound("No such ticket in this branch.", code="unknown_ticket")
            return await self._apply(
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

        async def act(conn: AsyncConnection) -> Change:
            row = await self._current_ticket(conn, branch_id, counter_id)
            return await self._apply(
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

        async def move(conn: AsyncConnection) -> Change:
            row = await self._current_ticket(conn, branch_id, counter_id)
            target_service = service_id or row.service_id
            self.catalog.service(target_service)
            if not self.catalog.serves(branch_id, target_service):
                raise NotFound(
                    f"Service {target_service} is not offered at {branch_id}.",
                    code="service_not_offered",
                )
            change = await self._apply(
                conn, row, TicketAction.TRANSFER, actor, counter.number, counter_id=counter_id
            )
            visit = (
                await conn.execute(
                    select(func.max(tickets.c.visit)).where(
                        tickets.c.branch_id == branch_id,
                        tickets.c.letter == row.letter,
                        tickets.c.day == row.day,
                        tickets.c.number == row.number,
                    )
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
            await conn.execute(tickets.insert().values(**new))
            await _record(conn, new["id"], None, TicketStatus.WAITING, "issue", now, actor)
            view = self._view(new)
            event = await append_event(
                conn, branch_id, "ticket.issued", now, {"ticket": view}, actor
            )
            change.events.append(event)
            change.result["transferred_to"] = view
            return change

        return await self.database.transaction(move)

    # ---- branch views --------------------------------------------------------------------

    async def board(self, branch_id: str) -> dict[str, Any]:
        """What a lobby screen shows: latest calls, waiting counts, counters' states."""
        self.catalog.branch(branch_id)
        async with self.database.read() as conn:
            return await self._board(conn, branch_id)

    async def snapshot(self, branch_id: str) -> tuple[dict[str, Any], int, str | None]:
        """The board with the event sequence number it is consistent with."""
        self.catalog.branch(branch_id)
        async with self.database.snapshot() as conn:
            head = await stream_head(conn, branch_id)
            board = await self._board(conn, branch_id)
        return board, (head.seq if head else 0), (head.epoch if head else None)

    async def queues(self, branch_id: str) -> list[dict[str, Any]]:
        """Waiting tickets per service with the longest wait against its target."""
        self.catalog.branch(branch_id)
        now = self.clock()
        async with self.database.read() as conn:
            waiting = await _waiting(conn, branch_id, self.catalog)
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

    async def waiting_tickets(self, branch_id: str, counter_id: str) -> list[dict[str, Any]]:
        """The waiting list a counter sees: what it may serve, most urgent first."""
        self.catalog.counter(branch_id, counter_id)  # an unknown counter is a NotFound
        waiting: list[dict[str, Any]] = (await self.consoles(branch_id, [counter_id]))[counter_id][
            "waiting"
        ]
        return waiting

    async def consoles(
        self, branch_id: str, counter_ids: Collection[str]
    ) -> dict[str, dict[str, Any]]:
        """What each of these counters' consoles shows: the counter, its visit in hand and its
        waiting list (what it may serve, most urgent first). One read for all of them: the
        waiting tickets are read and viewed once, and ranked for each counter."""
        branch = self.catalog.branch(branch_id)
        now = self.clock()
        async with self.database.read() as conn:
            states = await _counter_rows(conn, branch_id)
            waiting = (
                await conn.execute(
                    select(tickets).where(
                        tickets.c.branch_id == branch_id, tickets.c.status == TicketStatus.WAITING
                    )
                )
            ).all()
            in_hand = [s.current_ticket_id for s in states.values() if s.current_ticket_id]
            current: dict[str | None, dict[str, Any]] = {}
            if in_hand:
                rows = await conn.execute(select(tickets).where(tickets.c.id.in_(in_hand)))
                current = {row.id: self._view(row) for row in rows}
        queued = [_queued(row, self.catalog) for row in waiting]
        views = {row.id: self._view(row) for row in waiting}
        consoles = {}
        for counter in branch.counters:
            if counter.id not in counter_ids:
                continue
            state = _counter_view(counter, states.get(counter.id))
            ranked = dispatch.rank_for_counter(
                queued, counter.id, self.catalog.profile(branch_id, counter.id), now
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
        async with self.database.read() as conn:
            states = await _counter_rows(conn, branch_id)
        return [_counter_view(c, states.get(c.id)) for c in branch.counters]

    # ---- internals -----------------------------------------------------------------------

    async def _apply(
        self,
        conn: AsyncConnection,
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
        await conn.execute(statements.UPDATE_TICKET, values | {"ticket_id": row.id})
        await _record(conn, row.id, step.from_status, step.to_status, action, now, actor, step)
        if row.counter_id or counter_id:
            holding = step.to_status in (TicketStatus.CALLED, TicketStatus.SERVING)
            await conn.execute(
                statements.UPDATE_COUNTER,
                {
                    "current_ticket_id": row.id if holding else None,
                    "updated_at": now,
                    "key_branch_id": row.branch_id,
                    "key_counter_id": counter_id or row.counter_id,
                },
            )
        merged = dict(row._mapping) | values
        view = self._view(merged, counter_number=counter_number)
        data: dict[str, Any] = {"ticket": view}
        if action in (TicketAction.CALL, TicketAction.RECALL):
            data |= {"counter_id": view["counter_id"], "counter_number": counter_number}
        kind = "ticket." + _EVENT_KIND[action]
        event = await append_event(conn, row.branch_id, kind, now, data, actor)
        if action in (TicketAction.CALL, TicketAction.RECALL):
            await conn.execute(
                statements.UPDATE_TICKET, {"call_seq": event.seq, "ticket_id": row.id}
            )
        return Change(view, [event])

    async def _require_free_counter(
        self, conn: AsyncConnection, branch_id: str, counter_id: str
    ) -> None:
        state = await _counter_row(conn, branch_id, counter_id, lock=True)
        if state is None or state.state != CounterState.OPEN:
            raise Conflict("Open the counter first.", code="counter_not_open")
        if state.current_ticket_id:
            raise Conflict(
                "This counter already has a visit in hand: finish it, mark a no-show or "
                "put it back in the queue first.",
                code="counter_busy",
                ticket_id=state.current_ticket_id,
            )

    async def _current_ticket(
        self, conn: AsyncConnection, branch_id: str, counter_id: str
    ) -> Row[Any]:
        state = await _counter_row(conn, branch_id, counter_id, lock=True)
        if state is None or not state.current_ticket_id:
            raise Conflict("This counter has no visit in hand.", code="no_current_ticket")
        return await _ticket_row(conn, state.current_ticket_id, lock=True)

    async def _estimator_inputs(
        self, conn: AsyncConnection, branch_id: str, now: datetime
    ) -> tuple[estimate.WaitingLine, list[estimate.CounterState], estimate.ServiceTimes]:
        """What a wait estimate needs: the waiting line, the counters, the service times."""
        line = await self._waiting_line(conn, branch_id)
        states = await _counter_rows(conn, branch_id)
        counters = [
            estimate.CounterState(
                id=c.id,
                is_open=bool(states.get(c.id) and states[c.id].state == CounterState.OPEN),
                profile=self.catalog.profile(branch_id, c.id),
                busy=bool(states.get(c.id) and states[c.id].current_ticket_id),
            )
            for c in self.catalog.branch(branch_id).counters
        ]
        return line, counters, await self._service_times(conn, branch_id, now)

    async def _waiting_line(self, conn: AsyncConnection, branch_id: str) -> estimate.WaitingLine:
        """The branch's waiting line, for estimates. It is read again only when the branch's
        event stream has moved since (one small query instead of the whole queue while nothing
        but this process's own issuing happened, which adds its tickets to the line)."""
        head = await stream_head(conn, branch_id)
        seen = self._waiting_cache.get(branch_id)
        if seen is not None and seen.head == head:
            return seen.line
        line = estimate.WaitingLine(await _waiting(conn, branch_id, self.catalog))
        if head is not None:
            # Read after the head, so at least as new as it: the cache is never staler than it
            # says (at worst it is read again once more than needed).
            self._waiting_cache[branch_id] = _WaitingSeen(head, line)
        return line

    def _remember_issued(
        self, branch_id: str, line: estimate.WaitingLine, events: list[Event]
    ) -> None:
        """After a batch committed: its tickets are already in `line`. If the cache holds that
        line and was exactly one step behind (nothing else happened in the branch meanwhile), it
        is now current; otherwise it is read again next time."""
        seen = self._waiting_cache.get(branch_id)
        if not events or seen is None or seen.line is not line:
            return
        first, last = events[0], events[-1]
        if seen.head == StreamHead(first.epoch, first.seq - 1):
            self._waiting_cache[branch_id] = _WaitingSeen(StreamHead(last.epoch, last.seq), line)

    async def _service_times(
        self, conn: AsyncConnection, branch_id: str, now: datetime
    ) -> estimate.ServiceTimes:
        """Service times learned from the branch's visits finished today (configured times until
        there are enough), read from the database at most once a `SERVICE_TIMES_TTL`: every
        process learns the same from the same visits, and issuing does not query them each time."""
        cached = self._learned.get(branch_id)
        if cached is not None and now - cached[0] < SERVICE_TIMES_TTL:
            return cached[1]
        day = local_day(now, self.catalog.branch(branch_id).timezone)
        rows = await conn.execute(
            select(tickets.c.service_id, tickets.c.started_at, tickets.c.finished_at)
            .where(
                tickets.c.branch_id == branch_id,
                tickets.c.day == day,
                tickets.c.status == TicketStatus.DONE,
                tickets.c.started_at.is_not(None),
            )
            .order_by(tickets.c.finished_at)
        )
        times = estimate.ServiceTimes(self._configured_s)
        for row in rows:
            times.observe(row.service_id, (row.finished_at - row.started_at).total_seconds())
        self._learned[branch_id] = (now, times)
        return times

    async def _board(self, conn: AsyncConnection, branch_id: str) -> dict[str, Any]:
        day = local_day(self.clock(), self.catalog.branch(branch_id).timezone)
        calls = (
            await conn.execute(
                select(tickets)
                .where(
                    tickets.c.branch_id == branch_id,
                    tickets.c.day == day,
                    tickets.c.call_seq.is_not(None),
                )
                .order_by(tickets.c.call_seq.desc())
                .limit(BOARD_CALLS)
            )
        ).all()
        waiting = (
            await conn.execute(
                select(tickets.c.service_id, func.count())
                .where(tickets.c.branch_id == branch_id, tickets.c.status == TicketStatus.WAITING)
                .group_by(tickets.c.service_id)
            )
        ).all()
        states = await _counter_rows(conn, branch_id)
        counters = self.catalog.branch(branch_id).counters
        return {
            "branch": branch_id,
            "calls": [public_call(self._view(r)) for r in calls],
            "waiting": {service: count for service, count in waiting},
            "counters": {
                c.id: {"number": c.number, "state": _counter_view(c, states.get(c.id))["state"]}
                for c in counters
            },
        }

    async def _replay(
        self, conn: AsyncConnection, branch_id: str, key: str, fingerprint: str
    ) -> Change | None:
        stored = (
            await conn.execute(
                select(idempotency_keys).where(
                    idempotency_keys.c.branch_id == branch_id, idempotency_keys.c.key == key
                )
            )
        ).one_or_none()
        if stored is None:
            return None
        return await self._stored_answer(conn, stored, fingerprint)

    async def _stored_answer(
        self, conn: AsyncConnection, stored: Row[Any], fingerprint: str
    ) -> Change:
        """The answer to a retry: the ticket stored under its key, or a conflict when the key
        came with a different request."""
        if stored.fingerprint != fingerprint:
            raise _key_reused()
        row = await _ticket_row(conn, stored.ticket_id)
        return Change(self._view(row), [], created=False)

    def _view(
        self,
        row: Any,
        guess: estimate.WaitEstimate | None = None,
        counter_number: int | None = None,
    ) -> dict[str, Any]:
        """The public view of a ticket: no names, nothing personal."""
        data = row if isinstance(row, dict) else dict(row._mapping)
        counter_id = data.get("counter_id")
        if counter_id and counter_number is None:
            counter_number = self.catalog.counter(data["branch_id"], counter_id).number
        service = self.catalog.service(data["service_id"])
        view = {
            "id": data["id"],
            "branch": data["branch_id"],
            "label": ticket_label(data["letter"], data["number"]),
            "letter": data["letter"],
            "number": data["number"],
            "service_id": data["service_id"],
            "service_name": service.name.get(data["language"]),
            "status": data["status"],
            "priority": data["priority"],
            "language": data["language"],
            "counter_id": counter_id,
            "counter_number": counter_number,
            "issued_at": _iso(data["issued_at"]),
            "called_at": _iso(data.get("called_at")),
            "recalls": data.get("recalls") or 0,
        }
        if guess is not None:
            view |= {"people_ahead": guess.people_ahead, "wait_minutes": guess.minutes}
        return view


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


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _counter_view(counter: Any, state: Row[Any] | None) -> dict[str, Any]:
    return {
        "counter_id": counter.id,
        "number": counter.number,
        "area": counter.area,
        "state": state.state if state else CounterState.CLOSED.value,
        "pause_reason": state.pause_reason if state else None,
        "operator": state.operator if state else None,
        "current_ticket_id": state.current_ticket_id if state else None,
    }


def _fingerprint(
    service_id: str, priority: Priority, language: str, appointment_at: datetime | None
) -> str:
    body = json.dumps([service_id, priority.value, language, _iso(appointment_at)])
    return hashlib.sha256(body.encode()).hexdigest()


def _queued(row: Any, catalog: Catalog) -> dispatch.QueuedTicket:
    data = row if isinstance(row, dict) else row._mapping
    return dispatch.QueuedTicket(
        id=data["id"],
        service_id=data["service_id"],
        priority=Priority(data["priority"]),
        queued_at=data["queued_at"],
        target_wait_s=catalog.service(data["service_id"]).target_wait_min * 60,
        counter_id=data.get("target_counter_id"),
        appointment_at=data.get("appointment_at"),
    )


async def _waiting(
    conn: AsyncConnection, branch_id: str, catalog: Catalog
) -> list[dispatch.QueuedTicket]:
    rows = await conn.execute(statements.WAITING, {"branch_id": branch_id})
    return [_queued(r, catalog) for r in rows]


async def _ticket_row(
    conn: AsyncConnection, ticket_id: str, *, lock: bool = False, skip_locked: bool = False
) -> Row[Any]:
    query = statements.TICKET
    if lock:
        query = statements.TICKET_LOCKED_OR_SKIPPED if skip_locked else statements.TICKET_LOCKED
    row = (await conn.execute(query, {"ticket_id": ticket_id})).one_or_none()
    if row is None and not skip_locked:
        raise NotFound("No such ticket.", code="unknown_ticket")
    return row  # type: ignore[return-value]


async def _counter_row(
    conn: AsyncConnection, branch_id: str, counter_id: str, *, lock: bool = False
) -> Row[Any] | None:
    query = statements.COUNTER_LOCKED if lock else statements.COUNTER
    return (
        await conn.execute(query, {"branch_id": branch_id, "counter_id": counter_id})
    ).one_or_none()


async def _counter_rows(conn: AsyncConnection, branch_id: str) -> dict[str, Row[Any]]:
    rows = await conn.execute(statements.COUNTERS, {"branch_id": branch_id})
    return {r.counter_id: r for r in rows}


async def _upsert_counter(
    conn: AsyncConnection, branch_id: str, counter_id: str, values: dict[str, Any]
) -> None:
    insert = statements.upsert_insert(conn.dialect.name)(counter_states).values(
        branch_id=branch_id, counter_id=counter_id, **values
    )
    await conn.execute(
        insert.on_conflict_do_update(
            index_elements=[counter_states.c.branch_id, counter_states.c.counter_id], set_=values
        )
    )


async def _take_numbers(
    conn: AsyncConnection, branch_id: str, wanted: list[tuple[str, Any]]
) -> list[int]:
    """Allocate the next number of each (letter, day) in `wanted`, in order. One upsert per
    letter and day takes a whole run of numbers: atomic on both backends, and the row's primary
    key makes a number impossible to hand out twice."""
    counts = Counter(wanted)
    last: dict[tuple[str, Any], int] = {}
    for (letter, day), count in sorted(counts.items()):  # a fixed order: no lock cycles
        insert = statements.upsert_insert(conn.dialect.name)(ticket_numbers).values(
            branch_id=branch_id, letter=letter, day=day, last_number=count
        )
        upsert = insert.on_conflict_do_update(
            index_elements=[
                ticket_numbers.c.branch_id,
                ticket_numbers.c.letter,
                ticket_numbers.c.day,
            ],
            set_={"last_number": ticket_numbers.c.last_number + count},
        ).returning(ticket_numbers.c.last_number)
        last[(letter, day)] = int((await conn.execute(upsert)).scalar_one())
    taken = {run: last[run] - count for run, count in counts.items()}
    numbers = []
    for run in wanted:
        taken[run] += 1
        numbers.append(taken[run])
    return numbers


def _transition_row(
    ticket_id: str,
    from_status: TicketStatus | None,
    to_status: TicketStatus,
    action: TicketAction | str,
    at: datetime,
    actor: str,
    step: Any = None,
) -> dict[str, Any]:
    return {
        "ticket_id": ticket_id,
        "action": str(action),
        "from_status": from_status.value if from_status else None,
        "to_status": to_status.value,
        "at": at,
        "actor": actor,
        "counter_id": step.counter_id if step else None,
        "outcome": step.outcome.value if step and step.outcome else None,
    }


async def _record(conn: AsyncConnection, *transition: Any) -> None:
    """Store one step of a ticket's life (see `_transition_row` for the fields)."""
    await conn.execute(ticket_transitions.insert(), _transition_row(*transition))


def _key_reused() -> Conflict:
    return Conflict(
        "This Idempotency-Key was used for a different request.", code="idempotency_key_reused"
    )


@dataclass(frozen=True, slots=True)
class _WaitingSeen:
    """A branch's waiting line as it was at an event stream head."""

    head: StreamHead
    line: estimate.WaitingLine


@dataclass(frozen=True, slots=True)
class _SameKey:
    """A request whose idempotency key came earlier in the same batch: it gets that answer."""

    key: str


@dataclass(frozen=True, slots=True)
class _Issue:
    """One request for a ticket, checked and waiting for its batch."""

    service_id: str
    letter: str
    target_wait_s: float
    priority: Priority
    language: str
    appointment_at: datetime | None
    idempotency_key: str | None
    fingerprint: str
    actor: str
    at: datetime  # when the request came in: the ticket's issue time

    def queued(self, ticket_id: str) -> dispatch.QueuedTicket:
        return dispatch.QueuedTicket(
            id=ticket_id,
            service_id=self.service_id,
            priority=self.priority,
            queued_at=self.at,
            target_wait_s=self.target_wait_s,
            appointment_at=self.appointment_at,
        )

    def row(self, ticket_id: str, branch_id: str, number: int, day: Any) -> dict[str, Any]:
        return {
            "id": ticket_id,
            "branch_id": branch_id,
            "service_id": self.service_id,
            "letter": self.letter,
            "number": number,
            "day": day,
            "priority": self.priority.value,
            "language": self.language,
            "status": TicketStatus.WAITING.value,
            "issued_at": self.at,
            "queued_at": self.at,
            "appointment_at": self.appointment_at,
            "recalls": 0,
            "visit": 1,
        }
