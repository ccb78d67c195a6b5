"""A stand-in for queue_server's board feed, following docs/protocol.md, on a real socket.

It keeps a bounded event history (a client that fell further behind gets a snapshot), checks the
device token in the hello, pings in JSON, and keeps its own board the way the server does, so a
test can compare the display's board with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

TOKEN = "display-token-tbilisi"
BRANCH = "tbilisi"


class FakeBoardFeed:
    def __init__(self, *, history_limit: int = 1000, token: str = TOKEN) -> None:
        self.epoch = "epoch-1"
        self.seq = 0
        self.history: list[dict[str, Any]] = []
        self.history_limit = history_limit
        self.token = token
        self.calls: list[dict[str, Any]] = []
        self.hellos: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.accepting = True
        self.skip_live: set[int] = set()  # seqs not sent live (to make a gap)
        self._clients: dict[ServerConnection, asyncio.Queue[str]] = {}
        self._server: Any = None
        self.port = 0

    async def __aenter__(self) -> FakeBoardFeed:
        self._server = await serve(self._handler, "127.0.0.1", 0, compression=None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def board(self) -> dict[str, Any]:
        return {"branch": BRANCH, "calls": [dict(c) for c in self.calls[:12]], "waiting": {},
                "counters": {}}  # fmt: skip

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None  # set once the handshake is done, before the handler
        self.paths.append(ws.request.path)
        if not self.accepting:
            await ws.close(1013, "try again later")
            return
        hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
        self.hellos.append(hello)
        if hello.get("type") != "hello" or hello.get("token") != self.token:
            await ws.close(4401, "bad token")
            return
        queue: asyncio.Queue[str] = asyncio.Queue()
        after = hello.get("after_seq")
        oldest = self.history[0]["seq"] if self.history else self.seq + 1
        if hello.get("epoch") == self.epoch and after is not None and after + 1 >= oldest:
            for event in self.history:
                if event["seq"] > after:
                    queue.put_nowait(json.dumps(event))
        else:
            snapshot = {"type": "snapshot", "epoch": self.epoch, "seq": self.seq,
                        "board": self.board()}  # fmt: skip
            queue.put_nowait(json.dumps(snapshot))
        self._clients[ws] = queue
        sender = asyncio.create_task(self._send(ws, queue))
        try:
            with contextlib.suppress(ConnectionClosed):
                async for _ in ws:
                    pass  # pongs
        finally:
            sender.cancel()
            self._clients.pop(ws, None)

    async def _send(self, ws: ServerConnection, queue: asyncio.Queue[str]) -> None:
        with contextlib.suppress(Exception):
            while True:
                await ws.send(await queue.get())

    async def publish(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        self.seq += 1
        event = {"type": "event", "branch": BRANCH, "epoch": self.epoch, "seq": self.seq,
                 "kind": kind, "at": datetime.now(UTC).isoformat(), "data": data}  # fmt: skip
        self.history.append(event)
        del self.history[: -self.history_limit]
        if self.seq not in self.skip_live:
            for queue in self._clients.values():
                queue.put_nowait(json.dumps(event))
        return event

    async def call(self, letter: str, number: int, counter: int, *, recall: bool = False) -> int:
        """Call (or recall) a ticket to a counter; returns the event's seq."""
        key = f"k-{letter}{number}"
        previous = next((c for c in self.calls if c["key"] == key), None)
        ticket = {"key": key, "label": f"{letter}{number:03d}", "letter": letter,
                  "number": number, "service_id": "id_card", "status": "called",
                  "counter_id": f"c{counter:02d}", "counter_number": counter,
                  "called_at": datetime.now(UTC).isoformat()}  # fmt: skip
        entry = {name: ticket[name] for name in ("label", "letter", "number", "service_id",
                 "counter_id", "counter_number", "called_at")}  # fmt: skip
        entry["key"] = key
        entry["recalls"] = (previous or {}).get("recalls", 0) + int(recall)
        self.calls = [entry, *(c for c in self.calls if c["key"] != key)]
        event = await self.publish(
            "ticket.recalled" if recall else "ticket.called",
            {"ticket": ticket, "counter_id": ticket["counter_id"], "counter_number": counter},
        )
        return int(event["seq"])

    async def drop_connections(self) -> None:
        for ws in list(self._clients):
            await ws.close(1012, "server restart")
        self._clients.clear()
