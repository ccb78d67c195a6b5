"""A timeline of each event's way from the request to the sockets, for finding where a slow
delivery spent its time (the national day's slow 1%). Off unless `RIGI_TIMELINE_DIR` is set;
then each process appends JSON lines to `timeline-<pid>.jsonl` there, stamped with
`time.perf_counter()` (CLOCK_MONOTONIC on Linux: one clock for every process on the machine, so
a benchmark's clients compare their own stamps with these).

What is written, one list per line (the first item says what):
- `commit` branch seq kind key request_started committed: a transaction's event as its
  listeners are told (`key` is the public board key of a called ticket, else null);
- `published` branch seq at: handed to the bus (stamped as it is handed, since a reader in
  another process may have it before the publish returns);
- `bus` branch seq received taken: read off Redis by the bus's reader, then taken by the hub;
- `offer` branch seq started ended listeners waiting: the hub's fan-out in this process
  (`waiting`: listeners whose send went on in a task: every non-eager one, and a lobby board
  whose client was not reading);
- `gc` generation started ended [survivors frozen]: a collection of the interpreter's garbage
  collector (a full one also says how many objects it left in the oldest generation, their
  most common types, and how many are frozen out of its reach, `queue_server/ops/heap.py`);
- `stall` started ended: the event loop ran this late (over STALL_S);
- `stack` at thread frames: what a thread was running while the loop was late, sampled by a
  watchdog thread (the main thread, and every other thread that is not waiting).

Nothing here holds a ticket id, a name or a token: board keys are what lobby screens show.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextvars import ContextVar
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from queue_server.domain.public import board_key

if TYPE_CHECKING:
    from queue_server.app import Rigi
    from queue_server.store.events import Event

log = logging.getLogger(__name__)

FLUSH_S = 1.0  # how often the records are appended to the file
TICK_S = 0.005  # the loop's own clock: it should wake this often
STALL_S = 0.02  # a loop this late is a stall worth recording
WATCH_S = 0.005  # the watchdog's sampling period while the loop is late
STACK_DEPTH = 6  # frames kept of each sampled stack, innermost first
KINDS = 12  # the most common types a full collection left behind, listed with it
# A thread whose innermost frame is one of these is waiting, not running.
_IDLE_FUNCTIONS = frozenset({"wait", "select", "poll", "_worker", "get", "accept", "sleep"})

# When the HTTP request now being served arrived (OpsMiddleware sets it).
request_started: ContextVar[float | None] = ContextVar("request_started", default=None)


class Timeline:
    """The records of one process, buffered and appended to its file every FLUSH_S."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"timeline-{os.getpid()}.jsonl"
        self.records: list[list[Any]] = []
        self.beat = time.perf_counter()  # the loop's last tick, read by the watchdog
        self.lock = threading.RLock()  # a collection may start inside `add` (on_gc adds)
        self._gc_started = 0.0
        self._stop = threading.Event()

    def add(self, *record: Any) -> None:
        with self.lock:
            self.records.append(list(record))

    def flush(self) -> None:
        with self.lock:
            records, self.records = self.records, []
        if records:
            with self.path.open("a") as out:
                out.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in records)

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif info.get("generation") == 2:  # rare: worth counting what it walked
            ended = time.perf_counter()
            survivors = gc.get_objects(generation=2)
            kinds = Counter(type(o).__qualname__ for o in survivors).most_common(KINDS)
            self.add("gc", 2, self._gc_started, ended, len(survivors), gc.get_freeze_count(), kinds)
        else:
            self.add("gc", info.get("generation"), self._gc_started, time.perf_counter())

    async def tick(self) -> None:
        """The loop's own clock: a wake-up later than STALL_S is a stall."""
        while True:
            before = time.perf_counter()
            await asyncio.sleep(TICK_S)
            self.beat = now = time.perf_counter()
            if now - before - TICK_S > STALL_S:
                self.add("stall", before + TICK_S, now)

    def watch(self, main: int) -> None:
        """In a thread of its own: while the loop is late, sample what the threads run."""
        while not self._stop.wait(WATCH_S):
            now = time.perf_counter()
            if now - self.beat < STALL_S:
                continue
            for ident, frame in sys._current_frames().items():
                if ident == threading.get_ident():
                    continue
                if ident != main and frame.f_code.co_name in _IDLE_FUNCTIONS:
                    continue
                self.add("stack", now, _thread_name(ident), _frames(frame))

    def stop(self) -> None:
        self._stop.set()


def _thread_name(ident: int) -> str:
    for thread in threading.enumerate():
        if thread.ident == ident:
            return thread.name
    return str(ident)


def _frames(frame: FrameType | None) -> list[str]:
    out: list[str] = []
    while frame is not None and len(out) < STACK_DEPTH:
        code = frame.f_code
        out.append(f"{Path(code.co_filename).name}:{frame.f_lineno} {code.co_name}")
        frame = frame.f_back
    return out


_timeline: Timeline | None = None


def now() -> float:
    return time.perf_counter()


def enabled() -> bool:
    return _timeline is not None


def mark(*record: Any) -> None:
    """Record one stage (see the module's docstring); nothing when the timeline is off."""
    if _timeline is not None:
        _timeline.add(*record)


async def committed(events: Sequence[Event]) -> None:
    """A `Database.listeners` entry, told first after each commit."""
    if _timeline is None:
        return
    at = time.perf_counter()
    started = request_started.get()
    for event in events:
        ticket = event.data.get("ticket") if event.kind == "ticket.called" else None
        key = board_key(ticket["id"]) if isinstance(ticket, dict) and "id" in ticket else None
        _timeline.add("commit", event.branch, event.seq, event.kind, key, started, at)


@contextlib.asynccontextmanager
async def timeline(rigi: Rigi) -> AsyncIterator[None]:
    """Lifespan part: with RIGI_TIMELINE_DIR set, record this process's timeline."""
    global _timeline
    folder = rigi.settings.timeline_dir
    if folder is None:
        yield
        return
    recorder = _timeline = Timeline(folder)
    rigi.database.listeners.insert(0, committed)
    gc.callbacks.append(recorder.on_gc)
    watchdog = threading.Thread(
        target=recorder.watch, args=(threading.get_ident(),), name="timeline", daemon=True
    )
    watchdog.start()
    ticker = asyncio.create_task(recorder.tick(), name="timeline-tick")
    flusher = asyncio.create_task(_flush_forever(recorder), name="timeline-flush")
    log.info("recording the timeline in %s", recorder.path)
    try:
        yield
    finally:
        ticker.cancel()
        flusher.cancel()
        await asyncio.gather(ticker, flusher, return_exceptions=True)
        recorder.stop()
        watchdog.join(timeout=1)
        gc.callbacks.remove(recorder.on_gc)
        rigi.database.listeners.remove(committed)
        _timeline = None
        recorder.flush()


async def _flush_forever(recorder: Timeline) -> None:
    while True:
        await asyncio.sleep(FLUSH_S)
        try:
            recorder.flush()
        except OSError:
            log.exception("writing the timeline failed")
