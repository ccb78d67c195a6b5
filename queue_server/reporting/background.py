"""The projector in the server: woken after events are published, plus a periodic catch-up of
every branch (events written by other processes, or missed while a batch failed).

On PostgreSQL it runs in a thread of its own, on its own event loop with its own engine
(`ProjectorThread`): its Python (decoding events, summing rollups, building statements) and its
statements' round trips no longer take turns with requests on the serving loop, which measured
about half the issue rate in `benchmarks/facts_cost_bench.py`. On a SQLite file the batch already
runs in the writer thread; it stays on the process's one writer there (SQLite has one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from queue_server.catalog.loader import Catalog
from queue_server.store.database import Database
from queue_server.store.events import Event
from queue_server.store.reports.runner import branches_behind, catch_up, catch_up_together

if TYPE_CHECKING:
    from queue_server.app import Rigi


log = logging.getLogger(__name__)

GATHER_S = 1.0  # after a wake-up, wait this long so one transaction applies many events
CATCH_UP_S = 30.0  # every branch is caught up at least this often
# The projector thread's own PostgreSQL connections (two for writes, one for reads), beside the
# process's RIGI_DATABASE_CONNECTIONS: it applies one transaction at a time.
PROJECTOR_CONNECTIONS = 3
STOP_TIMEOUT_S = 30.0  # a batch in flight is let finish (it is one transaction) this long


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
            await self._apply_pending()

    async def _apply_pending(self) -> None:
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


class ProjectorThread:
    """A `BackgroundProjector` on an event loop of its own in a thread, over its own `Database`
    on the same URL. The serving loop only hands it the branches that moved."""

    def __init__(self, url: str, catalog: Catalog, connections: int = PROJECTOR_CONNECTIONS):
        self.url = url
        self.catalog = catalog
        self.connections = connections
        self.projector: BackgroundProjector | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        # Branches handed over and not yet taken by the projector's loop: only the first of a
        # run of transactions wakes that loop (a wake-up is a write to its self-pipe; one per
        # transaction was 3.6% of the serving thread's samples under an issue load).
        self._handed: set[str] = set()
        self._handing = threading.Lock()
        self._thread = threading.Thread(target=self._main, name="reports-projector", daemon=True)

    async def start(self) -> None:
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self.projector is None:
            raise RuntimeError("the reports projector's thread did not start")

    async def wake(self, events: Sequence[Event]) -> None:
        """A `Database.listeners` entry of the serving loop: hand the moved branches over."""
        if self._loop is None or self.projector is None:
            return
        with self._handing:
            first = not self._handed
            self._handed.update(event.branch for event in events)
        if first:
            with contextlib.suppress(RuntimeError):  # its loop closed: the server is stopping
                self._loop.call_soon_threadsafe(self._take)

    def _take(self) -> None:
        """On the projector's loop: note every branch handed over since the last time."""
        with self._handing:
            branches, self._handed = self._handed, set()
        if self.projector is not None:
            self.projector.note(branches)

    async def stop(self) -> None:
        if self._loop is not None and self._task is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._task.cancel)
        await asyncio.to_thread(self._thread.join, STOP_TIMEOUT_S)
        if self._thread.is_alive():
            log.error("the reports projector's thread did not stop within %.0f s", STOP_TIMEOUT_S)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except Exception:
            log.exception("the reports projector's thread stopped")
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        database = Database(self.url, self.connections)
        try:
            self.projector = BackgroundProjector(database, self.catalog)
            self._task = asyncio.current_task()
            self._loop = asyncio.get_running_loop()
            self._ready.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self.projector.run()
        finally:
            await database.dispose()


@contextlib.asynccontextmanager
async def reports(rigi: Rigi) -> AsyncIterator[BackgroundProjector]:
    """Lifespan part: run the projector while the server runs (in its own thread on
    PostgreSQL)."""
    if not rigi.database.is_sqlite:
        runner = ProjectorThread(rigi.database.url, rigi.catalog)
        await runner.start()
        assert runner.projector is not None
        rigi.database.listeners.append(runner.wake)
        try:
            yield runner.projector
        finally:
            rigi.database.listeners.remove(runner.wake)
            await runner.stop()
        return
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
