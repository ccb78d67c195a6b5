"""`/ws/printers`: the server's side of the printer agent's protocol (docs/printing.md).

One connection per agent: a hello with its token and printers, then jobs out and acks and
health in. Four tasks per connection — reading, following the branch's `printer.job` events,
re-sending jobs whose ack is overdue, pinging — end together.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from queue_server.access.principal import Role
from queue_server.ops.feeds import counted
from queue_server.printing.jobs import PrintStatus
from queue_server.printing.service import PrintService
from queue_server.store.events import Event
from rigi_protocol.closecodes import CLOSE_BAD_HELLO, CLOSE_FORBIDDEN, CLOSE_TOO_SLOW
from rigi_protocol.closecodes import CLOSE_UNAUTHORIZED as CLOSE_BAD_TOKEN
from rigi_protocol.wire import compact_json

if TYPE_CHECKING:
    from queue_server.app import Rigi

log = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 10.0
PING_INTERVAL_S = 15.0
MISSED_PONGS = 2
SEND_TIMEOUT_S = 10.0
SLUG = r"^[A-Za-z0-9_.:-]{1,64}$"


class DeclaredPrinter(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(pattern=SLUG)
    kiosks: list[str] = Field(default_factory=list, max_length=64)
    width: int | None = Field(default=None, ge=0, le=4096)


class PrinterHello(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^hello$")
    token: str = Field(min_length=1, max_length=512)
    branch: str | None = Field(default=None, pattern=SLUG)
    printers: list[DeclaredPrinter] = Field(min_length=1, max_length=32)


_dumps = compact_json


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code, reason)


class AgentRefused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def authenticate_agent(rigi: Rigi, hello: PrinterHello) -> str:
    """The branch a printer agent serves, from its printer device token. Raises AgentRefused:
    an agent must present a live printer token, for the branch its hello names if any."""
    device = await rigi.accounts.device_for_token(hello.token)
    if device is None:
        raise AgentRefused(CLOSE_BAD_TOKEN, "bad token")
    if device.role is not Role.PRINTER:
        raise AgentRefused(CLOSE_FORBIDDEN, "not a printer token")
    if not device.branch:
        raise AgentRefused(CLOSE_FORBIDDEN, "the token names no branch")
    if hello.branch is not None and hello.branch != device.branch:
        raise AgentRefused(CLOSE_FORBIDDEN, "the token belongs to another branch")
    return device.branch


async def branch_kiosks(rigi: Rigi, branch: str) -> list[dict[str, str]]:
    """The branch's kiosks that hold a live token: id and name."""
    accounts = getattr(rigi, "accounts", None)
    if accounts is None:
        return []
    return [
        {"id": d["id"], "name": d["name"]}
        for d in await accounts.list_devices(branch)
        if d["role"] == "kiosk" and not d["revoked_at"]
    ]


def resolve_kiosks(hello: PrinterHello, kiosks: list[dict[str, str]]) -> list[str]:
    """An agent may name a printer's kiosks by device id or by name (docs/printing.md): print
    jobs carry the id, so names become ids here. Returns what matched no kiosk."""
    by_name = {k["name"].casefold(): k["id"] for k in kiosks}
    ids = {k["id"] for k in kiosks}
    unknown: list[str] = []
    for printer in hello.printers:
        resolved = []
        for kiosk in printer.kiosks:
            if kiosk not in ids and kiosk.casefold() not in by_name:
                unknown.append(kiosk)
            resolved.append(kiosk if kiosk in ids else by_name.get(kiosk.casefold(), kiosk))
        printer.kiosks = resolved
    return unknown


class AgentConnection:
    """One printer agent's session: its branch, its printers, its socket."""

    def __init__(
        self, websocket: WebSocket, service: PrintService, branch: str, hello: PrinterHello
    ) -> None:
        self.websocket = websocket
        self.service = service
        self.branch = branch
        self.declared = [p.model_dump() for p in hello.printers]
        self.printer_ids = frozenset(p.id for p in hello.printers)
        self._send_lock = asyncio.Lock()
        self._last_heard = asyncio.get_running_loop().time()

    @property
    def rigi(self) -> Rigi:
        return self.service.rigi

    async def send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await asyncio.wait_for(self.websocket.send_text(_dumps(message)), SEND_TIMEOUT_S)

    async def send_jobs(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            await self.send(message)
        await self.service.jobs.mark_sent([m["job"]["id"] for m in messages])

    async def run(self) -> None:
        jobs = self.service.jobs
        await jobs.connect_agent(self.branch, self.declared)
        self.service.attach(self)
        log.info("printer agent for %s connected: %s", self.branch, sorted(self.printer_ids))
        try:
            async with contextlib.AsyncExitStack() as stack:
                listener = await self._listen(stack)
                await self.send_jobs(await jobs.pending(self.branch, self.printer_ids))
                tasks = [
                    asyncio.create_task(self._read()),
                    asyncio.create_task(self._ping()),
                    asyncio.create_task(self._resend_overdue()),
                ]
                if listener is not None:
                    tasks.append(asyncio.create_task(self._follow(listener)))
                try:
                    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                for task in done:
                    if not task.cancelled() and task.exception() is not None:
                        log.error(
                            "printer agent connection of %s failed",
                            self.branch,
                            exc_info=task.exception(),
                        )
        finally:
            released = self.service.detach(self)
            log.info("printer agent for %s disconnected", self.branch)
            if released:
                with contextlib.suppress(Exception):
                    await jobs.disconnect_agent(self.branch, released)

    async def _listen(self, stack: contextlib.AsyncExitStack) -> Any:
        """Follow the branch's `printer.job` events for our printers, if the hub runs."""
        hub = self.rigi.hub
        if hub is None:
            return None
        from queue_server.realtime.hub import Listener

        def for_us(event: Event) -> bool:
            return (
                event.kind == "printer.job"
                and event.data.get("printer_id") in self.printer_ids
                and event.data.get("print", {}).get("status") == PrintStatus.QUEUED
            )

        listener = Listener(self.branch, accepts=for_us)
        await stack.enter_async_context(hub.listen(listener))
        return listener

    async def _follow(self, listener: Any) -> None:
        """Send each queued job for our printers as its event comes. Heartbeats are this
        connection's own (`_ping`), so the hub's are skipped."""
        from queue_server.realtime.hub import Beat

        async def on_item(item: Any) -> bool:
            if item is None:
                return False  # the hub lost track (a bus outage): reconnecting re-sends all
            if not isinstance(item, Beat):
                listener.last_seq = max(listener.last_seq, item.seq)
                message = await self.service.jobs.queued_message(item.data["ticket_id"])
                if message is not None:
                    await self.send_jobs([message])
            return True

        try:
            await listener.consume(on_item)
        finally:
            listener.stop()  # this connection is ending: no job is sent on after it
        await _close(self.websocket, CLOSE_TOO_SLOW, "resync")

    async def _resend_overdue(self) -> None:
        jobs = self.service.jobs
        while True:
            await asyncio.sleep(self.service.resend_check_s)
            overdue = await jobs.pending(
                self.branch,
                self.printer_ids,
                sent_before=jobs.clock() - self.service.ack_timeout,
            )
            if overdue:
                log.info("re-sending %d print jobs without an ack", len(overdue))
                await self.send_jobs(overdue)

    async def _ping(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(PING_INTERVAL_S)
            if loop.time() - self._last_heard > PING_INTERVAL_S * MISSED_PONGS:
                await _close(self.websocket, CLOSE_TOO_SLOW, "no pong")
                return
            await self.send({"type": "ping"})

    async def _read(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            self._last_heard = asyncio.get_running_loop().time()
            text = message.get("text")
            if text is None:
                continue
            try:
                await self._handle(json.loads(text))
            except (ValueError, TypeError, KeyError, AttributeError):
                log.warning("printer agent of %s sent a malformed frame", self.branch)

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        jobs = self.service.jobs
        if kind == "ack":
            await jobs.acknowledge(self.branch, message)
        elif kind == "health":
            printer_id = message["printer"]
            if printer_id not in self.printer_ids:
                return
            await jobs.record_health(
                self.branch,
                printer_id,
                online=bool(message.get("online")),
                paper=str(message.get("paper") or "unknown"),
            )
        elif kind == "ping":
            await self.send({"type": "pong"})
        elif kind == "kiosks":  # the agent checks its configured kiosks against these
            kiosks = await branch_kiosks(self.rigi, self.branch)
            await self.send({"type": "kiosks", "branch": self.branch, "kiosks": kiosks})


async def printers_feed(websocket: WebSocket) -> None:
    """`/ws/printers`: authenticate the agent by its hello, then serve its printers."""
    await websocket.accept()
    rigi: Rigi = websocket.app.state.rigi
    service = rigi.printing
    try:
        raw = await asyncio.wait_for(websocket.receive_text(), HELLO_TIMEOUT_S)
        hello = PrinterHello.model_validate_json(raw)
    except (TimeoutError, ValidationError, KeyError, WebSocketDisconnect):
        await _close(websocket, CLOSE_BAD_HELLO, "the first message must be a hello")
        return
    if service is None:
        await _close(websocket, 1013, "printing is not running")
        return
    try:
        branch = await authenticate_agent(rigi, hello)
    except AgentRefused as refused:
        log.warning("refused a printer agent: %s", refused.reason)
        await _close(websocket, refused.code, refused.reason)
        return
    kiosks = await branch_kiosks(rigi, branch)
    unknown = resolve_kiosks(hello, kiosks)
    if unknown and kiosks:
        log.warning(
            "a printer agent of %s names kiosks that match none of the branch's: %s",
            branch,
            ", ".join(unknown),
        )
    await AgentConnection(websocket, service, branch, hello).run()


def printer_feed_route() -> WebSocketRoute:
    return WebSocketRoute("/ws/printers", counted("printer", printers_feed))
