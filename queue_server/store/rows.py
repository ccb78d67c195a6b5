"""Row helpers of the queue: load a ticket or counter row, store a ticket's step, queue a row
for the dispatcher. Plain functions of a synchronous `Connection`, used by writes (inside
`Database.transaction`) and reads (through `Database.reading`) alike."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row

from queue_server.catalog.loader import Catalog
from queue_server.domain import dispatch
from queue_server.domain.tickets import Priority, TicketAction, TicketStatus
from queue_server.errors import NotFound
from queue_server.store import statements
from queue_server.store.schema import counter_states, ticket_numbers, ticket_transitions


class CounterMode(StrEnum):
    """Whether a counter serves: the `state` column of its row (closed when it has none)."""

    OPEN = "open"
    PAUSED = "paused"
    CLOSED = "closed"


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def queued(row: Any, catalog: Catalog) -> dispatch.QueuedTicket:
    """A ticket row (or its dict) as the dispatcher sees it."""
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


_PRIORITIES = {priority.value: priority for priority in Priority}


def waiting(conn: Connection, branch_id: str, catalog: Catalog) -> list[dispatch.QueuedTicket]:
    """The branch's waiting tickets as the dispatcher sees them (`queued` of each row). Read by
    every estimate of a changed line, so a long line (1,000 waiting) is built from plain
    tuples, with each service's target looked up once: half the time of `queued`."""
    return _line(conn.execute(statements.WAITING, {"branch_id": branch_id}), catalog)


def line_heads(
    conn: Connection,
    branch_id: str,
    counter_id: str,
    profile: Mapping[str, float],
    now: datetime,
    catalog: Catalog,
    per_line: int,
) -> list[dispatch.QueuedTicket]:
    """The first `per_line` waiting tickets of each line this counter may call from
    (`statements.LINE_HEADS`): its first `per_line` picks are among them, in the same order."""
    services = [service_id for service_id, weight in profile.items() if weight > 0]
    found = conn.execute(
        statements.LINE_HEADS,
        {"branch_id": branch_id, "counter_id": counter_id, "services": services,
         "now": now, "per_line": per_line},
    )  # fmt: skip
    return _line(found, catalog)


def _line(found: Iterable[Any], catalog: Catalog) -> list[dispatch.QueuedTicket]:
    targets: dict[str, float] = {}
    line = []
    for ticket_id, service_id, priority, queued_at, counter_id, appointment_at in found:
        target = targets.get(service_id)
        if target is None:
            target = targets[service_id] = catalog.service(service_id).target_wait_min * 60
        line.append(
            dispatch.QueuedTicket(ticket_id, service_id, _PRIORITIES[priority], queued_at,
                                  target, counter_id, appointment_at)
        )  # fmt: skip
    return line


def branch_heads(
    conn: Connection, branch_id: str, now: datetime, catalog: Catalog, per_line: int
) -> list[dispatch.QueuedTicket]:
    """The first `per_line` waiting tickets of each of the branch's lines, and its waiting
    appointments (`statements.BRANCH_HEADS`). Within a line the dispatcher's order is the time
    queued, so a ticket with fewer than `per_line` people ahead is here with all of them: its
    count ahead over these few (`estimate.people_ahead`) is the same as over the whole line,
    and one with more counts at least `per_line` here too."""
    found = conn.execute(
        statements.BRANCH_HEADS, {"branch_id": branch_id, "now": now, "per_line": per_line}
    )
    return _line(found, catalog)


def ticket_row(
    conn: Connection, ticket_id: str, *, lock: bool = False, skip_locked: bool = False
) -> Row[Any]:
    query = statements.TICKET
    if lock:
        query = statements.TICKET_LOCKED_OR_SKIPPED if skip_locked else statements.TICKET_LOCKED
    row = conn.execute(query, {"ticket_id": ticket_id}).one_or_none()
    if row is None and not skip_locked:
        raise NotFound("No such ticket.", code="unknown_ticket")
    return row  # type: ignore[return-value]


def counter_row(
    conn: Connection, branch_id: str, counter_id: str, *, lock: bool = False
) -> Row[Any] | None:
    query = statements.COUNTER_LOCKED if lock else statements.COUNTER
    return conn.execute(query, {"branch_id": branch_id, "counter_id": counter_id}).one_or_none()


def counter_rows(conn: Connection, branch_id: str) -> dict[str, Row[Any]]:
    rows = conn.execute(statements.COUNTERS, {"branch_id": branch_id})
    return {r.counter_id: r for r in rows}


def upsert_counter(
    conn: Connection, branch_id: str, counter_id: str, values: dict[str, Any]
) -> None:
    insert = statements.upsert_insert(conn.dialect.name)(counter_states).values(
        branch_id=branch_id, counter_id=counter_id, **values
    )
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[counter_states.c.branch_id, counter_states.c.counter_id], set_=values
        )
    )


def take_numbers(conn: Connection, branch_id: str, wanted: list[tuple[str, Any]]) -> list[int]:
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
        last[(letter, day)] = int(conn.execute(upsert).scalar_one())
    taken = {run: last[run] - count for run, count in counts.items()}
    numbers = []
    for run in wanted:
        taken[run] += 1
        numbers.append(taken[run])
    return numbers


def transition_row(
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


def record(conn: Connection, *transition: Any) -> None:
    """Store one step of a ticket's life (see `transition_row` for the fields)."""
    conn.execute(ticket_transitions.insert(), transition_row(*transition))
