"""A feed the server itself held up is not taken for a silent client. In the national day,
phones whose shared read waited on a busy database pool sent no pings meanwhile; when the read
came back the server measured the time since their last pong, found it over two heartbeats,
and closed them as `no pong` (4008) although nobody had asked them anything."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.support import LiveServer, test_settings

B = "/api/v1/branches/testhall"
HEARTBEAT_S = 0.2
STALL_S = 5 * HEARTBEAT_S  # longer than the two heartbeats a silent client is given
RECV_TIMEOUT_S = 10.0


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(test_settings(database_url, tmp_path, heartbeat_s=HEARTBEAT_S)).start()
    yield server
    server.stop()


async def _next_ticket_frame(phone: Any) -> dict[str, Any]:
    """The next ticket frame, answering pings as a phone's page does."""
    while True:
        frame = json.loads(await asyncio.wait_for(phone.recv(), RECV_TIMEOUT_S))
        if frame["type"] == "ping":
            await phone.send('{"type":"pong"}')
            continue
        return frame  # type: ignore[no-any-return]


async def test_a_phone_whose_refresh_was_slow_is_not_closed_as_silent(server: LiveServer) -> None:
    phones = server.rigi.phones
    read = phones._read
    stalled = asyncio.Event()

    async def slow_read(branch: str, keys: frozenset[str]) -> dict[str, Any]:
        # The database answering late, as under a saturated pool: the one refresh waits.
        if not stalled.is_set():
            stalled.set()
            await asyncio.sleep(STALL_S)
        return await read(branch, keys)

    async with server.client("manager") as staff:
        ticket = (await staff.post(f"{B}/tickets", json={"service_id": "id_card"})).json()
        async with connect(f"{server.ws_url}/ws/tickets/{ticket['id']}") as phone:
            first = await _next_ticket_frame(phone)
            assert first["ticket"]["people_ahead"] == 0
            phones._read = slow_read  # from now on, until the first refresh has waited
            assert (await staff.post(f"{B}/counters/c01/open")).status_code == 200
            assert (await staff.post(f"{B}/counters/c01/call-next")).status_code == 200
            called = await _next_ticket_frame(phone)
            assert stalled.is_set()
            assert called["ticket"]["status"] == "called"
            # The phone answers every ping from now on: it stays, and hears the visit end.
            assert (await staff.post(f"{B}/counters/c01/start")).status_code == 200
            assert (await staff.post(f"{B}/counters/c01/finish", json={})).status_code == 200
            statuses: list[str] = []
            while not statuses or statuses[-1] != "done":
                statuses.append((await _next_ticket_frame(phone))["ticket"]["status"])
            assert statuses[-1] == "done"
