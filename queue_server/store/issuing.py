"""Issuing tickets: the next number of a service's letter, a wait estimate, idempotent retries.

Tickets issued at the same moment in a branch share one transaction (`GroupCommit`); the
batch body runs as any write body (`Database.transaction`), and the waiting line it extends
is cached on the loop after the commit.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select
from sqlalchemy.exc import IntegrityError

from queue_server.catalog.loader import Catalog
from queue_server.domain import dispatch
from queue_server.domain.numbering import local_day
from queue_server.domain.tickets import Priority, TicketStatus
from queue_server.errors import Conflict, NotFound
from queue_server.store import rows
from queue_server.store.batching import GroupCommit
from queue_server.store.change import Change, Clock
from queue_server.store.database import Database
from queue_server.store.estimates import Estimates, EstimatorInputs
from queue_server.store.events import Event, NewEvent, append_events
from queue_server.store.schema import idempotency_keys, ticket_transitions, tickets
from queue_server.store.views import ticket_view

Outcome = Change | Exception


class Issuing:
    """Issues tickets of every branch."""

    def __init__(
        self, database: Database, catalog: Catalog, clock: Clock, estimates: Estimates
    ) -> None:
        self.database = database
        self.catalog = catalog
        self.clock = clock
        self.estimates = estimates
        self._batches: GroupCommit[_Issue, Change] = GroupCommit(self._issue_batch)

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
        queued_since: datetime | None = None,
    ) -> Change:
        """Issue the next number of the service's letter for today, with a wait estimate.
        A retried request with the same idempotency key returns the same ticket.
        `queued_since`: when the wait began, if before now (a remote ticket activated on
        arrival keeps its place from when it joined)."""
        self.catalog.branch(branch_id)
        service = self.catalog.service(service_id)
        if not self.catalog.serves(branch_id, service_id):
            raise NotFound(
                f"Service {service_id} is not offered at {branch_id}.",
                code="service_not_offered",
            )
        fingerprint = _fingerprint(service_id, priority, language, appointment_at)
        if idempotency_key and (
            earlier := await self._replay(branch_id, idempotency_key, fingerprint)
        ):
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
            queued_since=queued_since,
        )
        try:
            return await self._batches.submit(branch_id, request)
        except IntegrityError:
            # Another process stored the same idempotency key first: answer with its ticket.
            if idempotency_key and (
                earlier := await self._replay(branch_id, idempotency_key, fingerprint)
            ):
                return earlier
            raise

    async def _issue_batch(self, branch_id: str, batch: list[_Issue]) -> list[Outcome]:
        """Write a batch of issued tickets in one transaction: one number update per letter,
        one sequence update, and one multi-row insert per table. Each ticket keeps the moment
        its request arrived as its issue time."""
        now = self.clock()
        written = await self.database.transaction(
            lambda conn: self._write_batch(conn, branch_id, batch, now)
        )
        self.estimates.remember_issued(branch_id, written.inputs, written.events)
        issued = {
            i: Change(view, [event])
            for i, view, event in zip(
                written.fresh_index, written.views, written.events, strict=True
            )
        }
        by_key = {batch[i].idempotency_key: change for i, change in issued.items()}
        answers: list[Outcome] = []
        for i, outcome in enumerate(written.outcomes):
            if outcome is None:
                answers.append(issued[i])
            elif isinstance(outcome, _SameKey):
                answers.append(Change(by_key[outcome.key].result, [], created=False))
            else:
                answers.append(outcome)
        return answers

    def _write_batch(
        self, conn: Connection, branch_id: str, batch: list[_Issue], now: datetime
    ) -> _Written:
        timezone = self.catalog.branch(branch_id).timezone
        # Read before the first write: on PostgreSQL no lock is held yet, and the line is
        # cached, so this is one small query while nothing else changed.
        inputs = self.estimates.read_inputs(conn, branch_id, now, to_extend=True)
        outcomes = self._resolve_keys(conn, branch_id, batch)
        fresh_index = [i for i, outcome in enumerate(outcomes) if outcome is None]
        fresh = [batch[i] for i in fresh_index]
        runs = [(request.letter, local_day(request.at, timezone)) for request in fresh]
        numbers = rows.take_numbers(conn, branch_id, runs)
        new_rows, views = [], []
        services_issued: set[str] = set()  # a second of a service in the batch is behind one
        for request, number, (_, day) in zip(fresh, numbers, runs, strict=True):
            newcomer = request.queued(uuid.uuid4().hex)
            is_first = (
                newcomer.priority is Priority.NORMAL
                and newcomer.counter_id is None
                and newcomer.service_id not in services_issued
            )
            services_issued.add(newcomer.service_id)
            guess = self.estimates.guess(branch_id, newcomer, inputs, now, newcomer=is_first)
            inputs.line.add(newcomer)
            row = request.row(newcomer.id, branch_id, number, day)
            row["wait_estimate_s"] = round(guess.wait_s)
            row["wait_p90_s"] = None if guess.p90_s is None else round(guess.p90_s)
            new_rows.append(row)
            views.append(ticket_view(self.catalog, row, guess))
        events = _store_issued(conn, branch_id, fresh, new_rows, views)
        return _Written(inputs, outcomes, fresh_index, views, events)

    def _resolve_keys(
        self, conn: Connection, branch_id: str, batch: list[_Issue]
    ) -> list[Outcome | _SameKey | None]:
        """What each request of a batch gets without a new ticket: the ticket stored earlier
        under its idempotency key, the answer to the same key earlier in this batch, or a
        conflict when the key came with a different request. None: issue a new ticket."""
        keys = {r.idempotency_key for r in batch if r.idempotency_key}
        stored = {}  # one query for the whole batch; a key is found again only on a retry
        if keys:
            found = conn.execute(
                select(idempotency_keys).where(
                    idempotency_keys.c.branch_id == branch_id, idempotency_keys.c.key.in_(keys)
                )
            )
            stored = {row.key: row for row in found}
        outcomes: list[Outcome | _SameKey | None] = []
        fresh_keys: dict[str, str] = {}  # key → fingerprint, for keys first seen in this batch
        for request in batch:
            key = request.idempotency_key
            outcome: Outcome | _SameKey | None = None
            if key in stored:
                try:
                    outcome = self._stored_answer(conn, stored[key], request.fingerprint)
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

    async def _replay(self, branch_id: str, key: str, fingerprint: str) -> Change | None:
        def read(conn: Connection) -> Change | None:
            stored = conn.execute(
                select(idempotency_keys).where(
                    idempotency_keys.c.branch_id == branch_id, idempotency_keys.c.key == key
                )
            ).one_or_none()
            if stored is None:
                return None
            return self._stored_answer(conn, stored, fingerprint)

        return await self.database.reading(read)

    def _stored_answer(self, conn: Connection, stored: Row[Any], fingerprint: str) -> Change:
        """The answer to a retry: the ticket stored under its key, or a conflict when the key
        came with a different request."""
        if stored.fingerprint != fingerprint:
            raise _key_reused()
        row = rows.ticket_row(conn, stored.ticket_id)
        return Change(ticket_view(self.catalog, row), [], created=False)


def _store_issued(
    conn: Connection,
    branch_id: str,
    requests: list[_Issue],
    new_rows: list[dict[str, Any]],
    views: list[dict[str, Any]],
) -> list[Event]:
    """Insert a batch's tickets with their first step, idempotency keys and events."""
    if not new_rows:
        return []
    conn.execute(tickets.insert(), new_rows)
    conn.execute(
        ticket_transitions.insert(),
        [
            rows.transition_row(
                row["id"], None, TicketStatus.WAITING, "issue", request.at, request.actor
            )
            for request, row in zip(requests, new_rows, strict=True)
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
        for request, row in zip(requests, new_rows, strict=True)
        if request.idempotency_key
    ]
    if keyed:
        conn.execute(idempotency_keys.insert(), keyed)
    new = [
        NewEvent("ticket.issued", request.at, {"ticket": view}, request.actor)
        for request, view in zip(requests, views, strict=True)
    ]
    return append_events(conn, branch_id, new)


def _fingerprint(
    service_id: str, priority: Priority, language: str, appointment_at: datetime | None
) -> str:
    body = json.dumps([service_id, priority.value, language, rows.iso(appointment_at)])
    return hashlib.sha256(body.encode()).hexdigest()


def _key_reused() -> Conflict:
    return Conflict(
        "This Idempotency-Key was used for a different request.", code="idempotency_key_reused"
    )


@dataclass(slots=True)
class _Written:
    """What a batch's transaction wrote, for the loop to answer with after the commit."""

    inputs: EstimatorInputs
    outcomes: list[Outcome | _SameKey | None]
    fresh_index: list[int]
    views: list[dict[str, Any]]
    events: list[Event]


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
    queued_since: datetime | None = None  # an earlier start of the wait (a remote ticket)

    @property
    def queued_at(self) -> datetime:
        return min(self.queued_since, self.at) if self.queued_since else self.at

    def queued(self, ticket_id: str) -> dispatch.QueuedTicket:
        return dispatch.QueuedTicket(
            id=ticket_id,
            service_id=self.service_id,
            priority=self.priority,
            queued_at=self.queued_at,
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
            "queued_at": self.queued_at,
            "appointment_at": self.appointment_at,
            "recalls": 0,
            "visit": 1,
        }
