"""The timeline (`RIGI_TIMELINE_DIR`) across two `queue-server serve` processes on PostgreSQL and
Redis: a call made on one and shown by a display on the other leaves its stages in both
processes' files, each after its cause on the machine's one monotonic clock, the display's
own arrival after its process began the fan-out."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from queue_server.domain.public import board_key
from tests.proxy_cluster import servers
from tests.support import (
    PASSWORD,
    POSTGRES_ENV,
    TEST_CATALOG,
    manager_and_display,
    need_service,
    own_redis,
    reset_postgres,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

BRANCH = "testhall"
B = f"/api/v1/branches/{BRANCH}"
MANAGER = "manager-timeline"
SECRET = "timeline-test-secret-" + "x" * 32
ARRIVAL_TIMEOUT_S = 30


def _records(folder: Path) -> dict[int, list[list[Any]]]:
    return {
        int(path.stem.removeprefix("timeline-")): [
            json.loads(line) for line in path.read_text().splitlines()
        ]
        for path in folder.glob("timeline-*.jsonl")
    }


def _one(records: list[list[Any]], what: str, branch: str, seq: int) -> list[Any]:
    found = [r for r in records if r[0] == what and r[1] == branch and r[2] == seq]
    assert len(found) == 1, (what, found)
    return found[0]


async def _call_seen_elsewhere(urls: list[str], token: str) -> tuple[str, float, float]:
    """Issue and call on the first process with a display on the second: (board key, when
    call-next was sent, when the display had it)."""
    board = urls[1].replace("http://", "ws://") + f"/ws/branches/{BRANCH}/board"
    async with (
        websockets.connect(board, open_timeout=30) as display,
        httpx.AsyncClient(base_url=urls[0], timeout=30) as staff,
    ):
        await display.send(json.dumps({"type": "hello", "token": token}))
        assert json.loads(await display.recv())["type"] == "snapshot"
        signed = await staff.post(
            "/api/v1/session", json={"username": MANAGER, "password": PASSWORD}
        )
        staff.headers["X-CSRF-Token"] = signed.raise_for_status().json()["csrf_token"]
        (await staff.post(f"{B}/counters/c01/open")).raise_for_status()
        (await staff.post(f"{B}/tickets", json={"service_id": "stamp"})).raise_for_status()
        sent = time.perf_counter()
        called = (await staff.post(f"{B}/counters/c01/call-next")).raise_for_status()
        key = board_key(called.json()["id"])
        async with asyncio.timeout(ARRIVAL_TIMEOUT_S):
            while True:
                frame = json.loads(await display.recv())
                if frame.get("kind") == "ticket.called":
                    assert frame["data"]["ticket"]["key"] == key
                    return key, sent, time.perf_counter()


def test_a_call_shown_by_the_other_process_leaves_its_stages_in_order(tmp_path: Path) -> None:
    import subprocess
    import sys

    database_url = need_service(POSTGRES_ENV, "PostgreSQL")
    reset_postgres(database_url)
    folder = tmp_path / "timeline"
    with own_redis(tmp_path / "redis") as redis:
        env = os.environ | {
            "RIGI_DATABASE_URL": database_url,
            "RIGI_BUS_URL": redis.url,
            "RIGI_CONFIG": str(TEST_CATALOG),
            "RIGI_DATA_DIR": str(tmp_path),
            "RIGI_SECRET_KEY": SECRET,
            "RIGI_LOG_LEVEL": "warning",
            "RIGI_TIMELINE_DIR": str(folder),
        }
        migrate = [sys.executable, "-m", "queue_server", "migrate"]
        subprocess.run(migrate, env=env, check=True, timeout=60, capture_output=True)
        token = asyncio.run(manager_and_display(database_url, MANAGER, BRANCH))
        with servers(env, 2) as processes:
            key, sent, shown = asyncio.run(_call_seen_elsewhere(processes.urls, token))
            first, second = processes.pids
    records = _records(folder)  # the servers have stopped: every record is flushed
    assert set(records) == {first, second}

    commits = [r for r in records[first] if r[0] == "commit" and r[4] == key]
    assert len(commits) == 1, "the call's event, committed once, in the process called"
    _, branch, seq, kind, _, request_started, committed = commits[0]
    assert kind == "ticket.called" and branch == BRANCH
    published = _one(records[first], "published", branch, seq)[3]
    received, taken = _one(records[second], "bus", branch, seq)[3:5]
    offered, written, listeners = _one(records[second], "offer", branch, seq)[3:6]
    # Only what caused what is compared: a stamp taken after an action (the fan-out's end,
    # say) may come after the other side already saw its effect.
    assert sent <= request_started <= committed <= published <= received <= taken
    assert taken <= offered <= written and offered <= shown
    assert listeners == 1  # the one display, on the second process
    assert not [r for r in records[second] if r[0] == "commit" and r[4] == key]
