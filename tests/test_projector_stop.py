"""The reports projector stops between batches even when a branch was noted in the same
instant (`reporting/background.py`): Python 3.11's `asyncio.wait_for` drops a cancel that
arrives as the event it waits for is set, and a projector process that was handed a line just
before its input closed ran on until its server killed it 30 s later (every such PostgreSQL
test server's stop waited 15 s and left it running)."""

from __future__ import annotations

import asyncio
from typing import Any

from queue_server.reporting.background import BackgroundProjector


async def test_a_projector_noted_a_branch_as_it_stops_ends_without_applying_it() -> None:
    database: Any = None  # never reached: nothing may be applied once stopping
    projector = BackgroundProjector(database, catalog=None, gather_s=0.01, catch_up_s=3600)  # type: ignore[arg-type]
    projector._everything = False  # no catch-up of every branch at start (it needs a database)
    running = asyncio.create_task(projector.run())
    await asyncio.sleep(0)  # it waits for a branch to be noted
    projector.note({"testhall"})  # the last line, then the input closes
    await asyncio.wait_for(projector.stop_between_batches(running), 5)
    assert running.done() and not projector._applying.locked()
