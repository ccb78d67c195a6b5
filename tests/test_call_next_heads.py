"""Calling the next ticket reads only the heads of the branch's lines (`rows.line_heads`), not
the whole line: it must still call exactly whom the dispatcher ranks first over every waiting
ticket, with priorities, due and early appointments, tickets transferred to a counter, side
services, ties in the time queued and times in the future. On a SQLite file and on PostgreSQL,
whose row locks can make other counters take the first picks (then the whole line is read)."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, insert, select

from queue_server.catalog.loader import Catalog, load_catalog
from queue_server.domain import dispatch
from queue_server.domain.numbering import local_day
from queue_server.domain.tickets import Priority, TicketAction, TicketStatus
from queue_server.errors import NotFound
from queue_server.settings import SHIPPED_CONFIG
from queue_server.store import rows
from queue_server.store.counter_actions import CANDIDATES_PER_LINE, CounterActions
from queue_server.store.database import Database
from queue_server.store.migrate import migrate
from queue_server.store.rows import CounterMode
from queue_server.store.schema import tickets

BRANCH = "tbilisi"
COUNTER = "q01"  # weighs document pickup 3, birth certificates 2, most others 1
OTHER_COUNTER = "q02"
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
OPERATOR = "operator:nino"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(SHIPPED_CONFIG)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await migrate(db)
    yield db
    await db.dispose()


def _line(catalog: Catalog, seed: int, size: int) -> list[dict[str, Any]]:
    """`size` waiting tickets drawn with a fixed seed: served and unserved services, every
    class, transfers to this and another counter, a few shared queue times."""
    draw = random.Random(seed)
    served = sorted(catalog.profile(BRANCH, COUNTER))
    others = sorted({s.id for s in catalog.branch_services(BRANCH)} - set(served))
    moments = [NOW - timedelta(minutes=draw.randint(-5, 90)) for _ in range(size // 3)]
    line = []
    for number in range(1, size + 1):
        service_id = draw.choice(served if draw.random() < 0.85 or not others else others)
        priority = draw.choices(list(Priority), weights=(6, 2, 2))[0]
        appointment_at = None
        if priority is Priority.APPOINTMENT:
            appointment_at = NOW + timedelta(minutes=draw.randint(-30, 30))
        queued_at = draw.choice(moments)
        line.append(
            {
                "id": uuid.uuid4().hex,
                "branch_id": BRANCH,
                "service_id": service_id,
                "letter": catalog.service(service_id).letter,
                "number": number,
                "day": local_day(NOW),
                "priority": priority.value,
                "language": "ka",
                "status": TicketStatus.WAITING.value,
                "target_counter_id": draw.choice([None] * 8 + [COUNTER, OTHER_COUNTER]),
                "issued_at": queued_at,
                "queued_at": queued_at,
                "appointment_at": appointment_at,
            }
        )
    return line


async def _queue(
    database: Database, catalog: Catalog, line: list[dict[str, Any]]
) -> CounterActions:
    await database.transaction(lambda conn: conn.execute(insert(tickets), line))
    return CounterActions(database, catalog, lambda: NOW)


async def _first_of_whole_line(database: Database, catalog: Catalog) -> str | None:
    def rank(conn: Connection) -> str | None:
        waiting = rows.waiting(conn, BRANCH, catalog)
        profile = catalog.profile(BRANCH, COUNTER)
        ranked = dispatch.rank_for_counter(waiting, COUNTER, profile, NOW)
        return ranked[0].ticket.id if ranked else None

    return await database.reading(rank)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_each_call_takes_whom_the_dispatcher_ranks_first_over_the_whole_line(
    database: Database, catalog: Catalog, seed: int
) -> None:
    line = _line(catalog, seed, 60)
    actions = await _queue(database, catalog, line)
    await actions.set_counter_mode(BRANCH, COUNTER, CounterMode.OPEN, actor=OPERATOR)
    called = []
    while (expected := await _first_of_whole_line(database, catalog)) is not None:
        change = await actions.call_next(BRANCH, COUNTER, actor=OPERATOR)
        assert change.result["id"] == expected
        assert "urgency" in change.result["reason"]
        called.append(expected)
        await actions.act_on_current(BRANCH, COUNTER, TicketAction.NO_SHOW, actor=OPERATOR)
    with pytest.raises(NotFound) as empty:
        await actions.call_next(BRANCH, COUNTER, actor=OPERATOR)
    assert empty.value.code == "queue_empty"
    profile = catalog.profile(BRANCH, COUNTER)
    servable = {
        ticket["id"]
        for ticket in line
        if dispatch.eligible(rows.queued(ticket, catalog), COUNTER, profile)
    }
    assert sorted(called) == sorted(servable)  # every one it may serve, none it may not


@pytest.mark.postgres
async def test_when_other_counters_hold_the_first_picks_the_next_of_the_whole_line_is_called(
    database: Database, catalog: Catalog, database_url: str
) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite has one writer: no other counter can hold a ticket meanwhile")
    line = _line(catalog, 4, 40)
    for ticket in line:  # one line: its heads are only the first CANDIDATES_PER_LINE
        ticket |= {"service_id": "stamp", "priority": "normal", "target_counter_id": None,
                   "appointment_at": None, "letter": catalog.service("stamp").letter}  # fmt: skip
    actions = await _queue(database, catalog, line)
    await actions.set_counter_mode(BRANCH, COUNTER, CounterMode.OPEN, actor=OPERATOR)

    def ranked_ids(conn: Connection) -> list[str]:
        waiting = rows.waiting(conn, BRANCH, catalog)
        profile = catalog.profile(BRANCH, COUNTER)
        return [p.ticket.id for p in dispatch.rank_for_counter(waiting, COUNTER, profile, NOW)]

    ranked = await database.reading(ranked_ids)
    held = ranked[:CANDIDATES_PER_LINE]
    async with database.engine.connect() as other, other.begin():  # another counter's call
        taken = select(tickets.c.id).where(tickets.c.id.in_(held)).with_for_update()
        assert len((await other.execute(taken)).all()) == CANDIDATES_PER_LINE
        change = await actions.call_next(BRANCH, COUNTER, actor=OPERATOR)
    assert change.result["id"] == ranked[CANDIDATES_PER_LINE]


async def test_a_due_appointment_behind_more_early_ones_than_are_read_is_called_first(
    database: Database, catalog: Catalog
) -> None:
    """Early appointments queued before it in its service do not hide it: a due appointment
    is a line of its own."""
    line = _line(catalog, 5, CANDIDATES_PER_LINE + 2)
    for minutes_ago, ticket in zip(range(60, 0, -5), line, strict=False):
        ticket |= {"service_id": "stamp", "priority": Priority.APPOINTMENT.value,
                   "letter": catalog.service("stamp").letter, "target_counter_id": None,
                   "queued_at": NOW - timedelta(minutes=minutes_ago),
                   "appointment_at": NOW + timedelta(minutes=20)}  # fmt: skip
    due = line[-1]
    due["appointment_at"] = NOW - timedelta(minutes=1)
    actions = await _queue(database, catalog, line)
    await actions.set_counter_mode(BRANCH, COUNTER, CounterMode.OPEN, actor=OPERATOR)
    change = await actions.call_next(BRANCH, COUNTER, actor=OPERATOR)
    assert change.result["id"] == due["id"] == await _first_of_whole_line_before(line, catalog)


async def _first_of_whole_line_before(line: list[dict[str, Any]], catalog: Catalog) -> str:
    waiting = [rows.queued(ticket, catalog) for ticket in line]
    profile = catalog.profile(BRANCH, COUNTER)
    return dispatch.rank_for_counter(waiting, COUNTER, profile, NOW)[0].ticket.id
