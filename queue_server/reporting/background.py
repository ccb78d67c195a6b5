"""The projector in the server: woken after events are published, plus a periodic catch-up of
every branch (events written by other processes, or missed while a batch failed)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from queue_server.catalog.loader import Catalog
from queue_server.store.database import Database
from queue_server.store.events import Event
from queue_server.store.reports.runner import catch_up, projected_branches

if TYPE_CHECKING:
    from queue_server.app import Rigi


log = logging.getLogger(__name__)

GATHER_S = 1.0  # after a wake-up, wait this long so one transaction applies many events
CATCH_UP_S = 30.0  # every branch is caught up at least this often


class BackgroundProjector:
    """Applies published events to the report tables, asynchronously and in batches, so that
    issuing and calling pay only for noting which branch moved."""

    def __init__(
        self,
        database: Database,
        catalog: Catalog,
        gather_s: float = GATHER_S,
        catch_up_s: float = CATCH_UP_S,
    ) -> None:
        self.database = database
        self.catalog = catalog
        self.gather_s = gather_s
        self.catch_up_s = catch_up_s
        self._pending: set[str] = set()
        self._woken = asyncio.Event()
        self._everything = True  # catch every branch up at start

    async def wake(self, events: Sequence[Event]) -> None:
        """A `Database.listeners` entry: note the branches that moved."""
        for event in events:
            self._pending.add(event.branch)
        self._woken.set()

    async def run(self) -> None:
        while True:
            if not self._everything:
                try:
                    await asyncio.wait_for(self._woken.wait(), self.catch_up_s)
                    await asyncio.sleep(self.gather_s)
                except TimeoutError:
                    self._everything = True
            self._woken.clear()
            await self._apply_pending()

    async def _apply_pending(self) -> None:
        branches, self._pending = self._pending, set()
        if self._everything:
            self._everything = False
            try:
                async with self.database.read() as conn:
                    branches |= set(await projected_branches(conn))
            except Exception:
                log.exception("listing branches for reports failed; trying again later")
                self._everything = True
        for branch in sorted(branches):
            try:
                await catch_up(self.database, self.catalog, branch)
            except Exception:
                log.exception("reports could not apply the events of %s; trying again", branch)
                self._pending.add(branch)


@contextlib.asynccontextmanager
async def reports(rigi: Rigi) -> AsyncIterator[BackgroundProjector]:
    """Lifespan part: run the projector while the server runs."""
    projector = BackgroundProjector(rigi.database, rigi.catalog)
    rigi.database.listeners.append(projector.wake)
    task = asyncio.create_task(projector.run(), name="reports-projector")
    task.add_done_callback(_report_death)
    try:
        yield projector
    finally:
        rigi.database.listeners.remove(projector.wake)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _report_death(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the reports projector stopped", exc_info=task.exception())
