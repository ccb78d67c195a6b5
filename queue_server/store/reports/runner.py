"""Running the projector over a database: catch a branch up, or rebuild it from the event log."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from queue_server.catalog.loader import Catalog
from queue_server.store.database import Database
from queue_server.store.reports.projector import (
    BATCH_EVENTS,
    apply_batch,
    apply_locked,
    reset_branch,
)
from queue_server.store.schema import branch_streams
from queue_server.store.schema_reports import report_cursors
from queue_server.store.statements import upsert_insert

TOGETHER = 64  # branches applied in one transaction by `catch_up_together`


async def catch_up(
    database: Database, catalog: Catalog, branch_id: str, limit: int = BATCH_EVENTS
) -> int:
    """Apply every event of the branch not applied yet, `limit` per transaction; returns how
    many were applied."""
    total = 0
    while True:
        applied = await database.transaction(
            lambda conn: apply_batch(conn, catalog, branch_id, limit)
        )
        total += applied.events
        if applied.events < limit:
            return total


async def catch_up_together(
    database: Database, catalog: Catalog, branch_ids: Iterable[str], limit: int = BATCH_EVENTS
) -> dict[str, int]:
    """`catch_up` for many branches, TOGETHER to a transaction (`apply_locked`: one statement
    per table however many branches): in a busy day many branches move each second, and a
    transaction per branch was a fifth of the servers' CPU. A branch whose cursor another
    process holds is skipped, not waited for (that process is applying it; waiting held a
    connection until the statement timed out): it is left out of the result, for the caller to
    try again. Returns the events applied per branch."""
    ordered = sorted(set(branch_ids))
    applied: dict[str, int] = {}
    for start in range(0, len(ordered), TOGETHER):
        chunk = ordered[start : start + TOGETHER]

        def body(conn: Connection, chunk: list[str] = chunk) -> dict[str, int]:
            done = apply_locked(conn, catalog, locked_cursors(conn, chunk), limit)
            return {branch_id: batch.events for branch_id, batch in done.items()}

        while True:  # `limit` events in all per transaction, until every branch is at its head
            batch = await database.transaction(body)
            for branch_id, events in batch.items():
                applied[branch_id] = applied.get(branch_id, 0) + events
            if sum(batch.values()) < limit:
                break
    return applied


def lock_free_cursors(conn: Connection, branch_ids: list[str]) -> list[str]:
    """Lock the report cursors of these branches that no other transaction holds (creating
    the missing ones), in two statements; returns the branches locked."""
    return list(locked_cursors(conn, branch_ids))


def locked_cursors(conn: Connection, branch_ids: list[str]) -> dict[str, tuple[str, int] | None]:
    """`lock_free_cursors`, with where each locked cursor stands (None: nothing applied)."""
    now = datetime.now(UTC)
    insert = upsert_insert(conn.dialect.name)(report_cursors).values(
        [{"branch_id": b, "epoch": "", "seq": 0, "updated_at": now} for b in branch_ids]
    )
    conn.execute(insert.on_conflict_do_nothing(index_elements=[report_cursors.c.branch_id]))
    rows = conn.execute(
        select(report_cursors.c.branch_id, report_cursors.c.epoch, report_cursors.c.seq)
        .where(report_cursors.c.branch_id.in_(branch_ids))
        .order_by(report_cursors.c.branch_id)
        .with_for_update(skip_locked=True)
    )
    return {row.branch_id: (row.epoch, row.seq) if row.epoch else None for row in rows}


async def rebuild(
    database: Database,
    catalog: Catalog,
    branch_ids: Iterable[str],
    *,
    allow_partial: bool = False,
) -> dict[str, int]:
    """Make the facts, rollups and counter time of these branches again from the event log;
    returns the events applied per branch. A running server keeps projecting meanwhile: the
    cursor says who has applied what, so nothing is counted twice."""
    applied = {}
    for branch_id in branch_ids:
        await database.transaction(
            functools.partial(reset_branch, branch_id=branch_id, allow_partial=allow_partial)
        )
        applied[branch_id] = await catch_up(database, catalog, branch_id)
    return applied


async def projected_branches(conn: AsyncConnection) -> list[str]:
    """Every branch that has an event stream."""
    rows = await conn.execute(
        select(branch_streams.c.branch_id).order_by(branch_streams.c.branch_id)
    )
    return [row.branch_id for row in rows]


async def branches_behind(conn: AsyncConnection) -> list[str]:
    """The branches whose event stream has moved past their report cursor (or that have none
    yet): the periodic catch-up applies these instead of taking every branch's lock to learn
    that nothing moved."""
    joined = branch_streams.outerjoin(
        report_cursors, report_cursors.c.branch_id == branch_streams.c.branch_id
    )
    rows = await conn.execute(
        select(branch_streams.c.branch_id)
        .select_from(joined)
        .where(
            or_(
                report_cursors.c.branch_id.is_(None),
                report_cursors.c.epoch != branch_streams.c.epoch,
                report_cursors.c.seq < branch_streams.c.last_seq,
            )
        )
        .order_by(branch_streams.c.branch_id)
    )
    return [row.branch_id for row in rows]
