"""The board feed as a lobby display sees it: live events, resume from the last seq, snapshots
when the gap is too old, and a display that stops reading never holds up the others."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from display_client.board import Board
from queue_server.domain.public import board_key
from queue_server.realtime import hub as hub_module
from queue_server.settings import Settings
from queue_server.store.database import Database
from queue_server.store.events import prune_events
from tests.support import LiveServer, test_settings

BRANCH = "testhall"
B = f"/api/v1/branches/{BRANCH}"
RECV_TIMEOUT_S = 10.0


def counter(number: int) -> str:
    return f"{B}/counters/c{number:02d}"


def comparable(board: dict[str, Any]) -> dict[str, Any]:
    """A board in the fields the display keeps, so the display's and the server's compare."""
    keys = ("key", "label", "letter", "number", "service_id", "counter_id")
    return {
        "calls": [{k: call.get(k) for k in (*keys, "counter_number")} for call in board["calls"]],
        "waiting": {service: n for service, n in board["waiting"].items() if n},
        "counters": {cid: c.get("state", "closed") for cid, c in board["counters"].items()},
    }


class Display:
    """A lobby display on a real `websockets` connection, keeping the board by seq."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.board = Board(BRANCH)
        self.frames: list[dict[str, Any]] = []

    async def hello(self, token: str, epoch: str | None, after_seq: int | None) -> None:
        await self.ws.send(
            json.dumps({"type": "hello", "token": token, "epoch": epoch, "after_seq": after_seq})
        )

    async def receive(self) -> dict[str, Any]:
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), RECV_TIMEOUT_S))
            if message["type"] == "ping":
                await self.ws.send('{"type":"pong"}')
                continue
            self.frames.append(message)
            if message["type"] == "snapshot":
                self.board.replace(message["epoch"], message["seq"], message["board"])
            elif message["type"] == "event":
                self.board.apply(message)
            return message

    async def until_seq(self, seq: int) -> None:
        while self.board.seq is None or self.board.seq < seq:
            await self.receive()


@asynccontextmanager
async def display(
    server: LiveServer, epoch: str | None = None, after_seq: int | None = None, **options: Any
) -> AsyncIterator[Display]:
    async with connect(
        f"{server.ws_url}/ws/branches/{BRANCH}/board", compression=None, **options
    ) as ws:
        screen = Display(ws)
        await screen.hello(server.device_token("display"), epoch, after_seq)
        yield screen


async def server_board(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get(f"{B}/snapshot")
    assert response.status_code == 200, response.text
    return response.json()


async def issue(client: httpx.AsyncClient, count: int, service: str = "id_card") -> None:
    for _ in range(count):
        response = await client.post(f"{B}/tickets", json={"service_id": service})
        assert response.status_code == 201, response.text


async def open_counters(client: httpx.AsyncClient, *numbers: int) -> None:
    for number in numbers:
        assert (await client.post(counter(number) + "/open")).status_code == 200


async def test_a_display_that_reconnects_gets_exactly_the_calls_it_missed(
    live_server: LiveServer,
) -> None:
    async with live_server.client("manager") as client:
        await issue(client, 4)
        await issue(client, 2, "passport")
        await issue(client, 8, "stamp")
        await open_counters(client, 1, 2, 3, 4, 5, 6, 7)
        async with display(live_server) as screen:
            first = await screen.receive()
            assert first["type"] == "snapshot"
            assert comparable(first["board"]) == comparable((await server_board(client))["board"])
            last_seq, epoch = screen.board.seq, screen.board.epoch
            assert last_seq is not None and last_seq >= 21
            seen_before = screen.board.view()

        calls = []
        for number in range(1, 7):
            response = await client.post(counter(number) + "/call-next")
            assert response.status_code == 200, response.text
            calls.append(response.json()["label"])

        async with display(live_server, epoch, last_seq) as screen:
            screen.board.replace(epoch, last_seq, seen_before)
            missed = [await screen.receive() for _ in range(len(calls))]
            assert [m["type"] for m in missed] == ["event"] * len(calls)
            assert [m["seq"] for m in missed] == list(range(last_seq + 1, last_seq + 7))
            assert [m["kind"] for m in missed] == ["ticket.called"] * len(calls)
            assert [m["data"]["ticket"]["label"] for m in missed] == calls

            live = await client.post(counter(7) + "/call-next")
            assert live.status_code == 200
            (event,) = [await screen.receive()]
            assert (event["seq"], event["data"]["ticket"]["key"]) == (
                last_seq + 7,
                board_key(live.json()["id"]),
            )
            assert "id" not in event["data"]["ticket"]  # the key to the ticket stays off boards

            state = await server_board(client)
            assert state["seq"] == screen.board.seq
            assert comparable(screen.board.view()) == comparable(state["board"])

            # Applying the same events again (an overlapping replay) changes nothing.
            before = screen.board.view()
            for message in [*missed, event]:
                assert screen.board.apply(message) is False
            assert screen.board.view() == before


async def test_a_display_behind_the_kept_history_gets_a_snapshot_of_the_server_state(
    live_server: LiveServer,
) -> None:
    async with live_server.client("manager") as client:
        await issue(client, 4)
        await issue(client, 4, "stamp")
        await open_counters(client, 1, 2, 3)
        async with display(live_server) as screen:
            await screen.receive()
            last_seq, epoch = screen.board.seq, screen.board.epoch
            assert last_seq is not None

        for number in (1, 2, 3):
            assert (await client.post(counter(number) + "/call-next")).status_code == 200
        assert (await client.post(counter(2) + "/no-show")).status_code == 200
        await issue(client, 2, "stamp")

        database = Database(live_server.settings.resolved_database_url)
        try:
            assert await database.transaction(lambda conn: prune_events(conn, BRANCH, keep=3)) > 0
        finally:
            await database.dispose()

        async with display(live_server, epoch, last_seq) as screen:
            message = await screen.receive()
            assert message["type"] == "snapshot"
            state = await server_board(client)
            assert (message["epoch"], message["seq"]) == (state["epoch"], state["seq"])
            assert message["board"] == state["board"]
            assert comparable(screen.board.view()) == comparable(state["board"])

        async with display(live_server, "an-old-epoch", last_seq) as screen:
            assert (await screen.receive())["type"] == "snapshot"

        async with display(live_server, epoch, state["seq"] + 50) as screen:
            assert (await screen.receive())["type"] == "snapshot"


async def test_every_display_sees_every_event_of_a_busy_hall_in_order(
    live_server: LiveServer,
) -> None:
    async with live_server.client("manager") as client:
        await open_counters(client, 1, 2)
        async with display(live_server) as one, display(live_server) as two:
            for screen in (one, two):
                assert (await screen.receive())["type"] == "snapshot"
            start = one.board.seq
            assert start is not None
            await asyncio.gather(
                issue(client, 10), issue(client, 10, "passport"), issue(client, 5, "stamp")
            )
            for number in (1, 2):
                assert (await client.post(counter(number) + "/call-next")).status_code == 200
            state = await server_board(client)
            for screen in (one, two):
                await screen.until_seq(state["seq"])
                seqs = [f["seq"] for f in screen.frames if f["type"] == "event"]
                assert seqs == list(range(start + 1, state["seq"] + 1))
                assert comparable(screen.board.view()) == comparable(state["board"])


class StuckDisplay:
    """A display that sends its hello, takes the snapshot and then stops reading its socket."""

    def __init__(self, server: LiveServer) -> None:
        self.url = f"{server.ws_url}/ws/branches/{BRANCH}/board"
        self.port = server.port
        self.protocol = ClientProtocol(parse_uri(self.url))
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.setblocking(False)
        self.messages: list[dict[str, Any]] = []
        self.token = server.device_token("display")

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.sock_connect(self.sock, ("127.0.0.1", self.port))
        self.protocol.send_request(self.protocol.connect())
        await self._flush()
        greeted = False
        while not self.messages:
            await self._read()
            if not greeted and self.protocol.state.name == "OPEN":
                greeted = True
                hello = {"type": "hello", "token": self.token}
                self.protocol.send_text(json.dumps(hello).encode())
                await self._flush()

    async def read_to_the_end(self) -> int | None:
        """Read everything the server sent until it closed; the close code, if one came."""
        while self.protocol.state.name != "CLOSED" and await self._read():
            pass
        self.sock.close()
        return self.protocol.close_rcvd.code if self.protocol.close_rcvd else None

    async def _read(self) -> bool:
        data = await asyncio.wait_for(
            asyncio.get_running_loop().sock_recv(self.sock, 65536), RECV_TIMEOUT_S
        )
        if not data:
            self.protocol.receive_eof()
        else:
            self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self.messages.append(json.loads(bytes(event.data)))
        await self._flush()
        return bool(data)

    async def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                await asyncio.get_running_loop().sock_sendall(self.sock, chunk)


class SmallBufferServer(LiveServer):
    """A live server whose sockets buffer little, so a client that stops reading fills them
    after a few dozen events instead of a few thousand."""

    def start(self) -> LiveServer:
        listening = socket.socket()
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # inherited by accept
        listening.bind(("127.0.0.1", self.port))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [listening]}, daemon=True
        )
        return super().start()


@pytest.fixture
def small_buffer_server(settings: Settings) -> Iterator[LiveServer]:
    server = SmallBufferServer(settings).start()
    yield server
    server.stop()


async def test_a_display_that_stops_reading_does_not_hold_up_the_others(
    small_buffer_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small per-connection queue makes the overflow quick; the rule is the same at 512. It
    # still holds a whole batch of tickets committed together (8 issuers: at most 8 events at
    # once), which a display that reads keeps up with.
    monkeypatch.setattr(hub_module, "SEND_QUEUE_LIMIT", 16)
    live_server = small_buffer_server
    stuck = StuckDisplay(live_server)
    async with live_server.client("manager") as client:
        await open_counters(client, 1)
        async with display(live_server) as reader:
            await stuck.open()
            assert stuck.messages[0]["type"] == "snapshot"
            assert (await reader.receive())["type"] == "snapshot"
            start = reader.board.seq
            assert start is not None
            tickets = 320  # well past what the socket buffers and the queue hold
            await asyncio.gather(*(issue(client, tickets // 8, "stamp") for _ in range(8)))
            state = await server_board(client)
            await reader.until_seq(state["seq"])
            seqs = [f["seq"] for f in reader.frames if f["type"] == "event"]
            assert seqs == list(range(start + 1, start + tickets + 1))

            assert await stuck.read_to_the_end() == 4008
            got = [m["seq"] for m in stuck.messages if m["type"] == "event"]
            assert got == list(range(start + 1, start + 1 + len(got)))
            assert len(got) < tickets

        # It resumes from its last seq and catches up.
        epoch = stuck.messages[0]["epoch"]
        async with display(live_server, epoch, got[-1] if got else start) as resumed:
            resumed.board = Board(BRANCH)
            resumed.board.replace(epoch, start, stuck.messages[0]["board"])
            for message in stuck.messages[1:]:
                if message["type"] == "event":  # not its pings, on a slow run
                    resumed.board.apply(message)
            await resumed.until_seq(state["seq"])
            assert comparable(resumed.board.view()) == comparable(state["board"])


async def test_a_feed_refuses_an_unknown_branch_and_a_missing_hello(
    live_server: LiveServer,
) -> None:
    async with connect(f"{live_server.ws_url}/ws/branches/nowhere/board") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.send(json.dumps({"type": "hello"}))
            await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
    async with connect(f"{live_server.ws_url}/ws/branches/{BRANCH}/board") as ws:
        await ws.send(json.dumps({"type": "subscribe"}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400


async def test_a_citizen_and_an_operator_follow_their_ticket_and_counter(
    live_server: LiveServer,
) -> None:
    async with live_server.client("manager") as client:
        response = await client.post(f"{B}/tickets", json={"service_id": "id_card"})
        ticket = response.json()
        await open_counters(client, 1)
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
        async with (
            connect(f"{live_server.ws_url}/ws/tickets/{ticket['id']}") as phone,
            connect(
                f"{live_server.ws_url}/ws/branches/{BRANCH}/counters/c01",
                additional_headers={"Cookie": cookie},
            ) as console,
        ):
            await console.send(json.dumps({"type": "hello", "token": None}))
            first = json.loads(await asyncio.wait_for(phone.recv(), RECV_TIMEOUT_S))
            assert (first["type"], first["ticket"]["status"]) == ("ticket", "waiting")
            state = json.loads(await asyncio.wait_for(console.recv(), RECV_TIMEOUT_S))
            assert state["type"] == "counter"
            assert [t["id"] for t in state["waiting"]] == [ticket["id"]]

            assert (await client.post(counter(1) + "/call-next")).status_code == 200
            called = await _moved_on(phone, first["ticket"])  # past any forecast pushed
            assert called["status"] == "called"
            assert called["counter_number"] == 1
            state = json.loads(await asyncio.wait_for(console.recv(), RECV_TIMEOUT_S))
            assert state["current"]["id"] == ticket["id"] and state["waiting"] == []


@contextlib.contextmanager
def recorded_statements(server: LiveServer) -> Iterator[list[str]]:
    """The SQL the server runs meanwhile, as its engine sends it."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engines = [engine.sync_engine for engine in server.rigi.database.engines]
    for engine in engines:
        sqlalchemy.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in engines:
            sqlalchemy.event.remove(engine, "before_cursor_execute", record)


PHONES = 12
# a refresh of the forecast changes these with no event; whether a counter serves the service
# now comes from the forecast too, and one made before the counters opened says not yet
FORECAST_FIELDS = ("wait_minutes", "wait_range", "served_now", "next_open_at")


def _settled(view: dict) -> dict:
    """A ticket view without the wait forecast's figures, which a refresh may change
    between two reads with no event between them."""
    return {key: value for key, value in view.items() if key not in FORECAST_FIELDS}


async def _moved_on(phone: Any, before: dict) -> dict:
    """The phone's next view in which its place moved (status or people ahead): a refreshed
    wait forecast (its range, whether a counter serves it now) is pushed with no event of the
    branch, before or after a call's view."""
    while True:
        view = json.loads(await asyncio.wait_for(phone.recv(), RECV_TIMEOUT_S))["ticket"]
        if (view["status"], view.get("people_ahead")) != (
            before["status"],
            before.get("people_ahead"),
        ):
            return dict(view)


async def test_phones_following_their_tickets_are_refreshed_by_one_shared_read(
    live_server: LiveServer,
) -> None:
    """Each call changes every waiting ticket's people ahead, so every phone gets a new view,
    the one its holder would read over HTTP; the views are read together, not phone by phone."""
    async with live_server.client("manager") as client:
        tickets = []
        for _ in range(PHONES):
            response = await client.post(f"{B}/tickets", json={"service_id": "stamp"})
            tickets.append(response.json())
        await open_counters(client, 1, 2, 3)
        async with contextlib.AsyncExitStack() as stack:
            statements = stack.enter_context(recorded_statements(live_server))
            followed = [*tickets, tickets[-1]]  # two phones on the last ticket
            phones = [
                await stack.enter_async_context(
                    connect(f"{live_server.ws_url}/ws/tickets/{t['id']}")
                )
                for t in followed
            ]
            shown = []
            for phone, ahead in zip(phones, [*range(PHONES), PHONES - 1], strict=True):
                first = json.loads(await asyncio.wait_for(phone.recv(), RECV_TIMEOUT_S))
                assert first["ticket"]["people_ahead"] == ahead
                shown.append(first["ticket"])
            for called in range(3):
                statements.clear()
                assert (await client.post(counter(called + 1) + "/call-next")).status_code == 200
                seen = [
                    await _moved_on(phone, before)
                    for phone, before in zip(phones[called:], shown[called:], strict=True)
                ]
                shown[called:] = seen
                # Reads of whole tickets for views (the forecast's own read of the counters'
                # visits in hand, three columns, is not a phone's); a forecast pushed to the
                # phones meanwhile is one more shared read.
                reads = [
                    s for s in statements if "FROM tickets" in s and " IN (" in s and "letter" in s
                ]
                assert 1 <= len(reads) <= 3, reads  # not one per phone
                for view in seen:
                    answer = await client.get(f"/api/v1/tickets/{view['id']}")
                    # the wait forecast lands off the loop and may refine the range meanwhile
                    assert _settled(view) == _settled(answer.json())
                assert seen[0]["status"] == "called"
                assert [v["people_ahead"] for v in seen[1:]] == [
                    *range(PHONES - called - 1),
                    PHONES - called - 2,
                ]


async def test_consoles_get_their_waiting_lists_from_one_shared_read(
    live_server: LiveServer,
) -> None:
    """A call changes every console's waiting list. Each console gets the list its counter's
    HTTP route gives, but the branch's waiting tickets are read once, not once per console."""
    async with live_server.client("manager") as client:
        await open_counters(client, 1, 2, 3)
        await issue(client, 10, "stamp")
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
        async with contextlib.AsyncExitStack() as stack:
            statements = stack.enter_context(recorded_statements(live_server))
            consoles = {}
            for number in (1, 1, 2, 3):  # two screens on counter 1
                url = f"{live_server.ws_url}/ws/branches/{BRANCH}/counters/c{number:02d}"
                ws = await stack.enter_async_context(
                    connect(url, additional_headers={"Cookie": cookie})
                )
                await ws.send(json.dumps({"type": "hello", "token": None}))
                first = json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S))
                assert len(first["waiting"]) == 10
                consoles[ws] = number
            for round_ in range(3):
                statements.clear()
                assert (await client.post(counter(round_ + 1) + "/call-next")).status_code == 200
                frames = {
                    ws: json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S))
                    for ws in consoles
                }
                queue_reads = [
                    s for s in statements if "tickets.call_seq" in s and "tickets.status =" in s
                ]
                assert 1 <= len(queue_reads) <= 2, queue_reads  # not one per console
                for ws, number in consoles.items():
                    frame = frames[ws]
                    waiting = (await client.get(counter(number) + "/waiting")).json()
                    assert [t["id"] for t in frame["waiting"]] == [t["id"] for t in waiting]
                    assert len(waiting) == 10 - round_ - 1
                    state = frame["counter"]
                    assert state["counter_id"] == f"c{number:02d}"
                    in_hand = frame["current"]["id"] if frame["current"] else None
                    assert state["current_ticket_id"] == in_hand
                assert frames[next(iter(consoles))]["current"]["status"] == "called"


async def test_a_lobby_screen_never_receives_names_or_ticket_ids(
    live_server: LiveServer,
) -> None:
    """Names of staff and devices stay off public screens, and so do ticket ids: an id opens
    its holder's status page and cancels the ticket, so boards key calls by a board key."""
    async with live_server.client("manager") as manager, display(live_server) as screen:
        snapshot = await screen.receive()
        assert snapshot["type"] == "snapshot"
        made = await manager.post(
            f"{B}/devices", json={"role": "kiosk", "name": "Kiosk by the entrance"}
        )
        assert made.status_code == 201
        added = await manager.post(
            "/api/v1/users",
            json={"username": "nino.beridze", "password": "a-long-password", "role": "operator",
                  "branch": BRANCH},
        )  # fmt: skip
        assert added.status_code == 201
        ticket = (await manager.post(f"{B}/tickets", json={"service_id": "id_card"})).json()
        await open_counters(manager, 1)
        assert (await manager.post(counter(1) + "/call-next")).status_code == 200
        await screen.until_seq(snapshot["seq"] + 5)
        async with display(live_server) as later:
            assert (await later.receive())["type"] == "snapshot"
    raw = json.dumps([*screen.frames, *later.frames], ensure_ascii=False)
    assert "Kiosk by the entrance" not in raw and "nino.beridze" not in raw
    assert ticket["id"] not in raw
    kinds = [frame["kind"] for frame in screen.frames if frame["type"] == "event"]
    assert kinds == [
        "device.created", "user.created", "ticket.issued", "counter.opened", "ticket.called"
    ]  # fmt: skip  # no gap in the seq
    called = screen.frames[-1]["data"]["ticket"]
    assert (called["label"], called["key"]) == ("A001", board_key(ticket["id"]))
    assert later.board.calls[0]["key"] == called["key"]  # snapshot and events agree


HEARTBEAT_S = 0.2
# The live display answers this many heartbeats: more than the silent one is allowed to miss.
LIVE_HEARTBEATS = 6
HEARTBEAT_BOUND_S = 60  # only for a broken build: a loaded machine may slow beats a lot


@pytest.fixture
def quick_heartbeat_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(test_settings(database_url, tmp_path, heartbeat_s=HEARTBEAT_S)).start()
    yield server
    server.stop()


async def test_heartbeats_keep_a_live_display_and_drop_a_silent_one(
    quick_heartbeat_server: LiveServer,
) -> None:
    """A display that answers pings stays; one that reads but never answers is closed after
    two unanswered heartbeats (4008), like any dropped display (it resumes from its seq).

    Both are judged in heartbeats, as the server judges them, never in seconds: on a loaded
    machine a heartbeat comes late, and a wall-clock window (the display answered for ten
    heartbeats' worth of seconds) ended before the silent one was dropped, after which the live
    one, no longer answering, was dropped too."""
    server = quick_heartbeat_server
    async with display(server) as alive, display(server) as silent:
        assert (await alive.receive())["type"] == "snapshot"
        answered = 0  # pings the live display answered (its `receive` sends the pong)
        enough = asyncio.Event()

        async def answer_pings() -> None:
            nonlocal answered
            while True:
                message = json.loads(await alive.ws.recv())
                if message["type"] == "ping":
                    await alive.ws.send('{"type":"pong"}')
                    answered += 1
                    if answered >= LIVE_HEARTBEATS:
                        enough.set()

        answering = asyncio.create_task(answer_pings())
        pings = 0
        try:
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(HEARTBEAT_BOUND_S):  # a bound, so a broken build fails
                    while True:
                        message = json.loads(await silent.ws.recv())
                        pings += message["type"] == "ping"  # read, never answered
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4008, "no pong")
            assert pings == 2
            # The live display outlasts the silent one by heartbeats, not by luck of timing.
            async with asyncio.timeout(HEARTBEAT_BOUND_S):
                await enough.wait()
            assert not answering.done(), answering  # its connection never closed
        finally:
            answering.cancel()
            await asyncio.gather(answering, return_exceptions=True)
        await alive.ws.send('{"type":"pong"}')
        assert alive.ws.state.name == "OPEN"
