"""Two server processes on the machine's PostgreSQL and a Redis of the test's own, as in
production: operators call on both, displays watch both, Redis restarts in the middle, and every
display ends the same. (The test restarts a Redis it started itself, never a shared one.)"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from display_client.client import DisplayClient, running
from display_client.config import DisplaySettings
from queue_server.domain.public import board_key
from tests.support import (
    PASSWORD,
    POSTGRES_ENV,
    REDIS_ENV,
    TEST_CATALOG,
    RedisServer,
    free_port,
    manager_and_display,
    need_service,
    own_redis,
    reset_postgres,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

BRANCH = "testhall"
B = f"/api/v1/branches/{BRANCH}"
COUNTERS = 10
CALLS = 200
DISPLAYS_PER_PROCESS = 2
START_TIMEOUT_S = 30
CONVERGE_TIMEOUT_S = 40  # a bound so a broken build fails instead of hanging, not a measurement
MANAGER = "manager-scaleout"


@dataclass
class Cluster:
    urls: list[str]
    display_token: str
    redis: RedisServer


def _environment(database_url: str, redis_url: str, data_dir: Path) -> dict[str, str]:
    return os.environ | {
        "RIGI_DATABASE_URL": database_url,
        "RIGI_BUS_URL": redis_url,
        "RIGI_CONFIG": str(TEST_CATALOG),
        "RIGI_DATA_DIR": str(data_dir),
        "RIGI_SECRET_KEY": "scale-out-test-secret-" + "x" * 32,  # both processes sign the same
        "RIGI_ISSUE_RATE_DEVICE": "100000/minute",
        "RIGI_ISSUE_RATE_ADDRESS": "100000/minute",
        "RIGI_LOG_LEVEL": "warning",
    }


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(START_TIMEOUT_S * 10):
        if process.poll() is not None:
            raise RuntimeError(f"the server at {url} exited with {process.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        subprocess.run(["sleep", "0.1"], check=True)
    raise RuntimeError(f"the server at {url} did not become ready")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    database_url = need_service(POSTGRES_ENV, "PostgreSQL")
    reset_postgres(database_url)
    with own_redis(tmp_path / "redis") as redis:
        yield from _serve(database_url, redis, tmp_path)


def _serve(database_url: str, redis: RedisServer, tmp_path: Path) -> Iterator[Cluster]:
    env = _environment(database_url, redis.url, tmp_path)
    command = [sys.executable, "-m", "queue_server"]
    subprocess.run([*command, "migrate"], env=env, check=True, timeout=60, capture_output=True)
    token = asyncio.run(manager_and_display(database_url, MANAGER, BRANCH))
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen([*command, "serve", "--port", str(port)], env=env) for port in ports
    ]
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url, process in zip(urls, processes, strict=True):
            _wait_ready(url, process)
        yield Cluster(urls, token, redis)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _sign_in(url: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=url, timeout=30)
    response = await client.post(
        "/api/v1/session", json={"username": MANAGER, "password": PASSWORD}
    )
    response.raise_for_status()
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


def comparable(board: dict[str, Any]) -> dict[str, Any]:
    keys = ("key", "label", "service_id", "counter_id", "counter_number")
    return {
        "calls": [{k: call.get(k) for k in keys} for call in board["calls"]],
        "waiting": {service: n for service, n in board["waiting"].items() if n},
    }


async def test_two_processes_call_every_ticket_once_and_every_display_converges(
    cluster: Cluster,
) -> None:
    clients = [await _sign_in(url) for url in cluster.urls]
    displays = [
        DisplayClient(
            DisplaySettings(server_url=url, branch=BRANCH, token=cluster.display_token),
            reconnect_min=0.05,
            reconnect_max=0.5,
        )
        for url in cluster.urls
        for _ in range(DISPLAYS_PER_PROCESS)
    ]
    try:
        async with asyncio.TaskGroup() as group:
            for display in displays:
                group.create_task(_run_until_cancelled(display))

            for number in range(1, COUNTERS + 1):
                response = await clients[number % 2].post(f"{B}/counters/c{number:02d}/open")
                assert response.status_code == 200, response.text
            for start in range(0, CALLS, 20):
                issued = await asyncio.gather(
                    *(
                        clients[i % 2].post(f"{B}/tickets", json={"service_id": "stamp"})
                        for i in range(start, start + 20)
                    )
                )
                assert [r.status_code for r in issued] == [201] * 20

            called: list[str] = []
            halfway = asyncio.Event()

            async def operator(number: int) -> None:
                path = f"{B}/counters/c{number:02d}"
                for round_ in range(CALLS // COUNTERS):
                    client = clients[(number + round_) % 2]
                    response = await client.post(path + "/call-next")
                    assert response.status_code == 200, response.text
                    called.append(response.json()["id"])
                    if len(called) == CALLS // 2:
                        halfway.set()
                    gone = await clients[(number + round_ + 1) % 2].post(path + "/no-show")
                    assert gone.status_code == 200, gone.text

            operators = [asyncio.create_task(operator(number)) for number in range(1, COUNTERS + 1)]
            await halfway.wait()
            await asyncio.to_thread(cluster.redis.restart)
            await asyncio.gather(*operators)

            assert len(called) == CALLS
            assert len(set(called)) == CALLS, "a ticket was called twice"

            state = (await clients[0].get(f"{B}/snapshot")).json()
            async with asyncio.timeout(CONVERGE_TIMEOUT_S):
                for display in displays:
                    await display.wait_for_seq(state["seq"])
            boards = [display.board.view() for display in displays]
            assert all(board == boards[0] for board in boards)
            assert all(display.board.seq == state["seq"] for display in displays)
            # The server's snapshot orders calls by their events' seq, as displays do.
            assert comparable(boards[0]) == comparable(state["board"])
            assert {call["key"] for call in boards[0]["calls"]} <= {board_key(t) for t in called}
            raise _Done
    except* _Done:
        pass
    finally:
        for client in clients:
            await client.aclose()


class _Done(Exception):
    """Ends the task group that runs the displays once the story has been checked."""


async def _run_until_cancelled(display: DisplayClient) -> None:
    async with running(display):
        await asyncio.Event().wait()


async def test_deployments_sharing_one_redis_keep_to_their_own_channels(tmp_path: Path) -> None:
    """Redis pub/sub ignores the database number in the URL: `RIGI_BUS_CHANNEL_PREFIX` is what
    keeps two deployments (or a test run and production) on one Redis apart."""
    from queue_server.bus import create_bus
    from tests.support import LiveServer, test_settings

    redis_url = need_service(REDIS_ENV, "Redis")
    ours, theirs = f"rigi-test-{os.getpid()}-a:", f"rigi-test-{os.getpid()}-b:"
    settings = test_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}",
        tmp_path,
        bus_url=redis_url,
        bus_channel_prefix=ours,
    )
    server = LiveServer(settings).start()
    listening = [create_bus(redis_url, channel_prefix=p) for p in (ours, theirs)]
    try:
        for bus in listening:
            await bus.connect()
        channel = f"branch:{BRANCH}"
        async with (
            listening[0].subscribe(channel) as mine,
            listening[1].subscribe(channel) as other,
        ):
            async with server.client("manager") as client:
                response = await client.post(f"{B}/tickets", json={"service_id": "id_card"})
                assert response.status_code == 201
            async with asyncio.timeout(CONVERGE_TIMEOUT_S):
                received = await anext(aiter(mine))
                while '"kind":"user.created"' in received.data:  # type: ignore[union-attr]
                    received = await anext(aiter(mine))  # the test's manager, made just before
            assert '"kind":"ticket.issued"' in received.data  # type: ignore[union-attr]
            # Published after the server's event: had that reached the other prefix, it would
            # have come first.
            await listening[1].publish(channel, "marker")
            async with asyncio.timeout(CONVERGE_TIMEOUT_S):
                first = await anext(aiter(other))
            assert first.data == "marker"  # type: ignore[union-attr]
    finally:
        for bus in listening:
            await bus.disconnect()
        server.stop()
