"""The board feed client: hello with the device token, resume-or-snapshot, announce new calls.

State rules (docs/protocol.md): events are applied idempotently by seq; a snapshot replaces the
board and announces nothing (those calls were made before this display was listening). After a
reconnect the server replays what was missed in one burst; reading all of it out would call
citizens who already went to their counters, so the burst is applied silently and only its
latest call is announced. The burst ends when the feed has been quiet for CATCH_UP_QUIET_S.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import random
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from display_client.announce import Announcement, Announcer, Call
from display_client.board import CALL_KINDS, Board, Gap, call_from_event
from display_client.config import DisplaySettings
from rigi_protocol.closecodes import AUTH_CLOSE_CODES, CLOSE_UNKNOWN, SETUP_CLOSE_CODES
from rigi_protocol.wire import compact_json

log = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 2.0
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 30.0
CATCH_UP_QUIET_S = 0.3
MAX_MESSAGE_BYTES = 1024 * 1024
PENDING_REPORTS = 32  # reports kept while disconnected; the oldest goes first


def backoff_delay(attempt: int, minimum: float, maximum: float) -> float:
    """Exponential backoff with jitter, so a hall's displays do not reconnect in lockstep
    after a server restart."""
    ceiling = min(maximum, minimum * 2**attempt)
    return random.uniform(ceiling / 2, ceiling)


class DisplayClient:
    """Keeps one branch's board from the server's feed and hands new calls to the announcer."""

    def __init__(
        self,
        settings: DisplaySettings,
        announcer: Announcer | None = None,
        *,
        reconnect_min: float = RECONNECT_MIN_S,
        reconnect_max: float = RECONNECT_MAX_S,
        catch_up_quiet: float = CATCH_UP_QUIET_S,
        on_change: Callable[[Board], None] | None = None,
    ) -> None:
        self.settings = settings
        self.announcer = announcer
        self.board = Board(settings.branch)
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.catch_up_quiet = catch_up_quiet
        self.on_change = on_change
        self.connections = 0
        self.refused: int | None = None  # the close code, while the server refuses the token
        self.connected = asyncio.Event()
        self._changed = asyncio.Condition()
        self._ws: ClientConnection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.reports: collections.deque[dict[str, Any]] = collections.deque(maxlen=PENDING_REPORTS)
        if announcer is not None:
            self._chain_announcer(announcer)

    def _chain_announcer(self, announcer: Announcer) -> None:
        """Hear about every finished announcement (on the announcer's thread)."""
        previous = announcer.on_done

        def on_done(announcement: Announcement) -> None:
            if previous is not None:
                previous(announcement)
            if not announcement.spoken and self._loop is not None:
                self._loop.call_soon_threadsafe(self._not_spoken, announcement)

        announcer.on_done = on_done

    def _not_spoken(self, announcement: Announcement) -> None:
        """A call that was not heard: mark it on the board and tell the server, so staff can
        call the citizen another way."""
        call = announcement.call
        code = announcement.error_code or "not_spoken"
        label = f"{call.letter}{call.number}"
        log.warning(
            "call %s to counter %s was NOT spoken (%s): %s",
            label, call.counter_number, code, announcement.error,
        )  # fmt: skip
        if call.key is not None:
            self.board.mark_unspoken(call.key, code)
        self.reports.append(
            {
                "type": "report",
                "code": code,
                "message": f"Call {label} to counter {call.counter_number} was not spoken: "
                f"{announcement.error}",
                "call": {"letter": call.letter, "number": call.number,
                         "counter_number": call.counter_number, "seq": call.seq},
            }
        )  # fmt: skip
        self._spawn(self._send_reports())
        self._spawn(self._notify())

    def _spawn(self, coro: Any) -> None:
        """An owned task: kept until done, its failure logged."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                log.error("display task failed", exc_info=finished.exception())

        task.add_done_callback(done)

    async def _send_reports(self) -> None:
        """Send what is pending; what cannot be sent now goes after the next hello."""
        ws = self._ws
        while ws is not None and self.reports and self.connected.is_set():
            report = self.reports[0]
            try:
                await ws.send(compact_json(report))
            except ConnectionClosed:
                return
            if self.reports and self.reports[0] is report:
                self.reports.popleft()

    async def run(self) -> None:
        """Connect, follow the feed, reconnect forever with backoff; returns only on cancel."""
        self._loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            try:
                async with connect(
                    self.settings.feed_url,
                    open_timeout=OPEN_TIMEOUT_S,
                    close_timeout=CLOSE_TIMEOUT_S,
                    max_size=MAX_MESSAGE_BYTES,
                    compression=None,
                    ping_interval=None,  # the server pings in JSON and expects JSON pongs
                ) as ws:
                    self._ws = ws
                    if await self._session(ws):
                        attempt = 0
            except asyncio.CancelledError:
                raise
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                if code in SETUP_CLOSE_CODES:
                    what = (
                        "the display token"
                        if code in AUTH_CLOSE_CODES
                        else f"branch {self.settings.branch!r}"
                        if code == CLOSE_UNKNOWN
                        else "the hello"
                    )
                    log.error("server refused %s (close %s); retrying slowly", what, code)
                    self.refused = code
                    attempt = max(attempt, 16)
                else:
                    log.info("feed closed (%s); reconnecting", code)
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
                log.warning("cannot reach %s: %s", self.settings.feed_url, exc)
            finally:
                self._ws = None
                self.connected.clear()
            delay = backoff_delay(attempt, self.reconnect_min, self.reconnect_max)
            attempt += 1
            await asyncio.sleep(delay)

    async def disconnect(self) -> None:
        """Drop the current connection (it will resume): used on a seq gap and by tests."""
        if self._ws is not None:
            await self._ws.close()

    async def _session(self, ws: ClientConnection) -> bool:
        """One connection's life; True once the server accepted the hello and sent state."""
        resuming = self.board.seq is not None
        await ws.send(
            json.dumps(
                {
                    "type": "hello",
                    "token": self.settings.token,
                    "epoch": self.board.epoch if resuming else None,
                    "after_seq": self.board.seq if resuming else None,
                }
            )
        )
        self.connections += 1
        self.connected.set()
        await self._send_reports()
        catching_up = resuming
        latest_missed: Call | None = None
        started = False
        while True:
            try:
                if catching_up:
                    # not wait_for: on Python 3.11 it can swallow a cancellation (gh-86296)
                    async with asyncio.timeout(self.catch_up_quiet):
                        raw = await ws.recv()
                else:
                    raw = await ws.recv()
            except TimeoutError:
                catching_up = False
                if latest_missed is not None:
                    log.info("after reconnect: announcing only the latest missed call")
                    self._announce(latest_missed)
                    latest_missed = None
                continue
            except ConnectionClosed:
                if not started:
                    raise
                return started
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "ping":
                await ws.send('{"type":"pong"}')
                continue
            started = True
            if kind == "snapshot":
                self.board.replace(message.get("epoch"), int(message["seq"]), message["board"])
                catching_up, latest_missed = False, None
                await self._notify()
            elif kind == "event":
                try:
                    applied = self.board.apply(message)
                except Gap as gap:
                    log.info("%s: resuming", gap)
                    await ws.close()
                    return started
                if not applied:
                    continue
                call = self._call(message)
                if call is not None:
                    if catching_up:
                        latest_missed = call
                    else:
                        self._announce(call)
                await self._notify()

    def _call(self, message: dict[str, Any]) -> Call | None:
        if message.get("kind") not in CALL_KINDS:
            return None
        entry = call_from_event(message.get("data") or {})
        try:
            return Call(
                letter=str(entry["letter"]),
                number=int(entry["number"]),
                counter_number=int(entry["counter_number"]),
                recall=message["kind"] == "ticket.recalled",
                seq=int(message["seq"]),
                key=None if entry.get("key") is None else str(entry["key"]),
            )
        except (KeyError, TypeError, ValueError):
            log.warning("call event %s lacks letter/number/counter: not announced", message["seq"])
            return None

    def _announce(self, call: Call) -> None:
        if self.announcer is not None:
            self.announcer.announce(call)

    async def _notify(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change(self.board)
            except Exception:
                log.exception("board change callback failed")
        async with self._changed:
            self._changed.notify_all()

    async def wait_for_seq(self, seq: int) -> None:
        """Wait until the board has applied `seq` (tests, tools; wrap it in a timeout)."""
        async with self._changed:
            await self._changed.wait_for(
                lambda: self.board.seq is not None and self.board.seq >= seq
            )


@contextlib.asynccontextmanager
async def running(client: DisplayClient):  # type: ignore[no-untyped-def]
    """Run the client (and its announcer) for the duration of the block."""
    if client.announcer is not None:
        client.announcer.start()
    task = asyncio.create_task(client.run(), name="display-feed")
    try:
        yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for pending in list(client._tasks):
            pending.cancel()
        await asyncio.gather(*client._tasks, return_exceptions=True)
        if client.announcer is not None:
            await asyncio.to_thread(client.announcer.stop)
