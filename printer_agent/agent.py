"""The agent: a WebSocket client of queue_server's `/ws/printers` and one worker per printer.

Jobs arrive, go into the journal, and each printer's task takes them from there in order. The
blocking python-escpos calls run in that printer's single worker thread; the event loop only
moves messages. Results are acknowledged after printing and re-sent after every reconnect until
the server has them, so a lost connection never loses a ticket.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

from printer_agent import hooks
from printer_agent.config import AgentConfig, PrinterConfig
from printer_agent.device import Health, PrinterDevice
from printer_agent.errors import BadJob, PrinterAgentError, PrinterUnavailable, PrintFailed
from printer_agent.journal import FAILED, Journal, JournalEntry
from printer_agent.layout import Fonts, TicketLayout, layout_ticket
from printer_agent.ticket import ticket_from_job
from rigi_protocol.closecodes import AUTH_CLOSE_CODES, SETUP_CLOSE_CODES
from rigi_protocol.wire import compact_json

log = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 2.0
RECONNECT_MIN_S = 0.2
RECONNECT_MAX_S = 10.0
MAX_MESSAGE_BYTES = 256 * 1024


class PrinterWorker:
    """One printer: its device, its thread, its task, its last reported health."""

    def __init__(self, agent: PrinterAgent, config: PrinterConfig) -> None:
        self.agent = agent
        self.config = config
        self.device = PrinterDevice(config)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"printer-{config.id}")
        self.wake = asyncio.Event()
        self.health: Health | None = None

    async def _in_thread(self, func: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, func, *args)

    async def _idle(self, seconds: float) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that lands as its wait ends (CPython gh-86296), and this loop polls every 50 ms, so
        # stopping the agent hung now and then (a 120 s CI timeout).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.wake.wait()
        self.wake.clear()

    async def check_health(self) -> Health:
        health: Health = await self._in_thread(self.device.health)
        if health != self.health:
            self.health = health
            log.info("printer %s: online=%s paper=%s", self.config.id, health.online, health.paper)
            await self.agent.send(self.health_message())
        return health

    def health_message(self) -> dict[str, Any]:
        health = self.health or Health(online=False)
        return {
            "type": "health",
            "printer": self.config.id,
            "online": health.online,
            "paper": health.paper,
        }

    async def run(self) -> None:
        """Print pending jobs in order; wait while the printer is offline or out of paper."""
        journal = self.agent.journal
        while True:
            entry: JournalEntry | None = await self.agent.in_journal(
                journal.next_pending, self.config.id
            )
            if entry is None:
                await self._idle(self.agent.config.health_interval)
                if not self.wake.is_set():
                    await self.check_health()
                continue
            health = await self.check_health()
            if not health.ready:
                await self._idle(self.agent.config.retry_delay)
                continue
            await self._print(entry)

    def _layout(self, entry: JournalEntry) -> TicketLayout:
        ticket = ticket_from_job(entry.job_id, entry.payload.get("ticket") or {})
        footer = self.config.footer if self.config.footer is not None else self.agent.config.footer
        return layout_ticket(
            ticket,
            width=self.config.width,
            fonts=self.agent.fonts,
            footer=footer,
            reprint=entry.must_say_reprint,
        )

    def _print_blocking(self, entry: JournalEntry) -> None:
        """Lay out and print in the worker thread, with the journal marks around the bytes."""
        layout = self._layout(entry)
        hooks.pause("before_print")
        self.device.print_layout(layout, lambda: self.agent.journal.mark_printing(entry.job_id))
        hooks.pause("during_print")
        self.agent.journal.mark_printed(entry.job_id)

    async def _print(self, entry: JournalEntry) -> None:
        journal = self.agent.journal
        try:
            await self._in_thread(self._print_blocking, entry)
        except PrinterUnavailable as exc:
            log.info("printer %s unavailable, job %s waits: %s", self.config.id, entry.job_id, exc)
            await self.check_health()
            await self._idle(self.agent.config.retry_delay)
            return
        except Exception as exc:
            error = exc if isinstance(exc, PrinterAgentError) else PrintFailed(str(exc))
            limit = 1 if isinstance(exc, BadJob) else self.agent.config.max_attempts
            set_aside = await self.agent.in_journal(
                journal.record_failure, entry.job_id, error.code, error.message, limit
            )
            log.warning(
                "job %s on %s failed (%s): %s%s",
                entry.job_id,
                self.config.id,
                error.code,
                error.message,
                " — set aside" if set_aside else "",
            )
            if set_aside:
                await self.agent.acknowledge(entry.job_id)
            else:
                await self._idle(self.agent.config.retry_delay)
            return
        log.info(
            "printed job %s on %s%s",
            entry.job_id,
            self.config.id,
            " (REPRINT)" if entry.must_say_reprint else "",
        )
        await hooks.pause_async("after_print")
        await self.agent.acknowledge(entry.job_id)
        await hooks.pause_async("after_ack")


class PrinterAgent:
    """Owns the journal, the printers' workers and the connection to the server."""

    def __init__(
        self,
        config: AgentConfig,
        fonts: Fonts,
        *,
        on_send: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.config = config
        self.fonts = fonts
        self.journal = Journal(config.journal)
        self.workers = {p.id: PrinterWorker(self, p) for p in config.printers}
        self._journal_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._ws: ClientConnection | None = None
        self._on_send = on_send
        self._tasks: set[asyncio.Task[None]] = set()
        self.connected = asyncio.Event()
        # Set when the agent must not go on (a configured kiosk matches nothing on the server
        # and `agent.unknown_kiosks` is "refuse"); `printer-agent run` exits with it.
        self.refused: PrinterAgentError | None = None
        self.refusal = asyncio.Event()

    async def in_journal(self, func: Callable[..., Any], *args: Any) -> Any:
        """SQLite with synchronous=FULL fsyncs: keep it off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._journal_executor, func, *args)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("agent task %s died", task.get_name(), exc_info=task.exception())

    @contextlib.asynccontextmanager
    async def running(self, *, connect_to_server: bool = True) -> AsyncIterator[PrinterAgent]:
        """Start the printers (and the server connection); stop everything on exit."""
        await self.in_journal(self.journal.prune)
        for worker in self.workers.values():
            self._spawn(worker.run(), f"printer-{worker.config.id}")
        if connect_to_server:
            self._spawn(self._connection_loop(), "server-connection")
        try:
            yield self
        finally:
            ws = self._ws
            if ws is not None:  # a clean 1000 close, not the 1011 a cancelled task would send
                await ws.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for worker in self.workers.values():
                await worker._in_thread(worker.device.close)
                worker.executor.shutdown(wait=True)
            await self.in_journal(self.journal.close)
            self._journal_executor.shutdown(wait=True)

    async def send(self, message: dict[str, Any]) -> bool:
        """Send to the server if connected; False means it must be sent again later."""
        if self._on_send is not None:
            self._on_send(message)
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(compact_json(message))
        except websockets.ConnectionClosed:
            return False
        return True

    async def acknowledge(self, job_id: str) -> None:
        """Report a job's result; the journal remembers whether the server got it."""
        entry: JournalEntry | None = await self.in_journal(self.journal.get, job_id)
        if entry is None:
            return
        message: dict[str, Any] = {"type": "ack", "job_id": job_id, "printer": entry.printer_id}
        if entry.state == FAILED:
            message["result"] = "failed"
            message["error"] = {"code": entry.error_code, "message": entry.error_message}
        else:
            message["result"] = "printed"
            message["reprint"] = entry.must_say_reprint
        if await self.send(message):
            await self.in_journal(self.journal.mark_acked, job_id)

    async def submit(self, message: dict[str, Any]) -> None:
        """Take one `print` message: journal it, then wake its printer (or answer a repeat)."""
        job = message.get("job") or {}
        job_id = str(job.get("id") or "").strip()
        if not job_id:
            log.warning("print message without job.id ignored")
            return
        printer = self.config.printer_for(job.get("kiosk"), message.get("printer"))
        accept = functools.partial(self.journal.accept, reprint=bool(job.get("reprint")))
        fresh, entry = await self.in_journal(accept, job_id, printer.id, job)
        if fresh:
            self.workers[printer.id].wake.set()
        elif entry.state in ("printed", FAILED):
            await self.acknowledge(job_id)  # a repeat of a finished job: answer, never reprint

    async def _handle(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            log.warning("server sent a frame that is not JSON")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "print":
            await self.submit(message)
        elif kind == "ping":
            await self.send({"type": "pong"})
        elif kind == "kiosks":
            self.check_kiosks(message.get("branch"), message.get("kiosks") or [])
        elif kind == "error":
            log.error("server error: %s", message.get("error") or message)

    def check_kiosks(self, branch: Any, kiosks: list[dict[str, Any]]) -> None:
        """Every configured kiosk must be a kiosk of the branch, by id or by name: a printer
        whose kiosk matches nothing would show as connected and never print."""
        known = {str(k.get("id")) for k in kiosks} | {str(k.get("name")).casefold() for k in kiosks}
        unknown = [
            f"printers[{printer.id}].kiosks: {kiosk!r}"
            for printer in self.config.printers
            for kiosk in printer.kiosks
            if kiosk not in known and kiosk.casefold() not in known
        ]
        if not unknown:
            return
        names = ", ".join(f"{k.get('name')} (id {k.get('id')})" for k in kiosks) or "none"
        error = PrinterAgentError(
            f"{'; '.join(unknown)} matches no kiosk of branch {branch} on the server "
            f"(its kiosks: {names}); name a kiosk by its name or id",
            code="unknown_kiosk",
        )
        log.error("%s: %s", error.code, error.message)
        if self.config.unknown_kiosks == "refuse":
            self.refused = error
            self.refusal.set()

    def hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "token": self.config.token,
            "printers": [
                {"id": p.id, "kiosks": list(p.kiosks), "width": p.width}
                for p in self.config.printers
            ],
        }

    async def _connection_loop(self) -> None:
        """Stay connected: reconnect with bounded back-off, logging every failed attempt."""
        delay = RECONNECT_MIN_S
        while True:
            try:
                async with connect(
                    self.config.server_url,
                    open_timeout=OPEN_TIMEOUT_S,
                    close_timeout=CLOSE_TIMEOUT_S,
                    max_size=MAX_MESSAGE_BYTES,
                    compression=None,
                ) as ws:
                    await ws.send(compact_json(self.hello()))
                    await ws.send(compact_json({"type": "kiosks"}))
                    self._ws = ws
                    self.connected.set()
                    log.info("connected to %s", self.config.server_url)
                    delay = RECONNECT_MIN_S
                    await self._after_connect()
                    async for raw in ws:
                        try:
                            await self._handle(raw)
                        except Exception:  # one bad message must not end the connection
                            log.exception("handling a server message failed")
            except websockets.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                if code in AUTH_CLOSE_CODES:
                    log.error(
                        "server refused the printer token (close %s: %s); check RIGI_PRINTER_TOKEN",
                        code,
                        exc.rcvd.reason if exc.rcvd else "",
                    )
                elif code in SETUP_CLOSE_CODES:
                    reason = exc.rcvd.reason if exc.rcvd else ""
                    log.error("server refused the agent (close %s: %s)", code, reason)
                else:
                    log.warning("connection to server closed: %s", exc)
            except (
                OSError,
                TimeoutError,
                websockets.InvalidHandshake,
                websockets.InvalidURI,
            ) as exc:
                log.warning(
                    "cannot reach %s: %s; retrying in %.1f s", self.config.server_url, exc, delay
                )
            finally:
                self._ws = None
                self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _after_connect(self) -> None:
        """Tell a (re)connected server every printer's health and every result it may lack."""
        for worker in self.workers.values():
            if worker.health is not None:
                await self.send(worker.health_message())
        for entry in await self.in_journal(self.journal.unacknowledged):
            await self.acknowledge(entry.job_id)
