"""Running the projector over a database: catch a branch up, or rebuild it from the event log."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from queue_server.catalog.loader import Catalog
from queue_server.store.database import Database
from queue_server.store.reports.projector import BATCH_EVENTS, apply_batch, reset_branch
from queue_server.store.schema import branch_streams


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
