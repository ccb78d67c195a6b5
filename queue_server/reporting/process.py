"""The reports projector in a process of its own (PostgreSQL): its own core and its own
interpreter lock, so that applying events no longer takes turns with requests.

In a thread beside the serving loop (the previous design) it still shared the lock:
`benchmarks/facts_cost_bench.py` measured about half the issue rate lost at a load of 11–18.

The server starts `python -m queue_server.reporting.process` and writes the branches that moved
to its standard input, a line per loop turn at most (`ProjectorProcess.wake`); the child applies
them exactly as the thread did (`BackgroundProjector`: one transaction per batch, the branch's
report cursor locked with SKIP LOCKED, moved in the same transaction). So an event is applied
once whoever applies it, a child that dies loses nothing (the next one, or another server's,
starts from the cursors, and catches every branch up at start and every 30 s), and several
servers' children share the work. The child ends when its input closes: the server stopped,
or died.

The child follows the organisation edits through the database (`FollowingCatalog`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from queue_server.catalog.organisation import catalog_from_document
from queue_server.catalog.snapshot import Catalog
from queue_server.ops.logs import configure_logging
from queue_server.store.database import Database
from queue_server.store.events import Event
from queue_server.store.organisation import newest, newest_version

if TYPE_CHECKING:
    from queue_server.reporting.background import BackgroundProjector

log = logging.getLogger(__name__)

URL_VARIABLE = "RIGI_PROJECTOR_DATABASE_URL"  # not on the command line: it may hold a password
READY = b"ready\n"
START_TIMEOUT_S = 60.0  # importing and connecting, on a loaded machine
STOP_TIMEOUT_S = 30.0  # a batch in flight is let finish (it is one transaction) this long
RESTART_S = 1.0  # after the child died unasked, start another this much later
CONNECTIONS = 3  # the child's own: two for writes, one for reads (one transaction at a time)


class ProjectorProcess:
    """The server's side: starts the child, hands it the branches that moved, starts another
    if it dies, and stops it with the server."""

    command: tuple[str, ...] = (sys.executable, "-m", "queue_server.reporting.process")

    def __init__(self, url: str) -> None:
        self.url = url
        self._child: asyncio.subprocess.Process | None = None
        self._ready = False  # the running child said READY (it may be applying a batch)
        self._handed: set[str] = set()
        self._flushing = False
        self._stopping = False
        self._watch: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    @property
    def ready(self) -> bool:
        """The running child has said it is ready (imported, connected)."""
        return self._ready

    async def start(self) -> None:
        """Start the child and return: the server serves while it imports and connects (a
        second or more: every PostgreSQL server start waited for it). Nothing is lost
        meanwhile: the branches that move are written to its input, and it catches every
        branch up from the cursors when it starts."""
        self._child = await self._launch()
        self._watch = asyncio.create_task(self._supervise(), name="reports-projector-watch")

    async def wake(self, events: Sequence[Event]) -> None:
        """A `Database.listeners` entry: note the moved branches; they are written once this
        loop turn ends, one line for all the transactions committed in it."""
        self._handed.update(event.branch for event in events)
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flushing = False
        branches, self._handed = self._handed, set()
        child = self._child
        if not branches or child is None or child.stdin is None or child.stdin.is_closing():
            return  # no child now: the next one catches every branch up at start
        child.stdin.write((" ".join(sorted(branches)) + "\n").encode())

    async def _launch(self) -> asyncio.subprocess.Process:
        self._ready = False
        return await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=os.environ | {URL_VARIABLE: self.url},
        )

    async def _supervise(self) -> None:
        """Wait for each child's READY (one that does not say it in time is killed), and
        start another when one dies unasked (nothing is lost: see the module)."""
        while True:
            child = self._child
            assert child is not None and child.stdout is not None
            try:
                self._ready = (
                    await asyncio.wait_for(child.stdout.readline(), START_TIMEOUT_S) == READY
                )
            except TimeoutError:
                log.error("the reports projector's process did not start; killing it")
                _kill(child)
            code = await child.wait()  # after READY, or its output ended: it died
            if self._stopping:
                return
            log.error("the reports projector's process ended (code %s); starting another", code)
            await asyncio.sleep(RESTART_S)
            try:
                self._child = await self._launch()
            except Exception:  # the next attempt is RESTART_S later
                log.exception("the reports projector's process did not start again")

    async def stop(self) -> None:
        """A child that has not said READY yet is still importing or connecting: it is
        killed, not waited for (a server stopped within a second of its start waited for the
        whole start). Killing loses nothing even in a first batch (one transaction, the
        cursors in it). A ready one is asked to end (its input closed) and its batch in
        flight commits first."""
        self._stopping = True
        child = self._child
        if child is not None and child.returncode is None:
            if not self._ready:
                _kill(child)
            elif child.stdin is not None:
                child.stdin.close()  # the child finishes its batch and ends
            try:
                await asyncio.wait_for(child.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                log.error("the reports projector's process did not stop; killing it")
                _kill(child)
                await child.wait()
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)


def _kill(child: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        child.kill()


class FollowingCatalog:
    """The child's catalog, read again before a batch when a newer organisation version is
    stored (one small query a batch), so that the events after an edit are applied with the
    edited services and branches, as the thread did with the server's swapped catalog."""

    def __init__(self, database: Database, catalog: Catalog) -> None:
        self.database = database
        self.catalog = catalog

    async def follow(self) -> None:
        if await self.database.reading(newest_version) <= self.catalog.version:
            return
        stored = await self.database.reading(newest)
        if stored is not None and stored.version > self.catalog.version:
            self.catalog.swap(catalog_from_document(stored.document, version=stored.version))
            log.info("reports: organisation version %d", stored.version)


async def _child_main() -> None:
    from queue_server.reporting.background import BackgroundProjector  # it imports this module

    database = Database(os.environ[URL_VARIABLE], CONNECTIONS)
    try:
        stored = await database.reading(newest)
        if stored is None:
            raise RuntimeError("no organisation is stored: the server seeds it before this")
        catalog = FollowingCatalog(
            database, catalog_from_document(stored.document, version=stored.version)
        )
        projector = BackgroundProjector(database, catalog.catalog, before_batch=catalog.follow)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        running = asyncio.create_task(projector.run(), name="reports-projector")
        reading = asyncio.create_task(_hand_over(reader, projector), name="reports-input")
        sys.stdout.buffer.write(READY)
        sys.stdout.flush()
        await asyncio.wait({running, reading}, return_when=asyncio.FIRST_COMPLETED)
        if running.done():  # it never returns: it failed, and the server starts another child
            reading.cancel()
            log.error("the reports projector stopped", exc_info=running.exception())
            sys.exit(1)
        await projector.stop_between_batches(running)  # the batch in flight commits first
    finally:
        await database.dispose()


async def _hand_over(reader: asyncio.StreamReader, projector: BackgroundProjector) -> None:
    """Note each line's branches until the server closes the input."""
    while line := await reader.readline():
        projector.note(set(line.decode().split()))


if __name__ == "__main__":
    # The server's own handler (JSON or text, secrets scrubbed), in the format it was given.
    configure_logging("warning", os.environ.get("RIGI_LOG_FORMAT", "text"))
    asyncio.run(_child_main())
