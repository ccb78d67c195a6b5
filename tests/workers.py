"""Each pytest-xdist worker on services of its own, so `make test` can run on two workers.

Tests find PostgreSQL and Redis through RIGI_TEST_DATABASE_URL and RIGI_TEST_REDIS_URL, and wipe
what they find there (`reset_postgres`, `flushdb`). Two workers on the same database would wipe
each other's data mid-test, so before a worker collects anything it points those variables at
its own: database `<name>_gw0` beside the configured one (created here, through the configured
one, if missing), Redis database `<n> + 0`, `<n> + 1`, …, and a bus channel prefix of its own
(Redis pub/sub ignores the database number). Every fixture and test that reads the variables,
and every server process a test starts with the test's environment, then follows without a
change. Without xdist (a serial run, `-p no:xdist` or `-n 0`) nothing is rewritten.

A test that overruns its timeout ends its worker; `LoadFileAfterCrash` (below) lets the run go
on from there, which xdist's own file scheduler does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from xdist.scheduler import LoadFileScheduling

from tests.reaper import end_children_with_this_process

WORKER_ENV = "PYTEST_XDIST_WORKER"  # set by pytest-xdist in each worker: "gw0", "gw1", …
CHANNEL_PREFIX_ENV = "RIGI_BUS_CHANNEL_PREFIX"  # read by Settings, in-process and in children
DEFAULT_CHANNEL_PREFIX = "rigi:bus:"  # Settings' default
REDIS_DATABASES = 16  # redis-server's default `databases`
CONNECT_TIMEOUT_S = 5


def worker_name() -> str | None:
    """This process's xdist worker ("gw0", …), or None in a serial run or the controller."""
    return os.environ.get(WORKER_ENV) or None


def worker_postgres_url(url: str, worker: str) -> str:
    """The worker's own database beside the configured one: `…/test` → `…/test_gw0`."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "postgres"
    return urlunsplit(parts._replace(path=f"/{name}_{worker}"))


def worker_redis_url(url: str, index: int) -> str:
    """The worker's own Redis database: the configured number plus the worker's index, counted
    down instead when that would pass the last database (CI's 15 gives 15, 14)."""
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    number = base + index if base + index < REDIS_DATABASES else base - index
    return urlunsplit(parts._replace(path=f"/{number}"))


def create_database(maintenance_url: str, url: str) -> None:
    """Create `url`'s database through the configured one when it is missing. An unreachable
    server is left to the tests that need it: they skip, or fail in CI, with the reason."""
    import asyncpg

    name = urlsplit(url).path.lstrip("/")

    async def _create() -> None:
        dsn = maintenance_url.replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
        asyncio.run(_create())


def configure_worker(config: pytest.Config) -> None:
    """Isolate this worker (below), and end a test that overruns its timeout by ending the
    worker. pytest-timeout's default raises in the main thread, which an async test's event loop
    can swallow (when a plain callback is running): that test, and the worker with it, then hang
    for good, and the run never ends. Under xdist the ended worker is replaced, the test is
    reported failed and the run goes on. (A serial run keeps the default: there ending the
    process would end the whole run.)"""
    if worker_name() is None:
        return
    isolate_worker()
    end_children_with_this_process()  # its tests' servers end with it (tests/reaper.py)
    if getattr(config.option, "timeout_method", "") is None:  # not chosen on the command line
        config.option.timeout_method = "thread"


def isolate_worker() -> None:
    """Point this worker's tests at its own database, Redis database and channel prefix."""
    from tests.support import POSTGRES_ENV, REDIS_ENV  # here: it imports the whole server

    worker = worker_name()
    if worker is None:
        return
    index = int(worker.removeprefix("gw") or 0)
    postgres = os.environ.get(POSTGRES_ENV)
    if postgres:
        own = worker_postgres_url(postgres, worker)
        create_database(postgres, own)
        os.environ[POSTGRES_ENV] = own
    redis = os.environ.get(REDIS_ENV)
    if redis:
        os.environ[REDIS_ENV] = worker_redis_url(redis, index)
    prefix = os.environ.get(CHANNEL_PREFIX_ENV, DEFAULT_CHANNEL_PREFIX)
    os.environ[CHANNEL_PREFIX_ENV] = f"{prefix}{worker}:"


class LoadFileAfterCrash(LoadFileScheduling):
    """xdist's file scheduler (`--dist loadfile`, 3.8), except when a worker crashes (a timeout
    ended it).

    xdist put back on the queue every file the dead worker had ever been given, the test it died
    in still pending among them. The replacement ran that test again (and died again, until
    `--max-worker-restart` was spent and the rest of its file never ran), and a finished file went
    out as an empty batch that no worker ever reports done, so the run waited for it for good
    (pytest-xdist issues #1323 and #1378, pull #1371). Here the test it died in is reported failed
    once (by xdist) and not run again, only files with tests left go back (first in the queue),
    a worker is always given a next test while any are left (a worker runs a test only once it
    holds the next one or is told to stop: #1327), and a replacement is given work only once it
    has collected (two crashes close together raised a KeyError: #1189).
    """

    def remove_node(self, node: Any) -> str | None:
        workload: dict[str, dict[str, bool]] = self.assigned_work.pop(node)
        left = {scope: unit for scope, unit in workload.items() if not all(unit.values())}
        if not left:
            return None  # a worker stopping at the end, or one that had finished its work
        crashed = next(test for unit in left.values() for test, done in unit.items() if not done)
        left[self._split_scope(crashed)][crashed] = True
        for scope, unit in left.items():
            if not all(unit.values()):
                self.workqueue[scope] = unit
                self.workqueue.move_to_end(scope, last=False)
        for other in self.assigned_work:
            self._reschedule(other)
        return crashed

    def _reschedule(self, node: Any) -> None:
        if node not in self.registered_collections:
            return  # a replacement still collecting: given work once it has (`schedule`)
        super()._reschedule(node)
        while (
            not node.shutting_down
            and self.workqueue
            and self._pending_of(self.assigned_work[node]) < 2
        ):
            self._assign_work_unit(node)


def make_scheduler(config: pytest.Config, log: Any) -> LoadFileAfterCrash | None:
    """`--dist loadfile` (`make test`) gets the scheduler above; other modes keep xdist's."""
    return LoadFileAfterCrash(config, log) if config.getvalue("dist") == "loadfile" else None
