"""The OpenAPI document describes what the feeds really send: real WebSocket clients on every
feed (a lobby display, the live view, two consoles, two phones) follow a short real day
(issue, call, recall, start, finish, transfer, pause, a display resuming by replay and one
falling back to a snapshot), and every frame they receive is checked against the frame schemas
of the server's own /openapi.json (`x-feeds`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema.exceptions import best_match
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support import LiveServer, test_settings

BRANCH = "testhall"
B = f"/api/v1/branches/{BRANCH}"
HEARTBEAT_S = 0.3  # so that pings are among the frames checked
SETTLE_S = 1.0  # after the last action, for the last frames to arrive
RECV_TIMEOUT_S = 10.0


@pytest.fixture
def feed_server(database_url: str, tmp_path: Path) -> Any:
    server = LiveServer(test_settings(database_url, tmp_path, heartbeat_s=HEARTBEAT_S)).start()
    yield server
    server.stop()


class Client:
    """One feed connection that records every frame and answers pings."""

    def __init__(self, name: str, feed: str, ws: ClientConnection) -> None:
        self.name, self.feed, self.ws = name, feed, ws
        self.frames: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                frame = json.loads(raw)
                self.frames.append(frame)
                if frame.get("type") == "ping":
                    await self.ws.send('{"type":"pong"}')

    def last_seq(self) -> int:
        return max((f["seq"] for f in self.frames if "seq" in f), default=0)

    def epoch(self) -> str:
        return next(f["epoch"] for f in reversed(self.frames) if f.get("epoch"))


BOARD = "/ws/branches/{branch}/board"
CONSOLE = "/ws/branches/{branch}/counters/{counter}"
PHONE = "/ws/tickets/{ticket_id}"


class Feeds:
    """Opens feed connections on one server and keeps them open until the test ends."""

    def __init__(self, server: LiveServer, stack: contextlib.AsyncExitStack, cookie: str) -> None:
        self.server, self.stack, self.cookie = server, stack, cookie
        self.clients: list[Client] = []

    async def open(
        self, name: str, declared: str, hello: dict[str, Any] | None, **path: str
    ) -> Client:
        """Connect to the feed `declared` (its path in `x-feeds`), filled in with `path`;
        a staff feed (no device token in `hello`) goes with the manager's cookie."""
        url = self.server.ws_url + declared.format(**path)
        staff = hello is not None and not hello.get("token")
        headers = {"Cookie": self.cookie} if staff else {}
        ws = await self.stack.enter_async_context(connect(url, additional_headers=headers))
        if hello is not None:
            await ws.send(json.dumps({"type": "hello", **hello}))
        client = Client(name, declared, ws)
        self.stack.push_async_callback(_stop, client.task)
        self.clients.append(client)
        return client


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def post(client: Any, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await client.post(B + path, json=body or {})
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


def validators(document: dict[str, Any]) -> dict[str, jsonschema.protocols.Validator]:
    """One validator per feed path, resolving `$ref`s inside the document itself."""
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    return {
        path: jsonschema.Draft202012Validator(
            {"$ref": declared["frame"]["$ref"], "components": document["components"]},
            format_checker=checker,
        )
        for path, declared in document["x-feeds"].items()
    }


async def test_every_frame_of_every_feed_matches_the_openapi_document(
    feed_server: LiveServer,
) -> None:
    token = feed_server.device_token("display")
    async with feed_server.client("manager") as staff, contextlib.AsyncExitStack() as stack:
        checks = validators((await staff.get("/openapi.json")).json())
        first = await post(staff, "/tickets", {"service_id": "id_card"})
        second = await post(staff, "/tickets", {"service_id": "id_card", "language": "en"})
        cookie = "; ".join(f"{name}={value}" for name, value in staff.cookies.items())
        feeds = Feeds(feed_server, stack, cookie)
        display = await feeds.open("display", BOARD, {"token": token}, branch=BRANCH)
        await feeds.open("live view", BOARD, {"token": None}, branch=BRANCH)
        for counter in ("c01", "c02"):
            await feeds.open(f"console {counter}", CONSOLE, {}, branch=BRANCH, counter=counter)
        first_phone = await feeds.open("phone 1", PHONE, None, ticket_id=first["id"])
        second_phone = await feeds.open("phone 2", PHONE, None, ticket_id=second["id"])

        await post(staff, "/counters/c01/open")
        await post(staff, "/counters/c02/open")
        assert (await post(staff, "/counters/c01/call-next"))["id"] == first["id"]
        await post(staff, "/counters/c01/recall")
        await post(staff, "/counters/c01/start")
        await post(staff, "/counters/c01/finish", {"outcome": "served"})
        await asyncio.sleep(SETTLE_S)
        # A display that went away here resumes later by a replay of what it missed.
        resume = {"token": token, "epoch": display.epoch(), "after_seq": display.last_seq()}
        assert (await post(staff, "/counters/c02/call-next"))["id"] == second["id"]
        await post(staff, "/counters/c02/start")
        await post(staff, "/counters/c02/transfer", {"service_id": "passport"})
        await post(staff, "/counters/c02/pause", {"reason": "break"})
        resumed = await feeds.open("resumed display", BOARD, resume, branch=BRANCH)
        lost = {"token": token, "epoch": "0" * 32, "after_seq": 3}  # an epoch long gone
        snapshotted = await feeds.open("display on a lost epoch", BOARD, lost, branch=BRANCH)
        await asyncio.sleep(SETTLE_S)

    kinds: Counter[str] = Counter()
    for client in feeds.clients:
        assert client.frames, f"{client.name} received nothing"
        for frame in client.frames:
            errors = sorted(checks[client.feed].iter_errors(frame), key=str)
            assert not errors, f"{client.name} got {frame}: {best_match(errors).message}"
            kinds[frame.get("kind") or frame["type"]] += 1
    # The scenario really produced every kind of frame the schemas must cover.
    for kind in (
        "snapshot", "ping", "counter", "ticket", "ticket.issued", "ticket.called",
        "ticket.recalled", "ticket.started", "ticket.finished", "ticket.transferred",
        "counter.opened", "counter.paused",
    ):  # fmt: skip
        assert kinds[kind], f"no {kind} frame was seen: {dict(kinds)}"
    assert resumed.frames[0]["type"] == "event", "the resumed display was not replayed to"
    assert snapshotted.frames[0]["type"] == "snapshot"
    assert [f["ticket"]["status"] for f in first_phone.frames if f["type"] == "ticket"][-1] == (
        "done"
    )
    statuses = [f["ticket"]["status"] for f in second_phone.frames if f["type"] == "ticket"]
    assert statuses[0] == "waiting" and statuses[-1] == "transferred", statuses
