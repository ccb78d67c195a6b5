"""Bring a database to the newest schema with Alembic, from code (no alembic.ini to find)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from queue_server.store.database import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def migrate(database: Database) -> None:
    """Upgrade to head inside the running loop, in one transaction. SQLite on the app's own
    engine; PostgreSQL on a connection of its own without the app's per-statement bound
    (`POSTGRES_COMMAND_TIMEOUT_S`, 10 s): a migration over a country's year fills tables and
    builds indexes for minutes (0023's covering indexes over 7.5 M visit facts), and a bound
    meant for a request would leave such a database unmigratable."""

    def _upgrade(connection: Connection) -> None:
        config = alembic_config(database.url)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    if database.is_sqlite:
        async with database.engine.begin() as conn:
            await conn.run_sync(_upgrade)
        return
    engine = create_async_engine(database.url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade)
    finally:
        await engine.dispose()


def migrate_blocking(url: str) -> None:
    """For the `migrate` command: run the upgrade in a fresh loop."""

    async def _run() -> None:
        database = Database(url)
        try:
            await migrate(database)
        finally:
            await database.dispose()

    asyncio.run(_run())
