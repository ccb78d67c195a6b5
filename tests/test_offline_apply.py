"""Central applying a node's stream: duplicates, reordering, replays and a node restored from an
older backup change nothing twice and lose nothing (real SQLite files and PostgreSQL)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from queue_server.errors import BranchNodeOwned
from queue_server.store.database import Database
from queue_server.store.events import append_event
from queue_server.store.migrate import migrate
from queue_server.store.replication import (
    Cursor,
    NodeEvent,
    apply_node_events,
    claim_branch,
    link_rows,
    resume_after,
)
from queue_server.store.schema import audit, events

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
                  {"ticket": {"id": f"t{epoch[:4]}{seq}", "label": f"A{seq:03d}"}},
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
