"""Shared parts of the benchmarks: server subprocesses, a lean HTTP/1.1 client, display fleets.

Every figure is a ratio against a bare baseline measured in the same run, so the clients here
are kept cheap (the machine has few cores and the client shares them with the server).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
TEST_CATALOG = ROOT / "tests" / "fixtures" / "catalog"
FIXTURE_BRANCH = "testhall"
# The benchmark's events run under a channel prefix and a branch name of their own, so that
# they can never be mistaken for a test's `testhall` events, whichever Redis carries them.
BRANCH = "benchhall"
CHANNEL_PREFIX = "rigi-bench:bus:"
B = f"/api/v1/branches/{BRANCH}"
ADMIN = "bench-admin"
PASSWORD = "bench password 0123456789"
POSTGRES_URL = os.environ.get(
    "RIGI_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/rigi_bench"
)
OPEN_FILES = 8192
START_TIMEOUT_S = 90  # a loaded machine starts a 211-branch server slowly
CONNECT_CONCURRENCY = 64
PING = '{"type":"ping"}'
PONG = '{"type":"pong"}'


def raise_open_files(wanted: int = OPEN_FILES) -> None:
    """1,000 sockets need more than the usual soft limit of 1,024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


async def settled_rss_mb(pid: int, *, within_mb: float = 0.5, limit_s: float = 120.0) -> float:
    """Resident memory once it stops moving: two readings a second apart within `within_mb`.

    The server loads the forecast's compiled runs in a background thread after it starts (about
    150 MB, seconds on a loaded machine); a reading taken while that lands would charge it to
    whatever connects next."""
    deadline = time.monotonic() + limit_s
    last = rss_mb(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = rss_mb(pid)
        if abs(now - last) <= within_mb:
            return now
        last = now
    return last


def bench_catalog(folder: Path) -> Path:
    """The test organisation with its `testhall` renamed to BRANCH, written under `folder`."""
    catalog = folder / "catalog"
    shutil.copytree(TEST_CATALOG, catalog)
    source = catalog / "branches" / f"{FIXTURE_BRANCH}.yaml"
    text = source.read_text().replace(f"id: {FIXTURE_BRANCH}", f"id: {BRANCH}", 1)
    source.unlink()
    (catalog / "branches" / f"{BRANCH}.yaml").write_text(text)
    return catalog


SECRET = "benchmark-secret-" + "x" * 40
BRANCH_IN_PATH = re.compile(r"/api/v1/branches/([^/]+)/tickets$")


def in_the_hall(branch: str) -> dict[str, str]:
    """The header of a phone that scanned a lobby screen of `branch` on a bench server (its
    hall pass, docs/bookings.md): the benches' citizens take their tickets in the hall."""
    return _hall_pass(branch, int(time.time()) // 60)  # made once a minute, not per request


def hall_header_lines(path: str) -> str:
    """The hall pass as raw header lines for a POST to `path`, when it takes a ticket."""
    issuing = BRANCH_IN_PATH.search(path)
    if issuing is None:
        return ""
    return "".join(f"{name}: {value}\r\n" for name, value in in_the_hall(issuing[1]).items())


@functools.lru_cache(maxsize=4096)
def _hall_pass(branch: str, minute: int) -> dict[str, str]:
    from queue_server.access.hall_pass import HallPasses
    from queue_server.settings import Settings
    from queue_server.store.queue import utc_now

    minutes = Settings.model_fields["hall_pass_minutes"].default
    return {"X-Rigi-Hall-Pass": HallPasses(SECRET, minutes, utc_now).current(branch).token}


def rigi_environment(data_dir: Path, database_url: str | None, bus_url: str) -> dict[str, str]:
    env = os.environ | {
        "RIGI_BUS_URL": bus_url,
        "RIGI_BUS_CHANNEL_PREFIX": CHANNEL_PREFIX,
        "RIGI_CONFIG": str(bench_catalog(data_dir)),
        "RIGI_DATA_DIR": str(data_dir),
        "RIGI_SECRET_KEY": SECRET,
        "RIGI_ISSUE_RATE_DEVICE": "1000000/minute",
        "RIGI_ISSUE_RATE_ADDRESS": "1000000/minute",
        "RIGI_WS_PER_ADDRESS": "1000000",  # every simulated display connects from loopback
        "RIGI_LOG_LEVEL": "warning",
        "PYTHONPATH": str(ROOT),
    }
    if database_url:
        env["RIGI_DATABASE_URL"] = database_url
    else:
        env.pop("RIGI_DATABASE_URL", None)
    return env


def create_admin(env: dict[str, str]) -> None:
    """Migrate the database and make the benchmark's admin through the real CLI."""
    subprocess.run(
        [sys.executable, "-m", "queue_server", "create-admin", ADMIN, "--password-stdin"],
        input=PASSWORD + "\n",
        text=True,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


def reset_postgres(url: str = POSTGRES_URL) -> None:
    """Empty the benchmark's database, creating it first on a machine that has never run it."""
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://")

    async def _reset() -> None:
        try:
            conn = await asyncpg.connect(dsn)
        except asyncpg.InvalidCatalogNameError:
            server, _, name = dsn.rpartition("/")
            admin = await asyncpg.connect(f"{server}/postgres")
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()
            conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        finally:
            await conn.close()

    asyncio.run(_reset())


@contextlib.contextmanager
def own_redis(folder: Path) -> Iterator[str]:
    """The URL of a `redis-server` of the benchmark's own, started empty on a free loopback port
    in `folder` and stopped afterwards: a benchmark never flushes a Redis it did not start."""
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed (scripts/system-deps.sh installs it)")
    server = RedisServer(folder).start()
    try:
        yield server.url
    finally:
        server.stop()


@dataclass
class Server:
    """A server subprocess on a loopback port."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid


def _wait_ready(server: Server, path: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server on port {server.port} exited: {server.process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(server.url + path, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server on port {server.port} did not become ready")


@contextlib.contextmanager
def serving(command: list[str], env: dict[str, str], ready_path: str) -> Iterator[Server]:
    """Start a server subprocess, wait until `ready_path` answers 200, stop it afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [*command, "--port", str(port)], env=env, cwd=ROOT, stdin=subprocess.DEVNULL
    )
    server = Server(process, port)
    try:
        _wait_ready(server, ready_path)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rigi_cli(env: dict[str, str]) -> contextlib.AbstractContextManager[Server]:
    """Rigi as production runs it: `queue-server serve` (permessage-deflate off)."""
    command = [sys.executable, "-m", "queue_server", "serve", "--host", "127.0.0.1"]
    return serving(command, env, "/readyz")


def rigi_factory(
    env: dict[str, str], *, deflate: bool
) -> contextlib.AbstractContextManager[Server]:
    """Rigi through uvicorn with the `create_app` factory, permessage-deflate chosen."""
    command = [sys.executable, "-m", "benchmarks.servers", "rigi"]
    if deflate:
        command.append("--deflate")
    return serving(command, env, "/readyz")


def bare(env: dict[str, str]) -> contextlib.AbstractContextManager[Server]:
    """The bare Starlette baseline (benchmarks/bare_app.py) under uvicorn."""
    return serving([sys.executable, "-m", "benchmarks.servers", "bare"], env, "/healthz")


async def sign_in(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/session", json={"username": ADMIN, "password": PASSWORD})
    response.raise_for_status()
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]


async def display_token(client: httpx.AsyncClient) -> str:
    response = await client.post(B + "/devices", json={"role": "display", "name": "bench"})
    response.raise_for_status()
    return str(response.json()["token"])


@dataclass
class Fleet:
    """Many WebSocket clients in this process; each stamps the arrival of a marked frame."""

    marker: str
    arrivals: list[float] = field(default_factory=list)
    sample: str | None = None
    connections: list[ClientConnection] = field(default_factory=list)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)
    _expected: int = 0
    _complete: asyncio.Event = field(default_factory=asyncio.Event)

    async def open(
        self, url: str, count: int, hello: str, *, compression: str | None = None
    ) -> None:
        """Connect `count` clients, each sending `hello` and waiting for its first answer."""
        await self.open_each([url] * count, hello, compression=compression)

    async def open_each(
        self,
        urls: list[str],
        hello: str,
        *,
        compression: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """One client per URL, as `open` (phones: each follows its own ticket; consoles send
        the operator's session cookie in `headers`)."""
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(url: str) -> None:
            async with gate:
                ws = await connect(
                    url, compression=compression, open_timeout=30, ping_interval=None,
                    max_size=2**24, additional_headers=headers,
                )  # fmt: skip
                await ws.send(hello)
                await asyncio.wait_for(ws.recv(), 30)  # the snapshot (or the bare ack)
                self.connections.append(ws)
                self._readers.append(asyncio.create_task(self._read(ws)))

        await asyncio.gather(*(one(url) for url in urls))

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            async for raw in ws:
                assert isinstance(raw, str)
                if self.marker in raw:
                    self.arrivals.append(time.perf_counter())
                    if len(self.arrivals) >= self._expected:
                        self._complete.set()
                    if self.sample is None:
                        self.sample = raw
                elif raw == PING:
                    await ws.send(PONG)

    def expect(self, count: int) -> None:
        """Start a round: forget earlier arrivals and wait for `count` new ones."""
        self.arrivals.clear()
        self._expected = count
        self._complete.clear()

    async def arrived(self, limit_s: float) -> None:
        """Wait until every expected arrival is in, or `limit_s` passes."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit_s):
                await self._complete.wait()

    async def close(self) -> None:
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in self.connections), return_exceptions=True)
        self.connections.clear()


class LeanClient:
    """One keep-alive HTTP/1.1 connection with almost no client-side cost."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> LeanClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def post_json(self, path: str, body: bytes, headers: str = "") -> tuple[int, bytes]:
        """POST `body`; a ticket is taken as a phone in the hall (with the hall pass).
        `headers`: more header lines, each ending in CRLF (a session's cookie and CSRF)."""
        hall = hall_header_lines(path)
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"{hall}{headers}Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding":
                raise RuntimeError("chunked responses are not supported by the lean client")
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
