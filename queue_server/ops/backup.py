"""`queue-server backup OUT` and `queue-server restore IN`.

SQLite: the online backup API (`sqlite3.Connection.backup`) copies the database in one step
under one read transaction, so the copy is the state of one instant while the server keeps
writing (WAL lets the writer go on). PostgreSQL: `pg_dump --format=custom`, which reads in one
snapshot; restore with `pg_restore`.

A restored database starts every branch stream on a new epoch: a display that reconnects with
the epoch and seq it held before the restore cannot be replayed events that the restored log
numbers differently; it is sent a snapshot instead (docs/protocol.md).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.engine import URL, make_url

from queue_server.store.database import Database
from queue_server.store.schema import branch_streams

SQLITE_TIMEOUT_S = 10.0
PG_TIMEOUT_S = 3600
FILE_MODE = 0o600  # a backup holds everything the database holds


class BackupRefused(Exception):
    """A backup or restore that would lose or expose data; `code` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Outcome:
    message: str
    command: list[str] | None = None  # the pg_dump / pg_restore recipe, password left out


def backup(database_url: str, out: Path, *, run: bool = True) -> Outcome:
    url = make_url(database_url)
    if out.exists():
        raise BackupRefused("backup_exists", f"{out} exists; name a new file.")
    if url.get_backend_name() == "sqlite":
        return _backup_sqlite(_sqlite_path(url), out)
    command = ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", *_pg_target(url)]
    command += ["--file", str(out)]
    if run:
        _run_pg(command, url)
        out.chmod(FILE_MODE)
        return Outcome(f"backed up {_redacted(url)} to {out}", command)
    return Outcome("run this to back up (PGPASSWORD in the environment):", command)


def restore(database_url: str, source: Path, *, force: bool = False, run: bool = True) -> Outcome:
    url = make_url(database_url)
    if not source.is_file():
        raise BackupRefused("backup_missing", f"{source} is not a file.")
    if url.get_backend_name() == "sqlite":
        return _restore_sqlite(source, _sqlite_path(url), force)
    command = ["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges"]
    command += ["--single-transaction", "--exit-on-error", *_pg_target(url), str(source)]
    if not run:
        return Outcome(
            "run this to restore, then `queue-server restore --new-epochs` on it:", command
        )
    if not force and asyncio.run(_has_streams(database_url)):
        raise BackupRefused(
            "database_in_use",
            f"{_redacted(url)} already holds a Rigi database; stop its servers and pass --force.",
        )
    _run_pg(command, url)
    bumped = asyncio.run(new_epochs(database_url))
    return Outcome(f"restored {source} into {_redacted(url)}; {bumped} branch(es) on a new epoch")


async def new_epochs(database_url: str) -> int:
    """Give every branch stream a new epoch; returns how many branches there are."""
    database = Database(database_url)
    try:
        async with database.write() as conn:
            branches = (await conn.execute(select(branch_streams.c.branch_id))).scalars().all()
            for branch in branches:
                await conn.execute(
                    update(branch_streams)
                    .where(branch_streams.c.branch_id == branch)
                    .values(epoch=uuid.uuid4().hex)
                )
        return len(branches)
    finally:
        await database.dispose()


async def _has_streams(database_url: str) -> bool:
    database = Database(database_url)
    try:
        async with database.read() as conn:
            return bool(
                await conn.run_sync(lambda sync: sync.dialect.has_table(sync, branch_streams.name))
            )
    finally:
        await database.dispose()


# -- SQLite ------------------------------------------------------------------------------------


def _backup_sqlite(database: Path, out: Path) -> Outcome:
    if not database.is_file():
        raise BackupRefused("database_missing", f"There is no database at {database}.")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    _copy_sqlite(database, partial)
    tickets = _count(partial, "tickets")
    os.replace(partial, out)
    return Outcome(f"backed up {database} to {out} ({tickets} tickets)")


def _restore_sqlite(source: Path, database: Path, force: bool) -> Outcome:
    if not _is_rigi_database(source):
        raise BackupRefused("not_a_backup", f"{source} is not a Rigi SQLite backup.")
    if database.exists() and not force:
        raise BackupRefused(
            "database_exists",
            f"{database} exists; restore into a fresh data folder, or stop its server and "
            "pass --force to overwrite it.",
        )
    database.parent.mkdir(parents=True, exist_ok=True)
    restoring = database.with_name(database.name + ".restoring")
    restoring.unlink(missing_ok=True)
    _copy_sqlite(source, restoring)
    with sqlite3.connect(restoring, timeout=SQLITE_TIMEOUT_S) as conn:
        branches = [row[0] for row in conn.execute("SELECT branch_id FROM branch_streams")]
        conn.executemany(
            "UPDATE branch_streams SET epoch = ? WHERE branch_id = ?",
            [(uuid.uuid4().hex, branch) for branch in branches],
        )
    conn.close()
    for stale in ("-wal", "-shm"):  # the old database's log must not replay onto the new one
        database.with_name(database.name + stale).unlink(missing_ok=True)
    os.replace(restoring, database)
    tickets = _count(database, "tickets")
    return Outcome(
        f"restored {source} into {database} ({tickets} tickets); "
        f"{len(branches)} branch(es) on a new epoch"
    )


def _copy_sqlite(source: Path, target: Path) -> None:
    """One consistent copy through the backup API, checked, in one file, readable by us only."""
    target.touch(mode=FILE_MODE, exist_ok=False)
    src = sqlite3.connect(source, timeout=SQLITE_TIMEOUT_S)
    dst = sqlite3.connect(target, timeout=SQLITE_TIMEOUT_S)
    try:
        src.backup(dst)  # pages=-1: all in one step, under one read transaction
        dst.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal beside it
        (verdict,) = dst.execute("PRAGMA quick_check").fetchone()
        if verdict != "ok":
            raise BackupRefused("backup_corrupt", f"the copy failed its check: {verdict}")
    except BaseException:
        dst.close()
        target.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    dst.close()


def _is_rigi_database(path: Path) -> bool:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'branch_streams'"
            ).fetchone()
        conn.close()
    except sqlite3.DatabaseError:
        return False
    return found is not None


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    conn.close()
    return int(count)


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupRefused("database_in_memory", "An in-memory database cannot be backed up.")
    return Path(url.database).resolve()


# -- PostgreSQL --------------------------------------------------------------------------------


def _pg_target(url: URL) -> list[str]:
    """Connection options without the password (it goes in PGPASSWORD, never on a command
    line where `ps` shows it)."""
    options = ["--host", url.host or "127.0.0.1", "--port", str(url.port or 5432)]
    if url.username:
        options += ["--username", url.username]
    return [*options, "--dbname", url.database or "postgres"]


def _run_pg(command: list[str], url: URL) -> None:
    if shutil.which(command[0]) is None:
        raise BackupRefused(
            "tool_missing", f"{command[0]} is not installed (Debian: postgresql-client)."
        )
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=PG_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        raise BackupRefused("tool_failed", f"{command[0]} failed: {result.stderr.strip()[-2000:]}")


def _redacted(url: URL) -> str:
    return url.render_as_string(hide_password=True)
