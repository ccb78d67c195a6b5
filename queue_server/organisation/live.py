"""The running organisation of one process, and how every process learns of an edit.

At start the newest stored version is served; a fresh install is seeded from the shipped
`config/`, and a database that still holds only an untouched seed follows `config/` when the
files change (nobody's edit is lost, and a developer's new service appears). Once anybody has
edited or imported, the database wins over the files.

An edit is one transaction (version, audit row, one `organisation.changed` event per touched
branch). After its commit this process swaps its `Catalog` before any feed hears of the edit,
then says the new version on the bus's `organisation` channel. Other processes swap when that
message arrives, when a branch event of a newer version reaches their hub first, or within
`POLL_S` in any case: the database is the truth, the bus only tells (DESIGN.md, decision 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from queue_server.bus.base import Bus, BusUnavailable, told_or_polled
from queue_server.catalog.loader import load_catalog
from queue_server.catalog.organisation import (
    catalog_from_document,
    same,
    to_document,
    touched_branches,
)
from queue_server.catalog.snapshot import Catalog
from queue_server.errors import Conflict
from queue_server.store.database import Database
from queue_server.store.events import Event
from queue_server.store.organisation import (
    CHANGED,
    canonical,
    newest,
    newest_version,
    store_version,
)
from queue_server.store.queue import Clock

if TYPE_CHECKING:
    from queue_server.app import Rigi

log = logging.getLogger(__name__)

CHANNEL = "organisation"
POLL_S = 15.0
WRITE_ATTEMPTS = 3  # two processes editing at once: the loser redoes its edit on the newer one
Change = Callable[[dict[str, Any]], dict[str, Any]]


async def load_organisation(database: Database, config: Path, clock: Clock) -> Catalog:
    """The organisation to serve at start: the newest stored version, seeded from `config`
    when there is none, or when there is only an untouched seed of different files."""
    seed = to_document(load_catalog(config))

    def body(conn: Connection) -> tuple[int, dict[str, Any]]:
        stored = newest(conn)
        if stored is not None and (stored.source != "seed" or same(stored.document, seed)):
            return stored.version, stored.document
        summary = f"seeded from {config.name}/"
        version = store_version(
            conn, seed, at=clock(), source="seed", actor=None, summary=summary, branches=()
        )
        log.info("organisation version %d %s", version, summary)
        return version, seed

    version, document = await _retrying(database, body)
    return catalog_from_document(document, version=version)


async def _retrying(database: Database, body: Callable[[Connection], Any]) -> Any:
    """Run a versioned write, again when another process took the same version number."""
    for attempt in range(WRITE_ATTEMPTS):
        try:
            return await database.transaction(body)
        except IntegrityError:
            if attempt == WRITE_ATTEMPTS - 1:
                raise Conflict(
                    "Somebody else changed the organisation at the same moment; try again.",
                    code="organisation_busy",
                ) from None
    raise AssertionError("unreachable")  # pragma: no cover


class Organisation:
    """This process's live organisation: edits it, and follows other processes' edits."""

    def __init__(self, database: Database, catalog: Catalog, clock: Clock) -> None:
        self.database = database
        self.catalog = catalog
        self.clock = clock
        self.bus: Bus | None = None
        self._built: dict[int, Catalog] = {}  # by the writer thread, swapped in on commit
        self._refreshing = asyncio.Lock()

    async def edit(
        self,
        change: Change,
        *,
        actor: str,
        summary: str,
        audit_branch: str | None = None,
        source: str = "edit",
    ) -> int:
        """Apply `change` to the newest document and store the result as one new version (or
        nothing when it changes nothing). Refused with OrganisationInvalid, naming the fields,
        when the loader's rules refuse the result. Returns the version now served."""

        def body(conn: Connection) -> int:
            stored = newest(conn)
            assert stored is not None, "the organisation is seeded at start"
            document = change(stored.document)  # a fresh parse: ours to change
            if canonical(document) == stored.text or same(document, json.loads(stored.text)):
                return stored.version
            after = catalog_from_document(document, version=stored.version + 1)
            before = self.catalog if self.catalog.version == stored.version else None
            touched = touched_branches(before, after)
            self._built[after.version] = after
            attempted.append(after.version)
            return store_version(
                conn, document, at=self.clock(), source=source, actor=actor,
                summary=summary, branches=touched, audit_branch=audit_branch,
            )  # fmt: skip

        attempted: list[int] = []
        try:
            version: int = await _retrying(self.database, body)
        except BaseException:
            for number in attempted:
                self._built.pop(number, None)
            raise
        # A version number another process took first must never be swapped in as ours.
        for number in attempted[:-1]:
            self._built.pop(number, None)
        await self._catch_up(version)
        await self._tell(version)
        return version

    async def on_committed(self, events: Sequence[Event]) -> None:
        """Database listener, first in line: swap before the hub tells any feed."""
        for event in events:
            if event.kind == CHANGED:
                await self._catch_up(int(event.data["version"]))
                return

    async def on_bus_event(self, event: Event) -> None:
        """Hub hook for events from other processes: same, before they reach a feed here."""
        if event.kind == CHANGED:
            try:
                await self._catch_up(int(event.data["version"]))
            except Exception:  # the feeds go on; the poll swaps a little later
                log.exception("swapping to organisation version %s failed", event.data)

    async def _catch_up(self, version: int) -> None:
        """Serve `version` (or newer) from now on."""
        if version <= self.catalog.version:
            return
        built = self._built.pop(version, None)
        if built is not None:
            self._swap(built)
            return
        await self.refresh()

    async def refresh(self) -> None:
        """Read the newest stored version and serve it, if newer than what is served."""
        async with self._refreshing:
            stored = await self.database.reading(newest)
            if stored is None or stored.version <= self.catalog.version:
                return
            catalog = await asyncio.to_thread(
                catalog_from_document, stored.document, version=stored.version
            )
            self._swap(catalog)

    def _swap(self, catalog: Catalog) -> None:
        if catalog.version > self.catalog.version:
            self.catalog.swap(catalog)
            self._built = {v: c for v, c in self._built.items() if v > catalog.version}
            log.info("serving organisation version %d", catalog.version)

    async def _tell(self, version: int) -> None:
        if self.bus is None:
            return
        try:
            await self.bus.publish(CHANNEL, str(version))
        except BusUnavailable:
            log.warning("bus unavailable: other processes see version %d within a poll", version)

    async def follow(self, bus: Bus, poll_s: float = POLL_S) -> None:
        """Swap on other processes' edits: told on the bus, or found by polling the database."""
        self.bus = bus
        async for item in told_or_polled(bus, CHANNEL, poll_s):
            try:
                if item is None:
                    if await self.database.reading(newest_version) > self.catalog.version:
                        await self.refresh()
                else:
                    await self._catch_up(int(item.data))
            except Exception:
                log.exception("following the organisation failed; trying again later")


def _report_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error(
            "following other processes' organisation edits stopped; they are seen at restart",
            exc_info=task.exception(),
        )


@contextlib.asynccontextmanager
async def organisation_part(rigi: Rigi) -> AsyncIterator[None]:
    """Lifespan part, after realtime: follow the bus and hook into the hub."""
    organisation = rigi.organisation
    rigi.database.listeners.insert(0, organisation.on_committed)
    task = None
    if rigi.hub is not None:
        rigi.hub.before_forward.append(organisation.on_bus_event)
        task = asyncio.create_task(organisation.follow(rigi.hub.bus), name="organisation")
        task.add_done_callback(_report_end)
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        rigi.database.listeners.remove(organisation.on_committed)
