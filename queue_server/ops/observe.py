"""What the metrics learn from the server: committed events (a `Database.listeners` entry)
and a sampler of the database pool and the printers' health.

Events are counted in the process that committed them (a listener hears only its own
process's commits), so with several processes each event is counted exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client.multiprocess import mark_process_dead
from sqlalchemy import select

from queue_server.ops.exposition import MULTIPROC_ENV
from queue_server.ops.metrics import (
    CALLS,
    DB_POOL_CONNECTIONS,
    PRINTER_UP,
    PRINTERS,
    PUBLISH_LAG_SECONDS,
    SERVICE_SECONDS,
    TICKETS_ISSUED,
    VISITS_ENDED,
    WAIT_SECONDS,
)
from queue_server.store.events import Event
from queue_server.store.schema_printing import printers

if TYPE_CHECKING:
    from queue_server.app import Rigi


log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 10.0
_ENDED = {
    "ticket.finished": "finished",
    "ticket.no_show": "no_show",
    "ticket.cancelled": "cancelled",
    "ticket.transferred": "transferred",
    "ticket.recycled": "recycled",
}
_HEALTHS = ("ok", "agent_offline", "printer_offline", "paper_out")


async def observe_events(events: Sequence[Event]) -> None:
    """Count and time committed events. Listed after the hub's publisher, so when it runs
    the events have been handed to the bus: their lag is event time → published."""
    now = datetime.now(UTC)
    for event in events:
        PUBLISH_LAG_SECONDS.observe(max(0.0, (now - event.at).total_seconds()))
        kind = event.kind
        if not kind.startswith("ticket."):
            continue
        ticket = event.data.get("ticket") or {}
        if kind == "ticket.issued":
            TICKETS_ISSUED.labels(event.branch).inc()
        elif kind in ("ticket.called", "ticket.recalled"):
            CALLS.labels(event.branch, kind.removeprefix("ticket.")).inc()
            if kind == "ticket.called":
                _observe_since(WAIT_SECONDS, event, ticket.get("issued_at"))
        elif kind in _ENDED:
            VISITS_ENDED.labels(event.branch, _ENDED[kind]).inc()
            if kind == "ticket.finished":
                _observe_since(SERVICE_SECONDS, event, ticket.get("called_at"))


def _observe_since(histogram: Any, event: Event, since: str | None) -> None:
    if not since:
        return
    try:
        start = datetime.fromisoformat(since)
    except ValueError:
        return
    histogram.labels(event.branch).observe(max(0.0, (event.at - start).total_seconds()))


def sample_pool(pool: Any) -> None:
    """The engine pool's connections by state (SQLAlchemy's QueuePool; others report what
    they have)."""
    for state, method in (("checked_out", "checkedout"), ("idle", "checkedin"), ("size", "size")):
        reader = getattr(pool, method, None)
        if callable(reader):
            DB_POOL_CONNECTIONS.labels(state).set(reader())


async def sample_printers(database: Any) -> None:
    async with database.read() as conn:
        rows = (await conn.execute(select(printers))).all()
    counts = dict.fromkeys(_HEALTHS, 0)
    for row in rows:
        health = _health(row)
        counts[health] += 1
        PRINTER_UP.labels(row.branch_id, row.printer_id).set(1 if health == "ok" else 0)
    for health, count in counts.items():
        PRINTERS.labels(health).set(count)


def _health(row: Any) -> str:
    if not row.connected:
        return "agent_offline"
    if row.online is False:
        return "printer_offline"
    if row.paper == "out":
        return "paper_out"
    return "ok"


async def _sample_forever(rigi: Rigi, interval_s: float) -> None:
    while True:
        try:
            sample_pool(rigi.database.engine.pool)
            await sample_printers(rigi.database)
        except Exception:
            log.exception("sampling metrics failed; trying again later")
        await asyncio.sleep(interval_s)


@contextlib.asynccontextmanager
async def observing(rigi: Rigi) -> AsyncIterator[None]:
    """Lifespan part, after the realtime one: listen to committed events, sample the rest."""
    rigi.database.listeners.append(observe_events)
    sampler = asyncio.create_task(
        _sample_forever(rigi, rigi.settings.metrics_sample_s), name="metrics-sampler"
    )
    try:
        yield
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
        rigi.database.listeners.remove(observe_events)
        if os.environ.get(MULTIPROC_ENV):
            # This process's live gauges (feeds, pool) stop counting in the others' scrapes.
            mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
