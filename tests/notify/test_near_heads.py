"""The "near" check by people ahead reads only the heads of the branch's lines
(`rows.branch_heads`), not the whole line: it must still tell exactly the subscribed tickets that
the whole line puts within the rule, with the same count ahead in the message, over random lines
with every class, due and early appointments, transfers to a counter, side services and ties in
the time queued; once each. On a SQLite file and on PostgreSQL."""

from __future__ import annotations

import functools
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, delete, insert, select

from queue_server.catalog.loader import Catalog
from queue_server.domain import estimate
from queue_server.domain.tickets import Priority
from queue_server.notify.outbox import NearRule, Outbox
from queue_server.store import rows
from queue_server.store.database import Database
from queue_server.store.schema import tickets
from queue_server.store.schema_notify import messages, subscriptions
from tests import test_call_next_heads as call_next_heads
from tests.test_call_next_heads import BRANCH, COUNTER, NOW, _line

# The call-next test's fixtures (the shipped organisation, a migrated database), shared.
catalog = call_next_heads.catalog
database = call_next_heads.database

SIZE = 80
SERVICES = 3  # the line is spread over this many services, so that each line is long


def _long_line(catalog: Catalog, seed: int, *, appointments: bool = True) -> list[dict[str, Any]]:
    """The random line of the call-next test, its tickets dealt over SERVICES services; without
    `appointments` they come as walk-ins (so that the front of the line is not all due ones)."""
    line = _line(catalog, seed, SIZE)
    services = sorted(catalog.profile(BRANCH, COUNTER))[:SERVICES]
    for n, ticket in enumerate(line):
        ticket["service_id"] = services[n % SERVICES]
        ticket["letter"] = catalog.service(ticket["service_id"]).letter
        if not appointments and ticket["priority"] == Priority.APPOINTMENT.value:
            ticket |= {"priority": Priority.NORMAL.value, "appointment_at": None}
    return line


def _profiles(catalog: Catalog) -> list[Any]:
    return [catalog.profile(BRANCH, c.id) for c in catalog.branch(BRANCH).counters]


def _ahead_over_whole_line(conn: Connection, catalog: Catalog) -> dict[str, int]:
    """Each waiting ticket's people ahead, counted over every waiting ticket."""
    waiting = rows.waiting(conn, BRANCH, catalog)
    line = estimate.WaitingLine(waiting)
    return {t.id: estimate.people_ahead(t, line, _profiles(catalog), NOW) for t in waiting}


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_people_ahead_over_the_heads_is_the_whole_lines_up_to_the_rule(
    database: Database, catalog: Catalog, seed: int
) -> None:
    line = _long_line(catalog, seed)
    await database.transaction(lambda conn: conn.execute(insert(tickets), line))
    whole = await database.reading(lambda conn: _ahead_over_whole_line(conn, catalog))
    assert len(whole) == SIZE and max(whole.values()) > 10  # a line worth cutting
    for most in (0, 1, 3, 6):
        heads = await database.reading(
            functools.partial(rows.branch_heads, branch_id=BRANCH, now=NOW, catalog=catalog,
                              per_line=most + 1)
        )  # fmt: skip
        assert len(heads) < SIZE
        cut = estimate.WaitingLine(heads)
        counted = {t.id: estimate.people_ahead(t, cut, _profiles(catalog), NOW) for t in heads}
        within = {ticket_id for ticket_id, ahead in whole.items() if ahead <= most}
        assert within, most
        assert within <= set(counted)  # everyone within the rule is among the heads
        for ticket_id, ahead in counted.items():
            if ticket_id in within:
                assert ahead == whole[ticket_id]  # exact within the rule
            else:
                assert ahead > most  # and beyond it on the heads too


def _subscribe_all(conn: Connection, line: list[dict[str, Any]]) -> None:
    conn.execute(
        insert(subscriptions),
        [
            {
                "id": uuid.uuid4().hex,
                "ticket_id": t["id"],
                "branch_id": BRANCH,
                "channel": "sms",
                "contact_hash": uuid.uuid4().hex,
                "contact_secret": "sealed",
                "language": "ka",
                "created_at": NOW,
            }
            for t in line
        ],
    )


def _told(conn: Connection) -> dict[str, dict[str, Any]]:
    found = conn.execute(
        select(messages.c.ticket_id, messages.c.params).where(messages.c.kind == "near")
    )
    return {ticket_id: json.loads(params) for ticket_id, params in found}


@pytest.mark.parametrize("appointments", [True, False], ids=["appointments", "walk-ins"])
async def test_the_subscribed_tickets_within_each_services_rule_are_told_near_once(
    database: Database, catalog: Catalog, appointments: bool
) -> None:
    line = _long_line(catalog, 5, appointments=appointments)
    await database.transaction(lambda conn: conn.execute(insert(tickets), line))
    await database.transaction(lambda conn: _subscribe_all(conn, line))
    whole = await database.reading(lambda conn: _ahead_over_whole_line(conn, catalog))
    service = {t["id"]: t["service_id"] for t in line}
    # One service near at more people ahead than the branch's 2 (as many as one of its tickets
    # has): the heads read must reach the widest rule of the branch.
    wide, most = min((ahead, service[ticket_id]) for ticket_id, ahead in whole.items()
                     if ahead > 2)[::-1]  # fmt: skip
    rules = (NearRule(0), NearRule(2, 0, {f"{BRANCH}/{wide}": {"ahead": most}}), NearRule(4))
    for rule in rules:
        await database.transaction(lambda conn: conn.execute(delete(messages)))
        outbox = Outbox(database, catalog, None, lambda: NOW, near=rule, retention=timedelta(0))
        expected = {
            ticket_id: ahead
            for ticket_id, ahead in whole.items()
            if ahead <= rule.of(BRANCH, service[ticket_id])[0]
        }
        assert expected, rule

        assert await outbox._check_near(BRANCH) == len(expected), rule
        told = await database.reading(_told)
        assert {ticket_id: params["ahead"] for ticket_id, params in told.items()} == expected
        assert await outbox._check_near(BRANCH) == 0  # once each
