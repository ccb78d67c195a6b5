"""Real parts for tests: a uvicorn server on a free port, service URLs that skip or fail."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from pathlib import Path

import pytest
import uvicorn

from queue_server.app import create_app
from queue_server.settings import Settings

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


class LiveServer:
    """A real uvicorn server in a thread of its own, on a free loopback port."""

    def __init__(self, settings: Settings, **app_options: object) -> None:
        self.settings = settings
        self.port = free_port()
        self.app = create_app(settings, **app_options)  # type: ignore[arg-type]
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            ws_per_message_deflate=False,
            lifespan="on",
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
        self.thread.start()
        for _ in range(400):
            if self.server.started or not self.thread.is_alive():
                break
            threading.Event().wait(0.025)
        if not self.server.started:
            raise RuntimeError("the test server did not start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
