"""`queue-server config export DIR` and `queue-server config import DIR`.

Export writes the organisation the database serves as configuration files; import checks a
directory with the rules of `check-config` and stores it as the next version, which running
servers take up at once when they share a Redis bus with this command, else within a poll.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from queue_server.bus import create_bus
from queue_server.catalog.loader import load_catalog
from queue_server.catalog.organisation import to_document, write_directory
from queue_server.errors import ConfigError
from queue_server.organisation.live import CHANNEL, Organisation, load_organisation
from queue_server.settings import Settings
from queue_server.store.database import Database
from queue_server.store.migrate import migrate
from queue_server.store.queue import utc_now

IMPORT_ACTOR = "admin:command-line"
BUS_TIMEOUT_S = 5.0


def export_directory(settings: Settings, directory: Path) -> int:
    """Write the served organisation into `directory` (new or empty); the exit status."""

    async def run() -> int:
        database = Database(settings.resolved_database_url)
        try:
            await migrate(database)
            catalog = await load_organisation(database, settings.config, utc_now)
        finally:
            await database.dispose()
        written = write_directory(to_document(catalog), directory)
        print(f"organisation version {catalog.version}: {len(written)} files in {directory}")
        return 0

    return _reporting(run)


def import_directory(settings: Settings, directory: Path) -> int:
    """Check `directory` like check-config and store it as the next version; the exit status."""

    async def run() -> int:
        document = to_document(load_catalog(directory))
        database = Database(settings.resolved_database_url)
        try:
            await migrate(database)
            catalog = await load_organisation(database, settings.config, utc_now)
            organisation = Organisation(database, catalog, utc_now)
            before = catalog.version
            version = await organisation.edit(
                lambda _: document, actor=IMPORT_ACTOR, summary=f"imported {directory.name}/",
                source="import",
            )  # fmt: skip
        finally:
            await database.dispose()
        if version == before:
            print(f"{directory}: the same as version {version}; nothing changed")
            return 0
        await _tell(settings, version)
        print(f"{directory}: imported as organisation version {version}")
        return 0

    return _reporting(run)


async def _tell(settings: Settings, version: int) -> None:
    """Say the new version on the bus, for servers that share it (best effort)."""
    bus = create_bus(settings.bus_url, channel_prefix=settings.bus_channel_prefix)
    try:
        async with asyncio.timeout(BUS_TIMEOUT_S):
            await bus.connect()
            await bus.publish(CHANNEL, str(version))
    except Exception as exc:  # the servers poll the database anyway
        print(f"(servers not told on the bus: {exc!r}; they see it within a poll)")
    finally:
        await bus.disconnect()


def _reporting(run: Callable[[], Coroutine[Any, Any, int]]) -> int:
    try:
        return asyncio.run(run())
    except ConfigError as error:
        print(str(error), file=sys.stderr)
        return 1
