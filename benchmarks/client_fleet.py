"""The national day's lobby displays and phones, spread over several client processes, each with
its own event loop, so that the load generator is not what a run measures.

One process with 1,000 display feeds could not read them as fast as two servers wrote them: feeds
were closed as too slow and calls were counted lost that the servers had sent. Here the parent
hands each worker its share (displays at the start, a phone per issued ticket as the day goes),
and each worker stamps arrivals with `time.perf_counter()` (CLOCK_MONOTONIC, one clock for every
process on the machine), so the parent compares them with the moments it sent its calls.

Each worker reports its own CPU time and how late its event loop ran (a loop that runs late
stamps frames late): the figures say whether the clients kept up.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError

from benchmarks._support import CONNECT_CONCURRENCY, PING, PONG
from rigi_protocol.closecodes import CLOSE_RESYNC, CLOSE_TOO_SLOW

CALLED = '"kind":"ticket.called"'
DONE = '"status":"done"'
PHONE_RECONNECTS = 5  # a phone closed as too slow more often than this is counted an error
OPEN_TIMEOUT_S = 30
LAG_TICK_S = 0.05  # how often a worker checks that its own loop runs on time
STALL_S = 0.02  # a worker's loop this late is listed with its moment (for the timeline)


@dataclass
class Feed:
    """A display feed to open: its URL, its first message, and what the report groups it by."""

    url: str
    hello: str
    group: str


@dataclass
class WorkerReport:
    """What one client process saw."""

    arrivals: list[tuple[str, list[tuple[str, float]]]]  # per display: (group, [(key, at)])
    unjoined: list[str]  # the group of each display that could not join
    errors: Counter[str]
    reconnects: Counter[str]
    phones_ended: dict[str, bool]
    phones_peak: int
    cpu_s: float
    loop_lag_p99_ms: float
    loop_lag_max_ms: float
    stalls: list[tuple[float, float]] = field(default_factory=list)  # (from, to) late > STALL_S


@dataclass
class _Worker:
    """The worker process's state, inside its own event loop."""

    displays: list[tuple[str, list[tuple[str, float]]]] = field(default_factory=list)
    unjoined: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    reconnects: Counter[str] = field(default_factory=Counter)
    phones: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    phones_ended: dict[str, bool] = field(default_factory=dict)
    phones_open: int = 0
    phones_peak: int = 0
    lags: list[float] = field(default_factory=list)
    stalls: list[tuple[float, float]] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)
    sockets: list[ClientConnection] = field(default_factory=list)

    async def open_displays(self, feeds: list[Feed]) -> None:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(feed: Feed) -> None:
            async with gate:
                try:
                    ws = await connect(feed.url, open_timeout=OPEN_TIMEOUT_S, ping_interval=None)
                    await ws.send(feed.hello)
                    await asyncio.wait_for(ws.recv(), OPEN_TIMEOUT_S)  # the snapshot (or ack)
                except Exception as error:  # every way a display can fail to join is counted
                    self.errors[f"display connect: {type(error).__name__}"] += 1
                    self.unjoined.append(feed.group)
                    return
            arrivals: list[tuple[str, float]] = []
            self.displays.append((feed.group, arrivals))
            self.sockets.append(ws)
            self.readers.append(asyncio.create_task(self._display(ws, arrivals)))

        await asyncio.gather(*(one(feed) for feed in feeds))

    async def _display(self, ws: ClientConnection, arrivals: list[tuple[str, float]]) -> None:
        try:
            async for raw in ws:
                assert isinstance(raw, str)
                if CALLED in raw:
                    now = time.perf_counter()
                    arrivals.append((json.loads(raw)["data"]["ticket"]["key"], now))
                elif raw == PING:
                    await ws.send(PONG)
                elif raw.startswith('{"type":"snapshot"'):
                    self.errors["display fell back to a snapshot"] += 1
        except asyncio.CancelledError:
            raise
        except Exception as error:  # every way a feed can end is counted
            self.errors[f"display feed ended: {type(error).__name__}"] += 1
        else:
            self.errors["display feed closed by the server"] += 1

    def follow(self, ws_base: str, ticket_id: str) -> None:
        self.phones_open += 1
        self.phones_peak = max(self.phones_peak, self.phones_open)
        self.phones[ticket_id] = asyncio.create_task(self._phone(ws_base, ticket_id))

    async def _phone(self, ws_base: str, ticket_id: str) -> None:
        """A citizen's phone on its ticket's feed until the visit ends. Closed as too slow or
        told to resync, it reconnects as the phone's page does; that is counted, not an error."""
        ended = False
        try:
            for _ in range(PHONE_RECONNECTS + 1):
                try:
                    ended = await _follow_ticket(ws_base, ticket_id)
                    break
                except ConnectionClosedError as closed:
                    code = closed.rcvd.code if closed.rcvd else None
                    if code not in (CLOSE_TOO_SLOW, CLOSE_RESYNC):
                        raise
                    self.reconnects[f"phone {closed.rcvd.reason if closed.rcvd else ''}"] += 1
        except asyncio.CancelledError:
            pass  # the day is over: counted as unfinished by the parent if it should have ended
        except Exception as error:  # every other way a feed can end is counted
            self.errors[f"phone feed: {type(error).__name__}"] += 1
        finally:
            self.phones_open -= 1
            self.phones_ended[ticket_id] = ended

    async def watch_lag(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(LAG_TICK_S)
            now = time.perf_counter()
            self.lags.append(now - before - LAG_TICK_S)
            if self.lags[-1] > STALL_S:
                self.stalls.append((before + LAG_TICK_S, now))

    async def finish(self, awaited: set[str], timeout_s: float) -> WorkerReport:
        waiting = [task for tid, task in self.phones.items() if tid in awaited and not task.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=timeout_s)
        for task in self.phones.values():
            task.cancel()
        await asyncio.gather(*self.phones.values(), return_exceptions=True)
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        lags = sorted(self.lags) or [0.0]
        return WorkerReport(
            arrivals=self.displays,
            unjoined=self.unjoined,
            errors=self.errors,
            reconnects=self.reconnects,
            phones_ended=self.phones_ended,
            phones_peak=self.phones_peak,
            cpu_s=usage.ru_utime + usage.ru_stime,
            loop_lag_p99_ms=lags[int(0.99 * (len(lags) - 1))] * 1000,
            loop_lag_max_ms=lags[-1] * 1000,
            stalls=self.stalls,
        )


async def _follow_ticket(ws_base: str, ticket_id: str) -> bool:
    """True once the ticket's feed says its visit is done."""
    async with connect(
        f"{ws_base}/ws/tickets/{ticket_id}", open_timeout=OPEN_TIMEOUT_S, ping_interval=None
    ) as ws:
        await ws.send(PONG)
        async for raw in ws:
            assert isinstance(raw, str)
            if raw == PING:
                await ws.send(PONG)
            elif DONE in raw:
                return True
    return False


def _worker_main(pipe: Connection) -> None:
    asyncio.run(_worker_loop(pipe))


async def _worker_loop(pipe: Connection) -> None:
    """Commands from the parent, one at a time: ("displays", [Feed]), ("phone", ws_base,
    ticket_id), ("finish", awaited ticket ids, timeout) which ends the worker with its report."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    loop.add_reader(pipe.fileno(), lambda: inbox.put_nowait(pipe.recv()))
    worker = _Worker()
    lag = asyncio.create_task(worker.watch_lag())
    while True:
        command = await inbox.get()
        if command[0] == "displays":
            await worker.open_displays(command[1])
            pipe.send(("ready", len(worker.sockets)))
        elif command[0] == "phone":
            worker.follow(command[1], command[2])
        elif command[0] == "finish":
            loop.remove_reader(pipe.fileno())
            lag.cancel()
            pipe.send(await worker.finish(command[1], command[2]))
            return


class ClientFleet:
    """`processes` client processes; displays are dealt round robin, phones likewise."""

    def __init__(self, processes: int) -> None:
        context = multiprocessing.get_context("spawn")  # a clean interpreter, no inherited loop
        self._pipes: list[Connection] = []
        self._processes = []
        for _ in range(processes):
            parent, child = context.Pipe()
            process = context.Process(target=_worker_main, args=(child,), daemon=True)
            process.start()
            child.close()
            self._pipes.append(parent)
            self._processes.append(process)
        self._next_phone = 0

    async def open_displays(self, feeds: list[Feed]) -> int:
        """Open every feed (each worker its share, at once); the number that joined."""
        for n, pipe in enumerate(self._pipes):
            pipe.send(("displays", feeds[n :: len(self._pipes)]))
        answers = await asyncio.gather(*(asyncio.to_thread(p.recv) for p in self._pipes))
        return sum(count for _, count in answers)

    def follow(self, ws_base: str, ticket_id: str) -> None:
        """A phone on `ticket_id`'s feed, in the next worker."""
        self._pipes[self._next_phone % len(self._pipes)].send(("phone", ws_base, ticket_id))
        self._next_phone += 1

    async def finish(self, awaited: set[str], timeout_s: float) -> list[WorkerReport]:
        """Wait up to `timeout_s` for the phones of `awaited` tickets to see their visit end,
        close everything, and collect each worker's report; the workers then exit."""
        for pipe in self._pipes:
            pipe.send(("finish", awaited, timeout_s))
        reports = await asyncio.gather(*(asyncio.to_thread(p.recv) for p in self._pipes))
        self.close()
        return list(reports)

    def close(self) -> None:
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join()
        for pipe in self._pipes:
            pipe.close()


def merged(reports: list[WorkerReport]) -> dict[str, Any]:
    """The workers' reports summed: errors, reconnects, phones, CPU and the worst loop lag."""
    errors: Counter[str] = Counter()
    reconnects: Counter[str] = Counter()
    ended: dict[str, bool] = {}
    for report in reports:
        errors.update(report.errors)
        reconnects.update(report.reconnects)
        ended.update(report.phones_ended)
    return {
        "errors": errors,
        "reconnects": reconnects,
        "phones_ended": ended,
        "phones_peak": sum(r.phones_peak for r in reports),
        "cpu_s": sum(r.cpu_s for r in reports),
        "loop_lag_p99_ms": max((r.loop_lag_p99_ms for r in reports), default=0.0),
        "loop_lag_max_ms": max((r.loop_lag_max_ms for r in reports), default=0.0),
    }
