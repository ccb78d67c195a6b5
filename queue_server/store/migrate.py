"""Bring a database to the newest schema with Alembic, from code (no alembic.ini to find)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from queue_server.store.database import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def migrate(database: Database) -> None:
    """Upgrade to head inside the running loop, on the app's own engine and transaction."""

    def _upgrade(connection: Connection) -> None:
        config = alembic_config(database.url)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with database.engine.begin() as conn:
        await conn.run_sync(_upgrade)


def migrate_blocking(url: str) -> None:
    """For the `migrate` command: run the upgrade in a fresh loop."""

    async def _run() -> None:
        database = Database(url)
        try:
            await migrate(database)
        finally:
            await database.dispose()

    asyncio.run(_run())
