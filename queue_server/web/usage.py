"""How much each service of a branch was used lately, so the kiosk shows the most used first.

Read from the tickets of the last days (one grouped count, cached for a few minutes per branch);
the catalog's `popularity` decides where there is no history yet, as on a fresh install.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from queue_server.store.schema import tickets

if TYPE_CHECKING:
    from queue_server.app import Rigi


log = logging.getLogger(__name__)

USAGE_DAYS = 14
CACHE_SECONDS = 300


async def recent_usage(rigi: Rigi, branch_id: str) -> dict[str, int]:
    """Service id → tickets issued at the branch in the last USAGE_DAYS days (cached)."""
    cache: dict[str, tuple[float, dict[str, int]]] = rigi.__dict__.setdefault("_web_usage", {})
    cached = cache.get(branch_id)
    if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    since = (datetime.now(UTC) - timedelta(days=USAGE_DAYS)).date()
    query = (
        select(tickets.c.service_id, func.count())
        .where(tickets.c.branch_id == branch_id, tickets.c.day >= since)
        .group_by(tickets.c.service_id)
    )
    try:
        async with rigi.database.engine.connect() as conn:
            counts = {service_id: int(n) for service_id, n in (await conn.execute(query)).all()}
    except SQLAlchemyError:
        log.warning("could not count the recent tickets of %s; using popularity", branch_id)
        counts = {}
    cache[branch_id] = (time.monotonic(), counts)
    return counts
