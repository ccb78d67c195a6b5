"""Shared fixtures: real servers on free ports, real SQLite files, the machine's PostgreSQL.

A test that needs PostgreSQL or Redis skips on a laptop without them, and fails in CI (where
`CI` is set and `.ci/run` points RIGI_TEST_DATABASE_URL / RIGI_TEST_REDIS_URL at them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from queue_server.settings import Settings
from tests.databases import DATABASES, database_for
from tests.hashing import hash_cheaply
from tests.ordering import longest_first
from tests.support import (
    TEST_CATALOG,
    LiveServer,
    free_port,
    test_settings,
)
from tests.workers import configure_worker, make_scheduler


def pytest_configure(config: pytest.Config) -> None:
    """On several workers (`make test`), each gets its own database, Redis database and bus
    channel prefix before any test module is imported, and a test that overruns its timeout
    ends its worker instead of hanging it (tests/workers.py). Passwords are hashed at argon2's
    cheapest cost in this process (tests/hashing.py)."""
    configure_worker(config)
    hash_cheaply()


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent with -p no:xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """After a worker ended by a timeout, the run goes on without running that test again, and
    ends (tests/workers.py's `LoadFileAfterCrash`; xdist's own scheduler hung there)."""
    return make_scheduler(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest files first, so that neither worker is left running long files alone at
    the end (tests/ordering.py; `make test` keeps this order with --no-loadscope-reorder)."""
    longest_first(items)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the wait forecast's runs once, before any test and outside every test's
    timeout: a fresh checkout has no numba cache yet, and compiling (tens of seconds, holding
    the interpreter much of the time) would otherwise fall in whichever test first starts a
    server, under its feet. With the cache it is a load of about a second."""
    from queue_server.domain.forecast import warm_up

    warm_up()


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each API test runs on a SQLite file and on the machine's PostgreSQL."""
    return database_for(request.param, tmp_path)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return test_settings(database_url, tmp_path)


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    server = LiveServer(settings).start()
    yield server
    server.stop()


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A server on SQLite only, whose sign-in limit does not stop tests that sign in often."""
    settings = test_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}", tmp_path, login_rate="100000/minute"
    )
    server = LiveServer(settings).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium for the page tests (skips, or fails in CI, without it)."""
    from tests.pages.browser import launch

    yield from launch()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """The test hall on a SQLite file, serving the pages too (a module may define its own)."""
    from tests.pages.browser import with_pages

    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}",
        data_dir=tmp_path,
        config=TEST_CATALOG,
    )
    live = with_pages(LiveServer(settings)).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where page tests save screenshots: RIGI_SCREENSHOTS (docs/screenshots for the docs), or a
    temporary folder."""
    wanted = os.environ.get("RIGI_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        return Path(wanted)
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def mailbox() -> Iterator[tuple[Any, int]]:
    """A real SMTP server (aiosmtpd) on a free port: its mailbox and port."""
    from aiosmtpd.controller import Controller

    from tests.notify.helpers import Mailbox

    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()
