"""A test server's database starts at the newest schema, made by the real migrations once per
process and copied, instead of being migrated from empty at every start.

Every test starts its server on a new SQLite file or an emptied PostgreSQL schema, and the
server migrated it through every migration at start: about 0.2 s of CPU a start on SQLite (a
quarter of a test server's start) and a few hundred round trips on PostgreSQL (seconds of wall
on a loaded machine). Now, before a `LiveServer` starts:

- a SQLite file that does not exist yet is a copy of one the migrations made once;
- a PostgreSQL schema that holds no table gets the schema the migrations made once in a scratch
  database beside it (`<name>_migrated`), as `pg_dump` writes it, in one round trip.

The server still runs the migrations at start (they find the newest schema); a database that
already holds something is left as it is, and the tests of the migrations themselves migrate
their own databases.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url

from queue_server.store.migrate import migrate_blocking

DUMP_TIMEOUT_S = 60
_made: dict[str, object] = {}  # this process's migrated SQLite file, and PostgreSQL dumps
_making = threading.Lock()


def start_migrated(database_url: str) -> None:
    """Bring a test server's new, empty database to the newest schema by copying (above)."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite" and url.database not in (None, "", ":memory:"):
        target = Path(str(url.database))
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(str(_once("sqlite", _migrated_sqlite_file)), target)
    elif backend == "postgresql":
        dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
        schema = _once(dsn, lambda: _in_thread(_migrated_schema_sql, dsn))
        _in_thread(_fill_if_empty, dsn, str(schema))


def _once(key: str, make: Callable[[], object]) -> object:
    with _making:
        if key not in _made:
            _made[key] = make()
        return _made[key]


def _in_thread(function: Callable[..., object], *args: object) -> object:
    """Run `function` in a thread of its own (a caller may be inside an event loop)."""
    with ThreadPoolExecutor(1, thread_name_prefix="migrated") as thread:
        return thread.submit(function, *args).result()


def _migrated_sqlite_file() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="rigi-migrated-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "rigi.sqlite3"
    _in_thread(migrate_blocking, f"sqlite+aiosqlite:///{path}")
    return path


def _migrated_schema_sql(dsn: str) -> str:
    """The newest schema (and Alembic's version row) as SQL: migrate a scratch database made
    anew beside `dsn`'s, and dump it."""
    import asyncpg

    parts = urlsplit(dsn)
    scratch_name = f"{parts.path.lstrip('/')}_migrated"
    scratch = urlunsplit(parts._replace(path=f"/{scratch_name}"))

    async def _recreate() -> None:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{scratch_name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{scratch_name}"')
        finally:
            await conn.close()

    asyncio.run(_recreate())
    migrate_blocking(scratch.replace("postgresql://", "postgresql+asyncpg://", 1))
    dump = subprocess.run(
        ["pg_dump", "--no-owner", "--no-privileges", "--inserts", "--dbname", scratch],
        capture_output=True,
        text=True,
        check=True,
        timeout=DUMP_TIMEOUT_S,
    )
    # psql's own commands (`\restrict` …) are not SQL: a connection executes the rest
    return "".join(
        line for line in dump.stdout.splitlines(keepends=True) if not line.startswith("\\")
    )


def _fill_if_empty(dsn: str, schema_sql: str) -> None:
    import asyncpg

    async def _fill() -> None:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            if not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'public')"
            ):
                await conn.execute(schema_sql)
        finally:
            await conn.close()

    asyncio.run(_fill())
