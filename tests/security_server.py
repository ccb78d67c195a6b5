"""A real `queue-server serve` process for the security tests: what an attacker meets is the
command an operator runs (its uvicorn options, its logging), not an app built in the test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support import TEST_CATALOG, free_port, in_the_hall

STARTUP_S = 60


class ServerProcess:
    def __init__(
        self, process: subprocess.Popen[bytes], port: int, log: Path, secret: str | None = None
    ) -> None:
        self.process = process
        self.port = port
        self.log = log
        self.secret = secret

    def in_the_hall(self, branch: str = "testhall") -> dict[str, str]:
        """The header of a phone that scanned this server's lobby screen (its hall pass)."""
        secret = self.secret or (self.log.parent / "secret_key").read_text().strip()
        return in_the_hall(secret, branch)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text("utf-8", errors="replace")


def server_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a server on a SQLite file in `data_dir` with the test organisation;
    `settings` are RIGI_ variables without the prefix (`issue_rate_address="3/hour"`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RIGI_", "FORWARDED_"))}
    env |= {
        "RIGI_DATA_DIR": str(data_dir),
        "RIGI_CONFIG": str(TEST_CATALOG),
        "PYTHONUNBUFFERED": "1",
    }
    return env | {f"RIGI_{name.upper()}": value for name, value in settings.items()}


@contextmanager
def serve(data_dir: Path, **settings: str) -> Iterator[ServerProcess]:
    """`python -m queue_server serve` on a free loopback port until the block ends."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = data_dir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "queue_server", "serve", "--host", "127.0.0.1",
             "--port", str(port)],
            env=server_env(data_dir, **settings), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    secret = settings.get("booking_key") or settings.get("secret_key")
    server = ServerProcess(process, port, log, secret)
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{server.log_text()}")
            try:
                if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{server.log_text()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
