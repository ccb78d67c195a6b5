"""Every committed change is published by its own transaction, with no handler remembering
to: a person added by an admin reaches the branch's listeners as `user.created` (staff see who
and what role), while a public lobby board gets only its sequence number, never the name."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from websockets.asyncio.client import connect

from queue_server.store.events import Event
from tests.support import LiveServer

BRANCH = "testhall"
WAIT_S = 10.0


async def test_a_new_operator_is_published_to_staff_listeners_and_only_as_a_number_to_boards(
    live_server: LiveServer,
) -> None:
    heard: list[Event] = []

    async def listener(events: Sequence[Event]) -> None:
        heard.extend(events)

    async def listen() -> None:
        live_server.rigi.database.listeners.append(listener)

    live_server.run(listen())
    display = live_server.device_token("display")
    async with (
        live_server.client("admin") as admin,
        connect(f"{live_server.ws_url}/ws/branches/{BRANCH}/board", compression=None) as board,
    ):
        await board.send(json.dumps({"type": "hello", "token": display}))
        assert json.loads(await board.recv())["type"] == "snapshot"
        response = await admin.post(
            "/api/v1/users",
            json={
                "username": "nino-published",
                "password": "a long enough password 123",
                "role": "operator",
                "branch": BRANCH,
            },
        )
        assert response.status_code == 201, response.text
        frame: dict[str, Any] = {}
        async with asyncio.timeout(WAIT_S):
            while frame.get("type") != "event":
                frame = json.loads(await board.recv())
    created = [e for e in heard if e.kind == "user.created"]
    assert len(created) == 1
    assert created[0].data == {"username": "nino-published", "role": "operator"}
    assert frame["kind"] == "user.created"
    assert frame["seq"] == created[0].seq
    assert frame["data"] == {}
    assert "nino-published" not in json.dumps(frame)
