"""Central applying a node's stream: duplicates, reordering, replays and a node restored from an
older backup change nothing twice and lose nothing (real SQLite files and PostgreSQL)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from queue_server.catalog.loader import load_catalog
from queue_server.errors import BranchNodeOwned
from queue_server.settings import SHIPPED_CONFIG
from queue_server.store.database import Database
from queue_server.store.events import append_event
from queue_server.store.migrate import migrate
from queue_server.store.national import floor_rows
from queue_server.store.replication import (
    Cursor,
    NodeEvent,
    apply_node_events,
    claim_branch,
    link_rows,
    resume_after,
)
from queue_server.store.schema import audit, events, tickets
from tests.offline_link import node_ticket

BRANCH = "cc01-shashiani"
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
async def central(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await migrate(database)
    await database.transaction(functools.partial(claim_branch, branch_id=BRANCH, now=T0))
    yield database
    await database.dispose()


def _events(epoch: str, first: int, last: int) -> list[NodeEvent]:
    return [
        NodeEvent(epoch, seq, "ticket.issued", T0 + timedelta(seconds=seq),
                  {"ticket": node_ticket(f"t{epoch[:4]}{seq}", seq, T0)},
                  "kiosk:Kiosk 1")
        for seq in range(first, last + 1)
    ]  # fmt: skip


async def _send(
    database: Database, batch: Sequence[NodeEvent], starts: dict[str, int] | None = None
) -> Cursor:
    head = max((e.seq for e in batch), default=0)
    return await database.transaction(
        functools.partial(
            apply_node_events,
            branch_id=BRANCH,
            batch=batch,
            starts=starts or {},
            head=(head, None),
            now=T0,
        )
    )


async def _held(database: Database) -> list[tuple[int, str]]:
    async with database.read() as conn:
        rows = await conn.execute(
            select(events.c.seq, events.c.data).where(events.c.branch_id == BRANCH)
            .order_by(events.c.seq)
        )  # fmt: skip
        return [(r.seq, r.data) for r in rows]


async def test_duplicates_reordering_and_replays_change_nothing(central: Database) -> None:
    epoch = uuid.uuid4().hex
    first = await _send(central, _events(epoch, 1, 10), {epoch: 1})
    assert (first.epoch, first.seq, first.applied) == (epoch, 10, 10)
    again = await _send(central, _events(epoch, 1, 10), {epoch: 1})  # a retry after a timeout
    assert again.applied == 0
    # Out of order: 16..20 before 11..15 is a gap: nothing applied, the cursor says resume at 10
    ahead = await _send(central, _events(epoch, 16, 20))
    assert (ahead.seq, ahead.applied) == (10, 0)
    shuffled = list(reversed(_events(epoch, 5, 20)))  # overlapping and reversed in one batch
    after = await _send(central, shuffled)
    assert (after.seq, after.applied) == (20, 10)
    held = await _held(central)
    assert [seq for seq, _ in held] == list(range(1, 21))
    async with central.read() as conn:
        audited = (await conn.execute(select(audit).where(audit.c.branch_id == BRANCH))).all()
    assert len(audited) == 20  # the kiosk's actions reach the central audit trail once each


async def test_a_node_restored_from_an_older_backup_keeps_every_visit_once(
    central: Database,
) -> None:
    old, new = uuid.uuid4().hex, uuid.uuid4().hex
    await _send(central, _events(old, 1, 30), {old: 1})
    # The node's database is restored from a backup taken at seq 20: a new epoch that numbers
    # on from 21. Central's 21..30 of the old epoch are visits that happened: kept.
    restored = _events(new, 21, 35)
    cursor = await _send(central, restored, {new: 21})
    assert (cursor.epoch, cursor.seq, cursor.past_epochs, cursor.applied) == (new, 35, (old,), 15)
    held = await _held(central)
    assert [seq for seq, _ in held] == list(range(1, 46))  # 30 old + 15 new, no gap, no double
    ids = [data for _, data in held]
    assert len(set(ids)) == len(ids)
    # A late retry of the old epoch's events, and of the new ones: nothing changes
    assert (await _send(central, _events(old, 15, 30))).applied == 0
    assert (await _send(central, restored, {new: 21})).applied == 0
    assert len(await _held(central)) == 45
    # Central's rows: the restored node lost the tickets it issued after its backup (old
    # 21..30), so they end as cancelled; the numbers it issues again are their next visits.
    rows = await _tickets(central)
    assert [rows[f"t{old[:4]}{n}"][:2] for n in (1, 20)] == [("waiting", 1)] * 2
    assert {rows[f"t{old[:4]}{n}"][:2] for n in range(21, 31)} == {("cancelled", 1)}
    assert {rows[f"t{new[:4]}{n}"][:2] for n in range(21, 31)} == {("waiting", 2)}
    assert {rows[f"t{new[:4]}{n}"][:2] for n in range(31, 36)} == {("waiting", 1)}
    assert len(rows) == 45


async def _tickets(database: Database) -> dict[str, tuple[Any, ...]]:
    """Central's ticket rows of the branch: id → (status, visit, counter, call seq, origin,
    outcome, queued_at, started_at, finished_at)."""
    columns = (tickets.c.status, tickets.c.visit, tickets.c.counter_id, tickets.c.call_seq,
               tickets.c.transferred_from, tickets.c.outcome, tickets.c.queued_at,
               tickets.c.started_at, tickets.c.finished_at)  # fmt: skip
    async with database.read() as conn:
        found = await conn.execute(
            select(tickets.c.id, *columns).where(tickets.c.branch_id == BRANCH)
        )
        return {row.id: tuple(row)[1:] for row in found}


async def test_central_keeps_the_node_s_tickets_as_its_events_go(central: Database) -> None:
    """A citizen's phone link and the board at central read these rows: each event moves its
    ticket there as at the node, a transfer becomes the number's next visit, replays change
    nothing."""
    epoch = uuid.uuid4().hex
    at = [T0 + timedelta(minutes=m) for m in range(8)]

    def event(seq: int, kind: str, ticket: dict[str, Any], **data: Any) -> NodeEvent:
        return NodeEvent(epoch, seq, kind, at[seq - 1], {"ticket": ticket, **data}, "operator:x")

    one, two = node_ticket("t1", 1, at[0]), node_ticket("t2", 2, at[1])
    called = one | {"status": "called", "counter_id": "c01", "called_at": at[2].isoformat()}
    moved = two | {"status": "called", "counter_id": "c02", "called_at": at[4].isoformat()}
    batch = [
        event(1, "ticket.issued", one),
        event(2, "ticket.issued", two),
        event(3, "ticket.called", called, counter_id="c01"),
        event(4, "ticket.started", called | {"status": "serving"}),
        event(5, "ticket.called", moved, counter_id="c02"),
        event(6, "ticket.finished", called | {"status": "done"}),
        event(7, "ticket.transferred", moved | {"status": "transferred"}),
        event(8, "ticket.issued", node_ticket("t2b", 2, at[1]) | {"service_id": "passport"}),
    ]
    assert (await _send(central, batch[:5], {epoch: 1})).applied == 5
    assert (await _send(central, batch, {epoch: 1})).applied == 3  # 1..5 again: skipped
    assert (await _send(central, batch, {epoch: 1})).applied == 0
    rows = await _tickets(central)
    assert rows["t1"] == ("done", 1, "c01", 3, None, "served", at[0], at[3], at[5])
    assert rows["t2"] == ("transferred", 1, "c02", 5, None, "transferred", at[1], None, at[6])
    # the transfer's new visit keeps the number and the time already waited
    assert rows["t2b"] == ("waiting", 2, None, None, "t2", None, at[1], None, None)


async def test_the_node_resumes_after_what_central_holds(tmp_path: object) -> None:
    node = Database(f"sqlite+aiosqlite:///{tmp_path}/node.sqlite3")
    await migrate(node)
    try:
        for number in range(5):
            await node.transaction(
                functools.partial(
                    append_event, branch_id=BRANCH, kind="ticket.issued", at=T0,
                    data={"n": number},
                )
            )  # fmt: skip
        async with node.read() as conn:
            epoch = (await conn.execute(select(events.c.epoch).limit(1))).scalar_one()
        held = functools.partial(resume_after, branch_id=BRANCH)
        assert await node.reading(functools.partial(held, cursor=Cursor(None, 0))) == 0
        assert await node.reading(functools.partial(held, cursor=Cursor(epoch, 3))) == 3
        # central holds more of this epoch than the node (the node was restored): all it has
        assert await node.reading(functools.partial(held, cursor=Cursor(epoch, 9))) == 5
        assert await node.reading(functools.partial(held, cursor=Cursor("other", 9))) == 0
    finally:
        await node.dispose()


async def test_central_refuses_to_write_a_node_owned_branch(central: Database) -> None:
    with pytest.raises(BranchNodeOwned) as refused:
        await central.transaction(
            functools.partial(append_event, branch_id=BRANCH, kind="ticket.issued", at=T0,
                              data={})
        )  # fmt: skip
    assert refused.value.code == "branch_node_owned"
    assert await _held(central) == []


async def test_link_status_shows_lag_and_silence(central: Database) -> None:
    epoch = uuid.uuid4().hex
    batch = _events(epoch, 1, 4)
    await central.transaction(
        functools.partial(apply_node_events, branch_id=BRANCH, batch=batch,
                          starts={epoch: 1}, head=(10, T0 + timedelta(seconds=70)), now=T0)
    )  # fmt: skip
    links = await central.reading(
        functools.partial(link_rows, now=T0 + timedelta(seconds=30), stale_after_s=20)
    )
    link = links[BRANCH]
    assert link["connected"] is False and link["silent_s"] == 30
    assert link["last_event"]["seq"] == 4 and link["lag_events"] == 6
    assert link["lag_s"] == 66  # the node's newest event (70 s) against the last received (4 s)


async def test_central_shows_the_health_of_the_node_s_printers(central: Database) -> None:
    """A centre's printer runs out of paper: central's national row and the branch's printers
    say so, from the node's `printer.health` events (the newest of a batch wins)."""
    epoch = uuid.uuid4().hex
    health = {"id": "p1", "kiosks": ["k1"], "connected": True, "online": True, "paper": "ok"}

    def event(seq: int, **changes: Any) -> NodeEvent:
        return NodeEvent(epoch, seq, "printer.health", T0 + timedelta(seconds=seq),
                         health | changes, "printing")  # fmt: skip

    await _send(central, [event(1), event(2, paper="near_end"), event(3, paper="out")], {epoch: 1})
    catalog = load_catalog(SHIPPED_CONFIG)
    rows = await floor_rows(central, catalog, [BRANCH], T0, stale_after_s=20)
    assert (rows[BRANCH]["printers"], rows[BRANCH]["printers_paper_out"]) == (1, 1)
    assert rows[BRANCH]["alert"] == "printer"
    await _send(central, [event(4, paper="ok", connected=False)])
    rows = await floor_rows(central, catalog, [BRANCH], T0, stale_after_s=20)
    assert (rows[BRANCH]["printers_paper_out"], rows[BRANCH]["printers_offline"]) == (0, 1)


async def test_the_upgrade_keeps_the_tickets_of_events_central_already_holds(
    database_url: str,
) -> None:
    """A central that held a node's events before it kept ticket rows gets them at the
    upgrade (migration 0015), from its event table."""
    from alembic import command

    from queue_server.store.migrate import alembic_config

    database = Database(database_url)

    def upgrade_to(revision: str) -> Any:
        def run(connection: Any) -> None:
            config = alembic_config(database.url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

        return run

    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(upgrade_to("0017"))
        await database.transaction(functools.partial(claim_branch, branch_id=BRANCH, now=T0))
        epoch = uuid.uuid4().hex
        await _send(database, _events(epoch, 1, 3), {epoch: 1})
        partial = {"branch_id": BRANCH, "epoch": epoch, "seq": 4, "kind": "ticket.issued",
                   "at": T0, "data": '{"ticket": {"id": "x"}}'}  # fmt: skip
        async with database.engine.begin() as conn:
            await conn.execute(events.insert().values(**partial))  # an unchecked old batch's
            await conn.execute(tickets.delete())  # as a central before 0018 held them: none
            await conn.run_sync(upgrade_to("head"))
        rows = await _tickets(database)
        assert {ticket_id: row[:2] for ticket_id, row in rows.items()} == {
            f"t{epoch[:4]}{n}": ("waiting", 1) for n in (1, 2, 3)
        }  # the partial ticket of an unchecked old batch is skipped
    finally:
        await database.dispose()
