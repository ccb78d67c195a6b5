"""Real parts for tests: a uvicorn server on a free port, service URLs that skip or fail."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from queue_server.app import create_app
from queue_server.cli import KEEP_ALIVE_S
from queue_server.errors import Conflict
from queue_server.settings import Settings
from tests.migrated import start_migrated
from tests.redis_server import RedisServer

TEST_CATALOG = Path(__file__).resolve().parent / "fixtures" / "catalog"
POSTGRES_ENV = "RIGI_TEST_DATABASE_URL"
REDIS_ENV = "RIGI_TEST_REDIS_URL"


def need_service(env: str, what: str) -> str:
    """The URL of a service a test needs: skip without it, but fail in CI."""
    url = os.environ.get(env)
    if url:
        return url
    message = f"{what} not configured: set {env} (CI sets it in .ci/run)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def test_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test server: the test organisation, and issue limits high enough for
    load tests (the rate-limit tests set their own)."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "config": TEST_CATALOG,
        "issue_rate_device": "100000/minute",
        "issue_rate_address": "100000/minute",
    }
    return Settings(**(values | overrides))


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper: pytest must not collect it


def in_the_hall(secret: str, branch: str = "testhall") -> dict[str, str]:
    """The header of a phone that scanned a lobby screen of `branch`, for a server in another
    process that signs with `secret` (its RIGI_BOOKING_KEY, else RIGI_SECRET_KEY, else the
    `secret_key` file in its data folder) and rotates at the default period."""
    from queue_server.access.hall_pass import HallPasses
    from queue_server.settings import Settings as Defaults
    from queue_server.store.queue import utc_now

    minutes = Defaults.model_fields["hall_pass_minutes"].default
    return {"X-Rigi-Hall-Pass": HallPasses(secret, minutes, utc_now).current(branch).token}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reset_postgres(url: str) -> None:
    """Start from an empty schema so every test sees only its own data."""
    import asyncpg

    async def _reset() -> None:
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
        except (OSError, asyncpg.PostgresError) as exc:
            message = f"PostgreSQL at {url} is unreachable: {exc}"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        try:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        finally:
            await conn.close()

    asyncio.run(_reset())


@contextlib.contextmanager
def own_redis(folder: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own; skips without `redis-server` on a laptop, fails in CI."""
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = RedisServer(folder).start()
    try:
        yield server
    finally:
        server.stop()


PASSWORD = "correct horse battery staple"
PEOPLE = ("admin", "manager", "operator")
DEVICES = ("kiosk", "display", "printer")


class LiveServer:
    """A real uvicorn server in a thread of its own, on a free loopback port.

    `client(role)` gives an httpx client that acts as that role at `branch`: people sign in
    through the API (cookie + CSRF header), devices carry a token made by the server."""

    def __init__(self, settings: Settings, **app_options: object) -> None:
        self.settings = settings
        self.port = free_port()
        self.app = create_app(settings, **app_options)  # type: ignore[arg-type]
        self.loop: asyncio.AbstractEventLoop | None = None
        self._tokens: dict[tuple[str, str, str], str] = {}
        self._users: set[str] = set()

        @contextlib.asynccontextmanager
        async def _capture_loop(rigi: object) -> AsyncIterator[None]:
            self.loop = asyncio.get_running_loop()
            yield

        self.app.state.extensions.append(_capture_loop)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            ws_per_message_deflate=False,
            lifespan="on",
            # as `queue-server serve`: with uvicorn's 5 s, a test's client idle a few seconds
            # could send on a connection the server was closing ("disconnected without a response")
            timeout_keep_alive=KEEP_ALIVE_S,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        start_migrated(self.settings.resolved_database_url)
        self.thread.start()
        for _ in range(400):
            if self.server.started or not self.thread.is_alive():
                break
            threading.Event().wait(0.025)
        if not self.server.started:
            raise RuntimeError("the test server did not start")
        return self

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on the server's own loop (its engine lives there) and wait."""
        assert self.loop is not None, "server not started"
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    @property
    def rigi(self) -> Any:
        return self.app.state.rigi

    def user(self, role: str, branch: str = "testhall", name: str | None = None) -> str:
        """A person of `role` at `branch` (created once); returns the username."""
        from queue_server.access.principal import Role

        username = name or f"{role}-{branch}"
        if username not in self._users:
            with contextlib.suppress(Conflict):  # made by an earlier server on this database
                self.run(
                    self.rigi.accounts.create_user(
                        username, PASSWORD, Role(role), None if role == "admin" else branch,
                        by="test",
                    )
                )  # fmt: skip
            self._users.add(username)
        return username

    def device_token(self, role: str, branch: str = "testhall", name: str = "") -> str:
        """A device token of `role` at `branch` (one per name)."""
        from queue_server.access.principal import Role

        key = (role, branch, name)
        if key not in self._tokens:
            _, token, _ = self.run(
                self.rigi.accounts.create_device(branch, Role(role), name or role, by="test")
            )
            self._tokens[key] = token
        return self._tokens[key]

    def hall_pass(self, branch: str = "testhall") -> str:
        """The pass the lobby screens of `branch` show now (access/hall_pass.py)."""
        return str(self.rigi.hall_passes.current(branch).token)

    @contextlib.asynccontextmanager
    async def client(
        self,
        role: str | None = None,
        branch: str = "testhall",
        *,
        hall_pass: bool = True,
        **options: Any,
    ) -> AsyncIterator[httpx.AsyncClient]:
        """An HTTP client acting as `role`. None: an anonymous phone, in the hall of `branch`
        (it sends the pass its screens show) unless `hall_pass` is False."""
        options.setdefault("timeout", 30)
        async with httpx.AsyncClient(base_url=self.url, **options) as client:
            if role is None and hall_pass:
                client.headers["X-Rigi-Hall-Pass"] = self.hall_pass(branch)
            if role in DEVICES:
                client.headers["Authorization"] = f"Bearer {self.device_token(role, branch)}"
            elif role in PEOPLE:
                username = self.user(role, branch)
                response = await client.post(
                    "/api/v1/session", json={"username": username, "password": PASSWORD}
                )
                response.raise_for_status()
                client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
            yield client

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


async def manager_and_display(database_url: str, manager: str, branch: str) -> str:
    """A manager to operate and a display token (returned), made in a shared database for
    servers that run as separate processes."""
    from queue_server.access.accounts import Accounts
    from queue_server.access.principal import Role
    from queue_server.store.database import Database
    from queue_server.store.queue import utc_now

    database = Database(database_url)
    try:
        accounts = Accounts(database, utc_now)
        await accounts.create_user(manager, PASSWORD, Role.MANAGER, branch, by="test")
        _, token, _ = await accounts.create_device(branch, Role.DISPLAY, "lobby", by="test")
        return token
    finally:
        await database.dispose()
