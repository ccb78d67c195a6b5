"""The projector in the server: woken after events are published, plus a periodic catch-up of
every branch (events written by other processes, or missed while a batch failed).

On PostgreSQL it runs in a process of its own (`reporting/process.py`): its Python (decoding
events, summing rollups, building statements) and its statements' round trips take neither the
serving loop's turns nor its interpreter lock; in a thread it still shared the lock, and lost
about half the issue rate at load in `benchmarks/facts_cost_bench.py`. On a SQLite file the
batch already runs in the writer thread; it stays on the process's one writer there (SQLite has
one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from queue_server.catalog.loader import Catalog
from queue_server.reporting.process import ProjectorProcess
from queue_server.store.database import Database
from queue_server.store.events import Event
from queue_server.store.reports.runner import branches_behind, catch_up, catch_up_together

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
        before_batch: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.database = database
        self.catalog = catalog
        self.gather_s = gather_s
        self.catch_up_s = catch_up_s
        self.before_batch = before_batch  # the projector's process: follow the organisation
        self._pending: set[str] = set()
        self._woken = asyncio.Event()
        self._everything = True  # catch every branch up at start
        self._applying = asyncio.Lock()  # held for a batch: stopping waits for its commit
        self._stopped = False

    async def wake(self, events: Sequence[Event]) -> None:
        """A `Database.listeners` entry: note the branches that moved."""
        self.note({event.branch for event in events})

    def note(self, branches: set[str]) -> None:
        """Apply these branches' new events soon (on the projector's own loop)."""
        self._pending |= branches
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
            async with self._applying:
                if self._stopped:
                    return
                await self._apply_pending()

    async def stop_between_batches(self, running: asyncio.Task[None]) -> None:
        """End `running` (this projector's `run`) once no batch is in flight. The flag, not
        the cancel alone: Python 3.11's `wait_for` drops a cancel that arrives as the event it
        waits for is set (a branch noted just before the input closed), and the projector's
        process then ran on until the server killed it 30 s later."""
        async with self._applying:
            self._stopped = True
            running.cancel()
        await asyncio.gather(running, return_exceptions=True)

    async def _apply_pending(self) -> None:
        if self.before_batch is not None:
            try:
                await self.before_batch()
            except Exception:
                log.exception("reports: reading the organisation failed; trying again later")
                return  # the branches stay pending
        branches, self._pending = self._pending, set()
        if self._everything:
            self._everything = False
            try:
                async with self.database.read() as conn:
                    branches |= set(await branches_behind(conn))
            except Exception:
                log.exception("listing branches for reports failed; trying again later")
                self._everything = True
        if not branches:
            return
        try:
            applied = await catch_up_together(self.database, self.catalog, branches)
        except Exception:
            log.warning("reports: a batch of %d branches failed; one by one", len(branches))
            await self._one_by_one(branches)
            return
        if skipped := branches - applied.keys():  # another process held them: again soon
            self._pending |= skipped
            self._woken.set()

    async def _one_by_one(self, branches: set[str]) -> None:
        """A transaction per branch, so that a branch whose events fail to apply holds back
        only itself."""
        for branch in sorted(branches):
            try:
                await catch_up(self.database, self.catalog, branch)
            except Exception:
                log.exception("reports could not apply the events of %s; trying again", branch)
                self._pending.add(branch)


@contextlib.asynccontextmanager
async def reports(rigi: Rigi) -> AsyncIterator[None]:
    """Lifespan part: run the projector while the server runs (in its own process on
    PostgreSQL)."""
    if not rigi.database.is_sqlite:
        child = ProjectorProcess(rigi.database.url)
        await child.start()
        rigi.database.listeners.append(child.wake)
        try:
            yield
        finally:
            rigi.database.listeners.remove(child.wake)
            await child.stop()
        return
    projector = BackgroundProjector(rigi.database, rigi.catalog)
    rigi.database.listeners.append(projector.wake)
    task = asyncio.create_task(projector.run(), name="reports-projector")
    task.add_done_callback(_report_death)
    try:
        yield
    finally:
        rigi.database.listeners.remove(projector.wake)
        await projector.stop_between_batches(task)  # not a bare cancel: see there


def _report_death(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the reports projector stopped", exc_info=task.exception())
