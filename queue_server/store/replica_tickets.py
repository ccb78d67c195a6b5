"""Central's `tickets` rows of a node-owned branch, kept from the node's replicated events.

Central never writes a node's queue, but a citizen's phone link (`/t/{id}`), the branch's board
snapshot and its live view read `tickets`: so every applied batch is folded into them here, in
the same transaction as the events. Applying is idempotent because the batch is: an event
reaches this fold only once, when `store.replication` applies it by `(branch, epoch, seq)`.

A ticket event carries the ticket's public view (status, priority, counter, times). What it
does not carry is derived: the visit of a transfer (the next visit of the same printed number,
its queue time and origin that transferred visit's), the end times from the event's own time,
and the call order from central's seq. A booking's appointment time is not in the view and
stays empty at central (the node's dispatcher, not central's, orders its queue).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, and_, case, select, update

from queue_server.domain.numbering import local_day
from queue_server.domain.tickets import Outcome, TicketStatus
from queue_server.store.events import Event
from queue_server.store.schema import counter_states, events, ticket_numbers, tickets
from queue_server.store.statements import upsert_insert

OPEN_STATUSES = (TicketStatus.WAITING.value, TicketStatus.CALLED.value, TicketStatus.SERVING.value)
ENDS = {  # ticket event kind → the outcome it ends a visit with (a finish: its own, else served)
    "ticket.finished": Outcome.SERVED.value,
    "ticket.no_show": Outcome.NO_SHOW.value,
    "ticket.transferred": Outcome.TRANSFERRED.value,
    "ticket.cancelled": Outcome.CANCELLED.value,
}
HELD = (TicketStatus.CALLED.value, TicketStatus.SERVING.value)  # a counter has it in hand
CALLS = frozenset({"ticket.called", "ticket.recalled"})
# What a ticket's row is made from: a node's batch whose ticket lacks one is refused (wire.py)
TICKET_KEYS = frozenset(
    {"id", "letter", "number", "service_id", "status", "priority", "language", "issued_at"}
)
CHUNK = 500  # ids per `IN (…)`: well below every backend's parameter limit

NumberKey = tuple[str, date, int]  # a printed number: letter, day, number


def mirror_tickets(
    conn: Connection, branch_id: str, applied: Sequence[Event], timezone: str
) -> int:
    """Fold applied events into the branch's ticket rows: one read of the rows they touch and
    one upsert of each changed row, however many events a catch-up batch holds. Returns how
    many rows changed."""
    ticket_events = [event for event in applied if event.kind.startswith("ticket.")]
    if not ticket_events:
        return 0
    ids = {event.data["ticket"]["id"] for event in ticket_events}
    known = {row["id"]: row for row in _rows(conn, tickets.c.id, ids)}
    by_number = _by_number(conn, branch_id, known, ticket_events, timezone)
    changed: dict[str, dict[str, Any]] = {}
    holding: dict[str, str | None] = {}  # counter → the visit in its hand after the batch
    for event in ticket_events:
        view = event.data["ticket"]
        row = known.get(view["id"])
        if row is None:
            row = _new_row(branch_id, view, timezone, by_number)
            known[row["id"]] = row
        before = row["counter_id"]
        _step(row, event)
        changed[row["id"]] = row
        if row["status"] in HELD and row["counter_id"]:
            holding[row["counter_id"]] = row["id"]
        elif before and holding.get(before, row["id"]) == row["id"]:
            holding[before] = None
    upsert_many(conn, tickets, list(changed.values()), key="id")
    _numbers_taken(conn, branch_id, by_number)
    for counter_id, ticket_id in holding.items():
        conn.execute(
            update(counter_states)
            .where(
                counter_states.c.branch_id == branch_id, counter_states.c.counter_id == counter_id
            )
            .values(current_ticket_id=ticket_id)
        )
    return len(changed)


def _numbers_taken(
    conn: Connection, branch_id: str, by_number: dict[NumberKey, list[dict[str, Any]]]
) -> None:
    """Central's numbering of the branch moves past the node's numbers, so that a write of its
    own reaches the refusal (`take_seqs`) rather than a taken number, and a branch released
    from its node numbers on after it."""
    highest: dict[tuple[str, date], int] = {}
    for letter, day, number in by_number:
        highest[(letter, day)] = max(highest.get((letter, day), 0), number)
    for (letter, day), number in sorted(highest.items()):
        insert = upsert_insert(conn.dialect.name)(ticket_numbers).values(
            branch_id=branch_id, letter=letter, day=day, last_number=number
        )
        greater = case(
            (ticket_numbers.c.last_number < insert.excluded.last_number,
             insert.excluded.last_number),
            else_=ticket_numbers.c.last_number,
        )  # fmt: skip
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=[
                    ticket_numbers.c.branch_id,
                    ticket_numbers.c.letter,
                    ticket_numbers.c.day,
                ],
                set_={"last_number": greater},
            )
        )


def cancel_lost_tickets(conn: Connection, branch_id: str, after_seq: int, until_seq: int) -> int:
    """A node restored from an older backup has lost the tickets it issued after that backup
    (central's seqs `after_seq`+1 … `until_seq`): they are ended at central as cancelled, so
    no ghost waits on the board or on a phone; their events stay. Returns how many."""
    issued = conn.execute(
        select(events.c.data).where(
            events.c.branch_id == branch_id,
            events.c.kind == "ticket.issued",
            events.c.seq > after_seq,
            events.c.seq <= until_seq,
        )
    ).scalars()
    lost = sorted({_ticket_id(data) for data in issued})
    ended = 0
    for chunk in _chunks(lost):
        result = conn.execute(
            update(tickets)
            .where(tickets.c.id.in_(chunk), tickets.c.status.in_(OPEN_STATUSES))
            .values(
                status=TicketStatus.CANCELLED.value,
                outcome=Outcome.CANCELLED.value,
                counter_id=None,
                call_seq=None,
            )
        )
        ended += result.rowcount or 0
    return ended


def upsert_many(conn: Connection, table: Any, rows: Sequence[dict[str, Any]], *, key: str) -> None:
    """Insert rows, or replace every other column of the row with the same `key`. On
    PostgreSQL through the driver's prepared `executemany` (see `replication.insert_many`)."""
    if not rows:
        return
    columns = list(rows[0])
    if conn.dialect.name != "postgresql":
        insert = upsert_insert(conn.dialect.name)(table)
        others = {c: insert.excluded[c] for c in columns if c != key}
        conn.execute(insert.on_conflict_do_update(index_elements=[key], set_=others), list(rows))
        return
    values = ", ".join(f"${number}" for number in range(1, len(columns) + 1))
    others_sql = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != key)
    statement = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({values}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {others_sql}"
    )
    conn.exec_driver_sql(statement, [tuple(row[c] for c in columns) for row in rows])


# ---- the fold ------------------------------------------------------------------------------


def _step(row: dict[str, Any], event: Event) -> None:
    """What one event does to its ticket's row."""
    view = event.data["ticket"]
    row |= {
        "service_id": view["service_id"],
        "status": view["status"],
        "priority": view["priority"],
        "counter_id": view.get("counter_id"),
        "called_at": _moment(view.get("called_at")),
        "recalls": view.get("recalls") or 0,
    }
    if event.kind in CALLS:
        row["call_seq"] = event.seq
    elif event.kind == "ticket.recycled":
        row |= {"call_seq": None, "counter_id": None, "called_at": None}
    elif event.kind == "ticket.started":
        row["started_at"] = event.at
    elif event.kind in ENDS:
        row |= {"finished_at": event.at, "outcome": view.get("outcome") or ENDS[event.kind]}
    elif event.kind == "ticket.delayed" and view.get("queued_at"):
        row["queued_at"] = _moment(view["queued_at"])


def _new_row(
    branch_id: str,
    view: dict[str, Any],
    timezone: str,
    by_number: dict[NumberKey, list[dict[str, Any]]],
) -> dict[str, Any]:
    """A ticket central has not seen: its first event's view, the visit after any earlier visit
    of the same printed number (a transfer keeps the number and its queue time)."""
    issued_at = _moment(view["issued_at"])
    assert issued_at is not None
    key = (view["letter"], local_day(issued_at, timezone), int(view["number"]))
    earlier = by_number[key]
    origin = next(
        (row for row in reversed(earlier) if row["status"] == TicketStatus.TRANSFERRED.value),
        None,
    )
    row = {
        "id": view["id"],
        "branch_id": branch_id,
        "service_id": view["service_id"],
        "letter": key[0],
        "number": key[2],
        "day": key[1],
        "priority": view["priority"],
        "language": view["language"],
        "status": view["status"],
        "counter_id": None,
        "target_counter_id": None,
        "issued_at": issued_at,
        "queued_at": origin["queued_at"] if origin else issued_at,
        "appointment_at": None,
        "called_at": None,
        "started_at": None,
        "finished_at": None,
        "outcome": None,
        "recalls": 0,
        "transferred_from": origin["id"] if origin else None,
        "wait_estimate_s": None,
        "wait_p90_s": None,
        "visit": max((row["visit"] for row in earlier), default=0) + 1,
        "call_seq": None,
    }
    earlier.append(row)
    return row


def _by_number(
    conn: Connection,
    branch_id: str,
    known: dict[str, dict[str, Any]],
    ticket_events: Iterable[Event],
    timezone: str,
) -> dict[NumberKey, list[dict[str, Any]]]:
    """Central's rows of every printed number the batch's new tickets carry, by visit."""
    wanted: set[NumberKey] = set()
    for event in ticket_events:
        view = event.data["ticket"]
        if view["id"] not in known:
            issued_at = _moment(view["issued_at"])
            assert issued_at is not None
            wanted.add((view["letter"], local_day(issued_at, timezone), int(view["number"])))
    found: dict[NumberKey, list[dict[str, Any]]] = defaultdict(list)
    for day in sorted({day for _, day, _ in wanted}):
        todays = sorted(number for _, d, number in wanted if d == day)
        clause = and_(tickets.c.branch_id == branch_id, tickets.c.day == day)
        for row in _rows(conn, tickets.c.number, todays, clause):
            key = (row["letter"], row["day"], row["number"])
            if key in wanted:
                found[key].append(known.get(row["id"], row))
    for rows in found.values():
        rows.sort(key=lambda row: row["visit"])
    return found


def _rows(
    conn: Connection, column: Any, values: Iterable[Any], *where: Any
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for chunk in _chunks(sorted(set(values))):
        query = select(tickets).where(column.in_(chunk), *where)
        found.extend(dict(row._mapping) for row in conn.execute(query))
    return found


def _chunks(values: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _ticket_id(data: str) -> str:
    return str(json.loads(data)["ticket"]["id"])
