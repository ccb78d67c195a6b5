"""The statements every counter action runs, built once with bound parameters.

Building a SQLAlchemy statement and computing its cache key costs 40–95 µs each time (measured
on this machine); a counter action runs about nine. Built once here, each is only executed with
its parameters, and SQLAlchemy reuses its compiled form.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from queue_server.domain.tickets import Priority, TicketStatus
from queue_server.store.schema import counter_states, tickets

TICKET = select(tickets).where(tickets.c.id == bindparam("ticket_id"))
TICKET_LOCKED = TICKET.with_for_update()
TICKET_LOCKED_OR_SKIPPED = TICKET.with_for_update(skip_locked=True)
# SET takes the columns given at execution, besides `ticket_id`.
UPDATE_TICKET = update(tickets).where(tickets.c.id == bindparam("ticket_id"))

WAITING = select(
    tickets.c.id,
    tickets.c.service_id,
    tickets.c.priority,
    tickets.c.queued_at,
    tickets.c.target_counter_id,
    tickets.c.appointment_at,
).where(
    tickets.c.branch_id == bindparam("branch_id"),
    tickets.c.status == TicketStatus.WAITING.value,
)

# The first `per_line` tickets of each line that `counter_id` may call from: a line is the
# waiting tickets of one service, priority class and transfer target, an appointment due
# (`now`) or not. Within a line the dispatcher ranks by the time queued (every other term of
# the urgency is the line's), so the heads of the lines hold the counter's first `per_line`
# picks, in the same order, and the database sorts 1,000 waiting instead of Python ranking
# them. `services`: those the counter's profile weighs above 0.
_LINE_PLACE = func.row_number().over(
    partition_by=(
        tickets.c.service_id,
        tickets.c.priority,
        tickets.c.target_counter_id,
        tickets.c.appointment_at > bindparam("now"),
    ),
    order_by=(tickets.c.queued_at, tickets.c.id),
)
_SERVABLE = or_(
    tickets.c.target_counter_id == bindparam("counter_id"),
    and_(
        tickets.c.target_counter_id.is_(None),
        tickets.c.service_id.in_(bindparam("services", expanding=True)),
    ),
)
_HEADS = WAITING.where(_SERVABLE).add_columns(_LINE_PLACE.label("place")).subquery()
LINE_HEADS = select(*(column for column in _HEADS.c if column.name != "place")).where(
    _HEADS.c.place <= bindparam("per_line")
)
# The first `per_line` tickets of every line of the branch, and every appointment (they are
# few, and an appointment's urgency is not its time queued): whoever has fewer than
# `per_line` people ahead is among them, and so is everyone ahead of them (`rows.branch_heads`).
_BRANCH_HEADS = WAITING.add_columns(_LINE_PLACE.label("place")).subquery()
BRANCH_HEADS = select(*(column for column in _BRANCH_HEADS.c if column.name != "place")).where(
    or_(
        _BRANCH_HEADS.c.place <= bindparam("per_line"),
        _BRANCH_HEADS.c.priority == Priority.APPOINTMENT.value,
    )
)

COUNTER = select(counter_states).where(
    counter_states.c.branch_id == bindparam("branch_id"),
    counter_states.c.counter_id == bindparam("counter_id"),
)
COUNTER_LOCKED = COUNTER.with_for_update()
COUNTERS = select(counter_states).where(counter_states.c.branch_id == bindparam("branch_id"))
# SET takes the columns given at execution, besides the two keys.
UPDATE_COUNTER = update(counter_states).where(
    counter_states.c.branch_id == bindparam("key_branch_id"),
    counter_states.c.counter_id == bindparam("key_counter_id"),
)


def upsert_insert(dialect: str) -> Any:
    """The dialect's INSERT, which has `on_conflict_do_update` on both backends."""
    return (postgresql if dialect == "postgresql" else sqlite).insert
