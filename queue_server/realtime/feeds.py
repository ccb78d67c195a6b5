"""WebSocket feeds: the lobby board, a counter's console, a citizen's ticket (docs/protocol.md).

Each connection: accept, read `hello`, register with the hub, send the replay or a snapshot,
then live events. The hub hands each connection its events (and a ping when the heartbeat is
due) through its listener; a reader task takes pongs; either ending ends the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from queue_server.access.credentials import ENDS_SESSIONS
from queue_server.access.policy import authorize
from queue_server.access.principal import ANONYMOUS, Principal
from queue_server.access.ratelimit import Limit
from queue_server.access.sessions import COOKIE_NAME
from queue_server.domain.numbering import ticket_label
from queue_server.errors import Overloaded, RateLimited, RigiError
from queue_server.ops.feeds import counted
from queue_server.realtime.hub import Beat, Hub, Item, Listener
from queue_server.realtime.national import NationalClient
from queue_server.realtime.nudges import Nudge
from queue_server.realtime.shared_reads import SharedReadFailed, SharedReads
from queue_server.store.events import Event, events_after, prune_events, stream_head
from queue_server.store.organisation import CHANGED as ORGANISATION_CHANGED
from queue_server.store.unspoken import record_unspoken
from rigi_protocol.closecodes import (
    CLOSE_BAD_HELLO,
    CLOSE_FORBIDDEN,
    CLOSE_RESYNC,
    CLOSE_TOO_SLOW,
    CLOSE_UNAUTHORIZED,
    CLOSE_UNKNOWN,
)
from rigi_protocol.wire import compact_json

if TYPE_CHECKING:
    from queue_server.app import Rigi

log = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 10.0  # a client that does not read cannot even take the close frame
MISSED_PONGS = 2
MAX_REPLAY = 5_000
SIGNS_OUT = ENDS_SESSIONS  # a change to a person that ends their open feeds too, at once
PING = '{"type":"ping"}'
UNSPOKEN_RATE = "30/minute"  # unspoken calls recorded per display


class Hello(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^hello$")
    token: str | None = Field(default=None, max_length=512)
    epoch: str | None = Field(default=None, max_length=64)
    after_seq: int | None = Field(default=None, ge=0)


_dumps = compact_json


async def _read_hello(websocket: WebSocket) -> Hello | None:
    try:
        raw = await asyncio.wait_for(websocket.receive_text(), HELLO_TIMEOUT_S)
        return Hello.model_validate_json(raw)
    except (TimeoutError, ValidationError, KeyError, WebSocketDisconnect):
        return None


async def close_feed(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, TimeoutError):
            await asyncio.wait_for(websocket.close(code, reason), CLOSE_TIMEOUT_S)


class Connection:
    """One client's session on a branch stream."""

    def __init__(
        self,
        websocket: WebSocket,
        listener: Listener,
        principal: Principal = ANONYMOUS,
        on_report: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> None:
        self.websocket = websocket
        self.listener = listener
        self.principal = principal
        self._on_report = on_report
        # Pings sent since the client last said anything. Counted, not timed: a connection
        # whose handler waited (a slow shared read) sent no pings meanwhile, and a client that
        # was never asked is not silent; timing it closed healthy feeds after any stall.
        self.unanswered_pings = 0
        self._on_event: Callable[[Event], Awaitable[None]]

    async def run(self, on_event: Callable[[Event], Awaitable[None]]) -> None:
        """Hand events (and heartbeats) to `on_event` as the hub offers them, and read pongs:
        one task a connection besides the ASGI one, which keeps 1,000 idle displays cheap."""
        self._on_event = on_event
        reader = asyncio.create_task(self._read())
        finished = self.listener.consume(self._handle)
        try:
            await asyncio.wait((finished, reader), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.listener.stop()
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        error = finished.exception() if finished.done() else None
        if isinstance(error, WebSocketDisconnect | OSError | RuntimeError | SharedReadFailed):
            log.debug("feed connection ended: %r", error)  # gone, or logged where it failed
        elif error is not None:
            log.warning("feed connection failed", exc_info=error)
        if self.listener.overflowed:
            # The handler may have been stuck in a send to this client: it was cancelled, and
            # the close frame goes out once the client reads again (or the close times out).
            await close_feed(self.websocket, CLOSE_TOO_SLOW, "too slow: resume from last seq")

    async def _handle(self, item: Item) -> bool:
        """Send one item; False once the connection is closed. A board's events come here
        straight from the hub (an eager listener), so nothing here may use `asyncio.timeout`
        before its first wait (see `realtime.eager`)."""
        if self.listener.ping_due:  # set by the hub's heartbeat (`Hub.beat`)
            self.listener.ping_due = False
            if self.unanswered_pings >= MISSED_PONGS:
                await close_feed(self.websocket, CLOSE_TOO_SLOW, "no pong")
                return False
            self.unanswered_pings += 1
            await self.websocket.send_text(PING)
        if isinstance(item, Beat):
            return True
        if item is None:
            await close_feed(self.websocket, CLOSE_RESYNC, "resync: resume from last seq")
            return False
        if item.seq <= self.listener.last_seq:
            return True
        if item.kind == "device.revoked" and item.data.get("device_id") == self.principal.id:
            await close_feed(self.websocket, CLOSE_FORBIDDEN, "device revoked")
            return False
        if item.kind in SIGNS_OUT and item.data.get("user_id") == self.principal.id:
            await close_feed(self.websocket, CLOSE_FORBIDDEN, f"signed out: {SIGNS_OUT[item.kind]}")
            return False
        self.listener.last_seq = item.seq
        await self._on_event(item)
        return True

    async def _read(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            self.unanswered_pings = 0
            report = _log_report(self.principal, message.get("text"))
            if report is not None and self._on_report is not None:
                try:
                    await self._on_report(report)
                except Exception:  # a report lost must not end the display's feed
                    log.exception("recording %s's report failed", self.principal.actor)


REPORT_MAX_CHARS = 500


def _log_report(principal: Principal, text: str | None) -> dict[str, Any] | None:
    """A device's report (e.g. a display that could not speak a call) goes to the server's
    log at warning level, where staff monitoring sees it; returns the report."""
    if not text or '"report"' not in text:
        return None
    with contextlib.suppress(ValueError, AttributeError):
        report = json.loads(text)
        if report.get("type") == "report":
            log.warning(
                "%s reports %s: %s",
                principal.actor,
                str(report.get("code"))[:64],
                str(report.get("message"))[:REPORT_MAX_CHARS],
            )
            return report  # type: ignore[no-any-return]
    return None


class UnspokenCall(BaseModel):
    """The call a display reports as not spoken (display_client/client.py `_not_spoken`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    letter: str = Field(pattern="^[A-Z]$")
    number: int = Field(ge=0, le=9_999)
    counter_number: int = Field(ge=0, le=9_999)


async def _record_unspoken(rigi: Rigi, branch: str, principal: Principal, report: Any) -> None:
    """Tell staff of a call a display could not speak: a `display.unspoken` event (the live
    view shows it as an alert). Bounded per display, so a faulty one cannot flood the log."""
    try:
        call = UnspokenCall.model_validate(report.get("call"))
    except ValidationError:
        return
    try:
        await rigi.limiter.hit(f"unspoken:{principal.id}", Limit.parse(UNSPOKEN_RATE))
    except RateLimited:
        return
    data = {
        "display": principal.name or principal.id,
        "label": ticket_label(call.letter, call.number),
        "counter_number": call.counter_number,
        "code": str(report.get("code") or "not_spoken")[:64],
    }
    now = rigi.store.clock()
    await rigi.database.transaction(
        lambda c: record_unspoken(c, branch, data, now, principal.actor)
    )


def _rigi(websocket: WebSocket) -> Any:
    return websocket.app.state.rigi


async def open_feed(
    websocket: WebSocket, branch: str | None, access: str
) -> tuple[Hello, Principal] | tuple[None, None]:
    """Accept, check the branch (None: a feed of the whole network), read the hello and
    authorize its sender (a device token in the hello, or the person's session cookie); close
    with a code when any of it is wrong."""
    await websocket.accept()
    try:
        if branch is not None:
            _rigi(websocket).catalog.branch(branch)
    except RigiError as error:
        await close_feed(websocket, CLOSE_UNKNOWN, error.code)
        return None, None
    hello = await _read_hello(websocket)
    if hello is None:
        await close_feed(websocket, CLOSE_BAD_HELLO, "the first message must be a hello")
        return None, None
    principal = websocket.scope.get("rigi.principal", ANONYMOUS)
    if hello.token:
        principal = await _rigi(websocket).accounts.device_for_token(hello.token) or ANONYMOUS
    try:
        authorize(principal, access, branch)
    except RigiError as error:
        await close_feed(websocket, CLOSE_UNAUTHORIZED if error.status == 401 else CLOSE_FORBIDDEN,
                     error.code)  # fmt: skip
        return None, None
    return hello, principal


async def board_feed(websocket: WebSocket) -> None:
    """Lobby displays: replay from the client's last seq, or a snapshot, then live events."""
    branch = websocket.path_params["branch"]
    hello, principal = await open_feed(websocket, branch, "board")
    if hello is None or principal is None:
        return
    rigi = _rigi(websocket)
    hub: Hub = rigi.hub
    listener = Listener(branch, eager=True)  # its handler is a plain send
    async with hub.listen(listener):
        replay = await _replay(rigi, branch, hello)
        if replay is None:
            board, seq, epoch = await rigi.store.snapshot(branch)
            listener.last_seq, listener.epoch = seq, epoch
            await websocket.send_text(
                _dumps({"type": "snapshot", "epoch": epoch, "seq": seq, "board": board})
            )
        else:
            listener.last_seq = hello.after_seq or 0
            for event in replay:
                listener.last_seq = event.seq
                await websocket.send_text(event.public_encoded)

        async def send(event: Event) -> None:
            await websocket.send_text(event.public_encoded)

        on_report = functools.partial(_record_unspoken, rigi, branch, principal)
        await Connection(websocket, listener, principal, on_report).run(send)


async def _replay(rigi: Rigi, branch: str, hello: Hello) -> list[Event] | None:
    """The events the client missed, or None when it must take a snapshot instead."""
    if hello.epoch is None or hello.after_seq is None:
        return None
    async with rigi.database.read() as conn:
        head = await stream_head(conn, branch)
        if head is None or head.epoch != hello.epoch or hello.after_seq > head.seq:
            return None
        missed = await events_after(conn, branch, hello.after_seq, MAX_REPLAY)
    return list(missed) if missed is not None else None


async def ticket_feed(websocket: WebSocket) -> None:
    """A citizen's phone: its own ticket, refreshed whenever the branch moves."""
    rigi = _rigi(websocket)
    await websocket.accept()
    try:
        view = await rigi.ticket_view(websocket.path_params["ticket_id"])
    except Overloaded:
        raise  # not an unknown ticket: the feed closes with "try again later" (ops.feeds)
    except RigiError as error:
        await close_feed(websocket, CLOSE_UNKNOWN, error.code)
        return
    with rigi.nudges.watch(view["id"]) as nudge:
        await _follow(websocket, rigi.phones, view["branch"], view["id"], nudge=nudge)


async def counter_feed(websocket: WebSocket) -> None:
    """An operator's console: the counter's state and its waiting list, kept current."""
    branch = websocket.path_params["branch"]
    counter = websocket.path_params["counter"]
    hello, principal = await open_feed(websocket, branch, "operator")
    if hello is None or principal is None:
        return
    rigi = _rigi(websocket)
    try:
        rigi.catalog.counter(branch, counter)
    except RigiError as error:
        await close_feed(websocket, CLOSE_UNKNOWN, error.code)
        return
    await _follow(websocket, rigi.consoles, branch, counter, principal)


async def _follow(
    websocket: WebSocket,
    reads: SharedReads,
    branch: str,
    key: str,
    principal: Principal = ANONYMOUS,
    nudge: Nudge | None = None,
) -> None:
    """Send the client its frame for `key` now, and again whenever an event changes it, or
    `nudge` is set (a phone's forecast moved). It is registered with the hub before its first
    frame is read, so no change falls between."""
    listener = Listener(branch)
    sending = asyncio.Lock()  # a read and its send, so an older frame never follows a newer
    with reads.follow(branch, key):
        async with _rigi(websocket).hub.listen(listener):
            last = await reads.read_now(branch, key)
            if last is None:
                await close_feed(websocket, CLOSE_UNKNOWN, "gone")
                return
            await websocket.send_text(last)

            async def send_if_new(current: str | None) -> None:
                nonlocal last
                if current is not None and current != last:
                    last = current
                    await websocket.send_text(current)

            async def refresh(event: Event) -> None:
                if event.kind == ORGANISATION_CHANGED:  # the page reads its boot data again
                    async with sending:
                        await websocket.send_text(_dumps({"type": "organisation"}))
                if _overtaken(listener):
                    return  # more events waiting: refresh once, after the last of them
                # (a heartbeat's BEAT queued meanwhile refreshes nothing, so it cannot stand in)
                async with sending:
                    current = await reads.view(key, after=event)
                    # An event that came in during the read may be the client's own next action,
                    # whose answer it may already hold: this older frame would undo it on screen
                    # (a console showing "called" after its "start" answered). Its refresh sends.
                    if not _overtaken(listener):
                        await send_if_new(current)

            async def nudged(nudge: Nudge) -> None:
                while True:
                    await nudge.wait()
                    nudge.clear()
                    async with sending:
                        await send_if_new(await reads.view_since(branch, key, nudge.at))

            pushing = asyncio.create_task(nudged(nudge)) if nudge is not None else None
            try:
                await Connection(websocket, listener, principal).run(refresh)
            finally:
                if pushing is not None:
                    pushing.cancel()
                    await asyncio.gather(pushing, return_exceptions=True)


def _overtaken(listener: Listener) -> bool:
    """A newer event waits for this listener: a frame read for an older one is already old."""
    return any(isinstance(item, Event) for item in listener.pending)


def follower_reads(rigi: Rigi) -> tuple[SharedReads, SharedReads]:
    """The phones' and the consoles' shared reads; each gives a client its frame, encoded once
    however many clients show the same (several screens on one counter)."""

    async def tickets(branch: str, ticket_ids: frozenset[str]) -> dict[str, str]:
        views = await rigi.ticket_views(ticket_ids)
        return {i: _dumps({"type": "ticket", "ticket": view}) for i, view in views.items()}

    async def consoles(branch: str, counter_ids: frozenset[str]) -> dict[str, str]:
        states = await rigi.store.consoles(branch, counter_ids)
        return {c: _dumps({"type": "counter", **state}) for c, state in states.items()}

    return SharedReads(tickets), SharedReads(consoles)


async def national_feed(websocket: WebSocket) -> None:
    """The central office: every branch's floor on one feed (`realtime/national.py`);
    administrators only."""
    hello, principal = await open_feed(websocket, None, "admin")
    if hello is None or principal is None:
        return
    rigi = _rigi(websocket)
    session = rigi.sessions.read(websocket.cookies.get(COOKIE_NAME, ""))
    if session is None or session.user_id != principal.id:  # an admin is a person, by cookie
        await close_feed(websocket, CLOSE_UNAUTHORIZED, "sign in")
        return
    floor = rigi.national
    client = NationalClient(websocket, rigi.settings.heartbeat_s, session.user_id, session.version)
    await floor.join(client)
    sender = asyncio.create_task(client.send_all())
    reader = asyncio.create_task(client.read_all())
    try:
        await asyncio.wait((sender, reader, client.ended), return_when=asyncio.FIRST_COMPLETED)
    finally:
        await floor.leave(client)
        for task in (sender, reader):
            task.cancel()
        await asyncio.gather(sender, reader, return_exceptions=True)
    if client.ended.done():
        await close_feed(websocket, *client.ended.result())


def feed_routes() -> list[WebSocketRoute]:
    return [
        WebSocketRoute("/ws/branches/{branch}/board", counted("board", board_feed)),
        WebSocketRoute(
            "/ws/branches/{branch}/counters/{counter}", counted("counter", counter_feed)
        ),
        WebSocketRoute("/ws/tickets/{ticket_id}", counted("ticket", ticket_feed)),
        WebSocketRoute("/ws/national", counted("national", national_feed)),
    ]


@contextlib.asynccontextmanager
async def realtime(rigi: Rigi):  # type: ignore[no-untyped-def]
    """Lifespan part: connect the bus, start the hub, publish committed events through it."""
    from queue_server.bus import create_bus

    settings = rigi.settings
    bus = create_bus(settings.bus_url, channel_prefix=settings.bus_channel_prefix)
    await bus.connect()
    hub = Hub(bus, rigi.database)
    rigi.hub = hub
    rigi.phones, rigi.consoles = follower_reads(rigi)
    rigi.store.forecasts.listeners.append(rigi.nudges.changed)
    rigi.database.listeners.append(hub.publish)
    pruning = asyncio.create_task(_prune_history(rigi), name="prune-event-history")
    heartbeat = asyncio.create_task(hub.beat(settings.heartbeat_s), name="heartbeat")
    try:
        yield hub
    finally:
        for task in (pruning, heartbeat):
            task.cancel()
        await asyncio.gather(pruning, heartbeat, return_exceptions=True)
        rigi.database.listeners.remove(hub.publish)
        rigi.store.forecasts.listeners.remove(rigi.nudges.changed)
        await hub.close()
        await bus.disconnect()


PRUNE_INTERVAL_S = 600.0


async def _prune_history(rigi: Rigi) -> None:
    """Keep the newest `history_events` events per branch for replay; a client whose gap is
    older resyncs by snapshot. Events of staff stay in the audit log only as long as this
    history, so size `RIGI_HISTORY_EVENTS` for both."""
    while True:
        try:
            pruned = 0
            keep = rigi.settings.history_events
            for branch in rigi.catalog.branches:
                pruned += await rigi.database.transaction(
                    functools.partial(prune_events, branch_id=branch, keep=keep, kept_after=True)
                )
            if pruned:
                log.info("pruned %d old events", pruned)
        except Exception:
            log.exception("pruning the event history failed; trying again later")
        await asyncio.sleep(PRUNE_INTERVAL_S)
