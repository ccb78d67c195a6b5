"""Two server processes on the machine's PostgreSQL and a Redis of the test's own: a manager's
edit on one process reaches a kiosk following the board feed of the other, and the other
process serves the new organisation to it (issue #14)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.test_scaleout import BRANCH, Cluster, _sign_in, cluster

__all__ = ["cluster"]  # the fixture, imported for this module's tests
pytestmark = [pytest.mark.postgres, pytest.mark.redis]
B = f"/api/v1/branches/{BRANCH}"
RECV_TIMEOUT_S = 20.0  # a hang guard, not a timing assertion


async def test_an_edit_on_one_process_reaches_a_kiosk_on_the_other(cluster: Cluster) -> None:
    first, second = cluster.urls
    manager = await _sign_in(first)
    try:
        made = await manager.post(f"{B}/devices", json={"role": "kiosk", "name": "entrance"})
        assert made.status_code in (200, 201), made.text
        token = made.json()["token"]
        ws_url = second.replace("http://", "ws://") + f"/ws/branches/{BRANCH}/board"
        async with connect(ws_url) as kiosk:
            await kiosk.send(json.dumps({"type": "hello", "token": token}))
            snapshot = json.loads(await asyncio.wait_for(kiosk.recv(), RECV_TIMEOUT_S))
            assert snapshot["type"] == "snapshot"
            edited = await manager.post(f"{B}/organisation", json={"offers": ["stamp"]})
            assert edited.status_code == 200, edited.text
            changed = await _next_change(kiosk)
            assert changed["branch"] == BRANCH
        response = await manager.get(second + B)
        assert {s["id"] for s in response.json()["services"]} == {"stamp"}
    finally:
        await manager.aclose()


async def _next_change(ws: Any) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S))
        if message["type"] == "ping":
            await ws.send('{"type":"pong"}')
        elif message.get("kind") == "organisation.changed":
            return message  # type: ignore[no-any-return]
