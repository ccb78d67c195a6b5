"""A real nginx in front of two server processes on PostgreSQL and a Redis of the test's own, as
deploy/ ships it: operators work through nginx, lobby displays watch through nginx and see
every call once and in order, and the rate limits count each real client across both
processes, whatever it writes in X-Forwarded-For."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets

from queue_server.domain.public import board_key
from tests.proxy_cluster import PROXY_ADDRESS, NginxMissing, nginx_in_front, servers
from tests.support import (
    PASSWORD,
    POSTGRES_ENV,
    TEST_CATALOG,
    in_the_hall,
    manager_and_display,
    need_service,
    own_redis,
    reset_postgres,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

BRANCH = "testhall"
B = f"/api/v1/branches/{BRANCH}"
MANAGER = "manager-proxy"
PER_ADDRESS = 3
SECRET = "proxy-cluster-test-secret-" + "x" * 32
COUNTERS = 4
CALLS_PER_COUNTER = 10
DISPLAYS = 4
ARRIVAL_TIMEOUT_S = 30  # a bound so a broken build fails instead of hanging


@dataclass
class Cluster:
    url: str  # nginx
    display_token: str


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    import subprocess
    import sys

    database_url = need_service(POSTGRES_ENV, "PostgreSQL")
    reset_postgres(database_url)
    with own_redis(tmp_path / "redis") as redis:
        env = os.environ | {
            "RIGI_DATABASE_URL": database_url,
            "RIGI_BUS_URL": redis.url,
            "RIGI_CONFIG": str(TEST_CATALOG),
            "RIGI_DATA_DIR": str(tmp_path),
            "RIGI_SECRET_KEY": SECRET,
            "RIGI_TRUSTED_PROXIES": PROXY_ADDRESS,
            "RIGI_ISSUE_RATE_DEVICE": "100000/minute",
            "RIGI_ISSUE_RATE_ADDRESS": f"{PER_ADDRESS}/hour",
            "RIGI_LOG_LEVEL": "warning",
        }
        migrate = [sys.executable, "-m", "queue_server", "migrate"]
        subprocess.run(migrate, env=env, check=True, timeout=60, capture_output=True)
        token = asyncio.run(manager_and_display(database_url, MANAGER, BRANCH))
        try:
            with (
                servers(env, 2) as processes,
                nginx_in_front(tmp_path / "nginx", processes.ports) as url,
            ):
                yield Cluster(url, token)
        except NginxMissing as missing:
            if os.environ.get("CI"):
                pytest.fail(str(missing))
            pytest.skip(str(missing))


def _phone(source: str) -> httpx.Client:
    """A citizen's phone in the hall: its own source address on the loopback network, and the
    hall pass of the lobby screen it scanned."""
    return httpx.Client(
        transport=httpx.HTTPTransport(local_address=source),
        timeout=30,
        headers=in_the_hall(SECRET, BRANCH),
    )


def test_each_real_client_has_one_bucket_across_both_processes(cluster: Cluster) -> None:
    """nginx spreads a phone's requests over both processes; the limit, kept in Redis under the
    client's real address, still allows PER_ADDRESS tickets in all, and a forged
    X-Forwarded-For neither escapes it nor spends someone else's."""
    ticket = {"service_id": "id_card"}
    url = cluster.url
    with _phone("127.0.0.3") as phone:
        forged = [
            phone.post(f"{url}{B}/tickets", json=ticket,
                       headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
            for n in range(PER_ADDRESS + 2)
        ]  # fmt: skip
    assert forged == [201] * PER_ADDRESS + [429] * 2
    with _phone("127.0.0.4") as other:
        framing = other.post(
            f"{url}{B}/tickets", json=ticket, headers={"X-Forwarded-For": "127.0.0.5"}
        )
        theirs = [other.post(f"{url}{B}/tickets", json=ticket).status_code for _ in range(2)]
    assert framing.status_code == 201 and theirs == [201] * 2
    with _phone("127.0.0.5") as framed:  # the address 127.0.0.4 wrote in its header
        own = [framed.post(f"{url}{B}/tickets", json=ticket).status_code for _ in range(3)]
    assert own == [201] * PER_ADDRESS


async def _sign_in(url: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=url, timeout=30)
    response = await client.post(
        "/api/v1/session", json={"username": MANAGER, "password": PASSWORD}
    )
    response.raise_for_status()
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


class Display:
    """A lobby display's board feed through nginx: every event frame, in arrival order."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.snapshot_seq = -1
        self.events: list[dict[str, object]] = []
        self.last_seq = -1

    @classmethod
    async def open(cls, url: str, token: str) -> Display:
        ws = await websockets.connect(url, open_timeout=30)
        await ws.send(json.dumps({"type": "hello", "token": token}))
        first = json.loads(await asyncio.wait_for(ws.recv(), ARRIVAL_TIMEOUT_S))
        assert first["type"] == "snapshot", first
        display = cls(ws)
        display.snapshot_seq = display.last_seq = first["seq"]
        return display

    async def follow_to(self, seq: int) -> None:
        while self.last_seq < seq:
            frame = json.loads(await self.ws.recv())
            if frame["type"] == "ping":
                await self.ws.send('{"type":"pong"}')
                continue
            assert frame["type"] == "event", frame  # a snapshot here would be a gap
            self.events.append(frame)
            self.last_seq = int(frame["seq"])  # type: ignore[call-overload]

    def calls(self) -> list[tuple[str, str]]:
        """(counter, board key) of every `ticket.called` event, in the order received."""
        return [
            (event["data"]["counter_id"], event["data"]["ticket"]["key"])  # type: ignore[index]
            for event in self.events
            if event["kind"] == "ticket.called"
        ]


async def test_displays_through_nginx_see_every_call_once_and_in_order(cluster: Cluster) -> None:
    operators = [await _sign_in(cluster.url) for _ in range(COUNTERS)]  # spread by nginx
    board = cluster.url.replace("http://", "ws://") + f"/ws/branches/{BRANCH}/board"
    displays = [await Display.open(board, cluster.display_token) for _ in range(DISPLAYS)]
    try:
        counters = [f"c{number:02d}" for number in range(1, COUNTERS + 1)]
        for client, counter in zip(operators, counters, strict=True):
            opened = await client.post(f"{B}/counters/{counter}/open")
            assert opened.status_code == 200, opened.text
        issued = await asyncio.gather(
            *(
                operators[n % COUNTERS].post(f"{B}/tickets", json={"service_id": "stamp"})
                for n in range(COUNTERS * CALLS_PER_COUNTER)
            )
        )
        assert [r.status_code for r in issued] == [201] * len(issued)

        async def operate(client: httpx.AsyncClient, counter: str) -> list[tuple[str, str]]:
            path = f"{B}/counters/{counter}"
            mine = []
            for _ in range(CALLS_PER_COUNTER):
                called = await client.post(path + "/call-next")
                assert called.status_code == 200, called.text
                mine.append((counter, board_key(called.json()["id"])))
                done = await client.post(path + "/no-show")
                assert done.status_code == 200, done.text
            return mine

        made = await asyncio.gather(
            *(operate(c, counter) for c, counter in zip(operators, counters, strict=True))
        )
        head = (await operators[0].get(f"{B}/snapshot")).json()["seq"]
        async with asyncio.timeout(ARRIVAL_TIMEOUT_S):
            await asyncio.gather(*(display.follow_to(head) for display in displays))

        every_call = {call for calls in made for call in calls}
        assert len(every_call) == COUNTERS * CALLS_PER_COUNTER, "a ticket was called twice"
        for display in displays:
            seqs = [event["seq"] for event in display.events]
            assert seqs == list(range(display.snapshot_seq + 1, head + 1)), "a gap or a repeat"
            seen = display.calls()
            assert len(seen) == len(set(seen)) == len(every_call)
            assert set(seen) == every_call
            for counter, calls in zip(counters, made, strict=True):
                assert [call for call in seen if call[0] == counter] == calls, "out of order"
        assert all(display.events == displays[0].events for display in displays)
    finally:
        for display in displays:
            await display.ws.close()
        for client in operators:
            await client.aclose()
