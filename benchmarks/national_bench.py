"""A national day, compressed: nginx in front of two `queue-server serve` processes on
PostgreSQL and a Redis of the benchmark's own, the shipped organisation (config/), visits issued
at a steady random pace over DAY_S seconds, simulated operators at every counter of every branch
(call next, start, a short service, finish), lobby displays on every branch's board and phones
following their own tickets, all through nginx.

Reported: errors (any unexpected HTTP status, any feed that closed or fell back to a snapshot),
calls each display lost or saw twice, call → display latency (from sending `call-next` to each
display of the branch receiving `ticket.called`) against a bare broadcast of the same frame
through the same nginx to as many clients as there are displays, measured in the same run, and
the servers' CPU time per 1,000 visits (from /proc/<pid>/stat).

The national figures are 211 branches and 20,000 visits; the shipped configuration has 86
branches, so the rest are synthesised for the run (halls of three counters; NATIONAL_BRANCHES
sets the total). Visits, displays and phones are bounded by NATIONAL_VISITS, NATIONAL_DISPLAYS
and NATIONAL_PHONES (the machine is small and shared); every phase has a time limit, so the run
stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError

from benchmarks._support import (
    ADMIN,
    CONNECT_CONCURRENCY,
    PASSWORD,
    PING,
    PONG,
    POSTGRES_URL,
    ROOT,
    bare,
    create_admin,
    own_redis,
    reset_postgres,
    rigi_environment,
)
from benchmarks.realtime_bench import Latency, _bare_calls
from queue_server.catalog.loader import load_catalog
from queue_server.domain.public import board_key
from rigi_protocol.closecodes import CLOSE_RESYNC, CLOSE_TOO_SLOW
from rigi_protocol.wire import compact_json
from tests.proxy_cluster import PROXY_ADDRESS, cpu_seconds, nginx_in_front, servers

NATIONAL_BRANCHES = 211
NATIONAL_VISITS = 20_000
# `make bench` replays 1,500 visits by default: the scaled national day (NATIONAL_VISITS=scaled)
# needs about 410 s of server CPU on this machine today (docs/benchmarks.md says why).
VISITS = os.environ.get("NATIONAL_VISITS", "1500")
DAY_S = float(os.environ.get("NATIONAL_DAY_S", "90"))
DISPLAYS = int(os.environ.get("NATIONAL_DISPLAYS", "200"))
PHONES = int(os.environ.get("NATIONAL_PHONES", "300"))
SERVICE_S = (0.2, 0.8)  # a compressed visit at the counter
IDLE_S = 2.0  # an operator whose call found nobody for their counter tries again after this
WAKE_S = 0.5  # an operator with nobody waiting checks this often whether the day is over
DRAIN_S = 60.0  # after the last visit is issued, operators call on until empty or this passes
SETTLE_S = 5.0  # for the last frames to arrive
# ... and up to this for the phone of every finished visit to see it end: on a saturated
# machine a frame may come seconds late, which is slow, not lost.
PHONES_SETTLE_S = 60.0
STAFF_CONNECTIONS = 64  # keep-alive connections to nginx shared by the operators
CITIZEN_CONNECTIONS = 32  # and by the issuing phones and kiosks
BARE_CALLS = 20
CONFIG = ROOT / "config"
# The shipped organisation has 86 branches; the national day has 211. The rest are synthesised
# for the benchmark only: halls with three generalist counters, like Shashiani's centre.
SYNTHETIC_MODEL = "cc01-shashiani"
SYNTHETIC_BRANCHES = int(os.environ.get("NATIONAL_BRANCHES", str(NATIONAL_BRANCHES)))
CALLED = '"kind":"ticket.called"'
SEED = 18
PHONE_RECONNECTS = 5  # a phone closed as too slow more often than this is counted an error


class Http:
    """Keep-alive HTTP/1.1 connections to nginx with almost no client-side cost (httpx would
    spend the shared cores the servers need), shared through a pool."""

    def __init__(self, port: int, headers: dict[str, str], connections: int) -> None:
        self.port = port
        self.extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = (
            asyncio.Queue()
        )
        for _ in range(connections):
            self.pool.put_nowait(None)  # opened on first use

    async def post(self, path: str, body: bytes = b"{}") -> tuple[int, bytes, float]:
        """(status, body, when it was sent): 0 for a connection that failed; the time is taken
        once a pooled connection is free, so waiting for the pool is not charged to a call."""
        connection = await self.pool.get()
        sent = time.perf_counter()
        try:
            if connection is None:
                connection = await asyncio.open_connection("127.0.0.1", self.port)
            reader, writer = connection
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"{self.extra}Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            status, payload, close = await _response(reader)
            if close:
                writer.close()
                connection = None
            return status, payload, sent
        except (OSError, asyncio.IncompleteReadError):
            connection = None
            return 0, b"", sent
        finally:
            self.pool.put_nowait(connection)

    async def close(self) -> None:
        while not self.pool.empty():
            connection = self.pool.get_nowait()
            if connection is not None:
                connection[1].close()


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    close = headers.get("connection") == "close"
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
        return status, body, close
    return status, await reader.readexactly(int(headers.get("content-length", "0"))), close


@dataclass
class Day:
    """What happened: every call as the operators made it, and what clients saw."""

    called_at: dict[str, float] = field(default_factory=dict)  # board key → call-next sent
    branch_calls: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    errors: Counter[str] = field(default_factory=Counter)
    reconnects: Counter[str] = field(default_factory=Counter)  # feeds resumed as clients do
    issued: int = 0
    finished: int = 0
    phones_opened: int = 0
    finished_ids: set[str] = field(default_factory=set)  # visits an operator finished (200)
    phones_ended: dict[str, bool] = field(default_factory=dict)  # ticket → its phone saw it end
    # Tickets issued and not yet claimed by an operator, per branch: what the operators' consoles
    # show, so that operators call when someone waits instead of polling `call-next`.
    waiting: Counter[str] = field(default_factory=Counter)
    arrived: dict[str, asyncio.Event] = field(default_factory=lambda: defaultdict(asyncio.Event))
    phones_open: int = 0


@dataclass
class Display:
    branch: str
    ws: ClientConnection
    arrivals: list[tuple[str, float]] = field(default_factory=list)


async def _display(day: Day, display: Display) -> None:
    try:
        async for raw in display.ws:
            assert isinstance(raw, str)
            if CALLED in raw:
                now = time.perf_counter()
                display.arrivals.append((json.loads(raw)["data"]["ticket"]["key"], now))
            elif raw == PING:
                await display.ws.send(PONG)
            elif raw.startswith('{"type":"snapshot"'):
                day.errors["display fell back to a snapshot"] += 1
    except Exception as error:  # every way a feed can end is counted
        day.errors[f"display feed ended: {type(error).__name__}"] += 1
    else:
        day.errors["display feed closed by the server"] += 1


async def _phone(day: Day, ws_base: str, ticket_id: str) -> None:
    """A citizen's phone on its ticket's feed until the visit ends (or the day is over: then
    it is cancelled and counted as unfinished). Closed as too slow or told to resync, it
    reconnects as the phone's page does (the feed sends the ticket's view at once), and the
    reconnection is counted, not taken for an error."""
    ended = False
    try:
        for _ in range(PHONE_RECONNECTS + 1):
            try:
                ended = await _follow_ticket(ws_base, ticket_id)
                break
            except ConnectionClosedError as closed:
                if closed.rcvd is None or closed.rcvd.code not in (CLOSE_TOO_SLOW, CLOSE_RESYNC):
                    raise
                day.reconnects[f"phone {closed.rcvd.reason}"] += 1
    except Exception as error:  # every other way a feed can end is counted
        day.errors[f"phone feed: {type(error).__name__}"] += 1
    finally:
        day.phones_open -= 1
        day.phones_ended[ticket_id] = ended


async def _follow_ticket(ws_base: str, ticket_id: str) -> bool:
    """True once the ticket's feed says its visit is done."""
    async with connect(
        f"{ws_base}/ws/tickets/{ticket_id}", open_timeout=30, ping_interval=None
    ) as ws:
        await ws.send(PONG)
        async for raw in ws:
            assert isinstance(raw, str)
            if raw == PING:
                await ws.send(PONG)
            elif '"status":"done"' in raw:
                return True
    return False


async def _operator(
    day: Day, http: Http, branch: str, counter: str, stop: asyncio.Event, rng: random.Random
) -> None:
    path = f"/api/v1/branches/{branch}/counters/{counter}"
    status, _, _ = await http.post(path + "/open")
    if status != 200:
        day.errors[f"open {status}"] += 1
        return
    while not stop.is_set():
        if day.waiting[branch] <= 0:
            day.arrived[branch].clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(day.arrived[branch].wait(), WAKE_S)
            continue
        day.waiting[branch] -= 1  # this operator calls for that one
        status, body, sent = await http.post(path + "/call-next")
        if status == 404 and b"queue_empty" in body:  # not a service this counter serves
            day.waiting[branch] += 1
            day.arrived[branch].set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), IDLE_S)
            continue
        if status != 200:
            day.errors[f"call-next {status}"] += 1
            await asyncio.sleep(IDLE_S)
            continue
        ticket_id = json.loads(body)["id"]
        key = board_key(ticket_id)
        day.called_at[key] = sent
        day.branch_calls[branch].add(key)
        status, _, _ = await http.post(path + "/start")
        if status != 200:
            day.errors[f"start {status}"] += 1
        await asyncio.sleep(rng.uniform(*SERVICE_S))
        status, _, _ = await http.post(path + "/finish", b'{"outcome":"served"}')
        if status != 200:
            day.errors[f"finish {status}"] += 1
        else:
            day.finished_ids.add(ticket_id)
        day.finished += 1


async def _issue(
    day: Day, http: Http, branch: str, service: str, ws_base: str, phones: list[asyncio.Task[None]]
) -> None:
    status, body, _ = await http.post(
        f"/api/v1/branches/{branch}/tickets", json.dumps({"service_id": service}).encode()
    )
    if status != 201:
        day.errors[f"issue {status}"] += 1
        return
    day.issued += 1
    day.waiting[branch] += 1
    day.arrived[branch].set()
    if day.phones_open < PHONES:  # a phone follows the ticket while the machine allows
        ticket_id = json.loads(body)["id"]
        day.phones_opened += 1
        day.phones_open += 1  # counted here, so the bound holds before the task runs
        phones.append(asyncio.create_task(_phone(day, ws_base, ticket_id), name=ticket_id))


@dataclass
class Result:
    branches: int
    visits: int
    issued: int
    finished: int
    displays: int
    phones_peak: int
    phones_opened: int
    phones_unfinished: int
    errors: dict[str, int]
    reconnects: dict[str, int]
    lost: int
    doubled: int
    latency: Latency
    bare: Latency
    cpu_s: float
    day_s: float

    @property
    def cpu_per_1000_s(self) -> float:
        return self.cpu_s * 1000 / max(self.issued, 1)


def national_config(folder: Path, branches: int = SYNTHETIC_BRANCHES) -> Path:
    """The shipped configuration, with synthetic halls added up to `branches`."""
    config = folder / "config"
    shutil.copytree(CONFIG, config)
    model = (config / "branches" / f"{SYNTHETIC_MODEL}.yaml").read_text()
    missing = branches - len(load_catalog(CONFIG).branches)
    for n in range(1, missing + 1):
        hall = model.replace(f"id: {SYNTHETIC_MODEL}", f"id: hall-{n:03d}", 1)
        hall = hall.replace("kind: community_centre", "kind: hall", 1)
        (config / "branches" / f"hall-{n:03d}.yaml").write_text(hall)
    return config


async def _the_day(
    url: str, pids: list[int], config: Path
) -> tuple[Day, list[Display], float, float, int]:
    catalog = load_catalog(config)
    rng = random.Random(SEED)
    branches = sorted(catalog.branches)
    visits = _visits(len(branches))
    port = int(url.rsplit(":", 1)[1])
    ws_base = url.replace("http://", "ws://")
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        signed = await client.post(
            "/api/v1/session", json={"username": ADMIN, "password": PASSWORD}
        )
        signed.raise_for_status()
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
        csrf = signed.json()["csrf_token"]
        tokens = {}
        for branch in branches:
            made = await client.post(
                f"/api/v1/branches/{branch}/devices", json={"role": "display", "name": "lobby"},
                headers={"X-CSRF-Token": csrf},
            )  # fmt: skip
            tokens[branch] = made.raise_for_status().json()["token"]
    staff = Http(port, {"Cookie": cookie, "X-CSRF-Token": csrf}, STAFF_CONNECTIONS)
    citizens = Http(port, {}, CITIZEN_CONNECTIONS)
    day = Day()

    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def open_display(branch: str) -> Display:
        async with gate:
            ws = await connect(
                f"{ws_base}/ws/branches/{branch}/board", open_timeout=30, ping_interval=None
            )
            await ws.send(json.dumps({"type": "hello", "token": tokens[branch]}))
            await asyncio.wait_for(ws.recv(), 30)  # the snapshot
            return Display(branch, ws)

    displays = await asyncio.gather(
        *(open_display(branches[n % len(branches)]) for n in range(DISPLAYS))
    )
    readers = [asyncio.create_task(_display(day, display)) for display in displays]
    stop = asyncio.Event()
    operators = [
        asyncio.create_task(_operator(day, staff, branch, counter.id, stop, rng))
        for branch in branches
        for counter in catalog.branches[branch].counters
    ]
    offered = {b: [s.id for s in catalog.branch_services(b)] for b in branches}
    weights = [len(catalog.branches[b].counters) for b in branches]  # busier where more counters
    schedule = sorted(rng.uniform(0, DAY_S) for _ in range(visits))
    phones: list[asyncio.Task[None]] = []
    issuing: set[asyncio.Task[None]] = set()
    phones_peak = 0
    cpu_before = sum(cpu_seconds(pid) for pid in pids)
    started = time.perf_counter()
    for at in schedule:
        delay = started + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        branch = rng.choices(branches, weights)[0]
        task = asyncio.create_task(
            _issue(day, citizens, branch, rng.choice(offered[branch]), ws_base, phones)
        )
        issuing.add(task)
        task.add_done_callback(issuing.discard)
        phones_peak = max(phones_peak, day.phones_open)
    await asyncio.gather(*issuing)
    drain_until = time.perf_counter() + DRAIN_S
    while day.finished + day.errors.total() < day.issued and time.perf_counter() < drain_until:
        phones_peak = max(phones_peak, day.phones_open)
        await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*operators)
    day_s = time.perf_counter() - started
    cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
    await asyncio.sleep(SETTLE_S)
    waiting_phones = [
        task for task in phones if not task.done() and task.get_name() in day.finished_ids
    ]
    if waiting_phones:
        await asyncio.wait(waiting_phones, timeout=PHONES_SETTLE_S)
    for task in phones:
        task.cancel()
    await asyncio.gather(*phones, return_exceptions=True)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    await asyncio.gather(*(d.ws.close() for d in displays), return_exceptions=True)
    await staff.close()
    await citizens.close()
    return day, displays, cpu, day_s, phones_peak


def _judge(day: Day, displays: list[Display]) -> tuple[int, int, list[float]]:
    """Lost and doubled calls over every display, and every delivery's latency."""
    lost = doubled = 0
    samples: list[float] = []
    for display in displays:
        seen = Counter(key for key, _ in display.arrivals)
        expected = day.branch_calls[display.branch]
        lost += len(expected - set(seen))
        doubled += sum(n - 1 for n in seen.values() if n > 1)
        doubled += len(set(seen) - expected)  # a call no operator made
        samples.extend(
            at - day.called_at[key] for key, at in display.arrivals if key in day.called_at
        )
    return lost, doubled, samples


def _frame() -> str:
    """A `ticket.called` board frame of the shipped catalog's size, for the bare broadcast."""
    event = {
        "type": "event", "branch": "tbilisi", "epoch": "0" * 32, "seq": 1234,
        "kind": "ticket.called", "at": "2026-11-23T09:14:05.123456Z",
        "data": {"ticket": {"key": "0" * 16, "label": "A012", "letter": "A", "number": 12,
                            "service_id": "id_card", "status": "called", "counter_id": "q01",
                            "counter_number": 1, "called_at": "2026-11-23T09:14:05.123456Z",
                            "recalls": 0},
                 "counter_id": "q01", "counter_number": 1},
    }  # fmt: skip
    return compact_json(event)


def _visits(branches: int) -> int:
    if VISITS != "scaled":
        return int(VISITS)
    return round(NATIONAL_VISITS * branches / NATIONAL_BRANCHES)


def main() -> Result:
    reset_postgres()
    connections = 2 * (DISPLAYS + PHONES + STAFF_CONNECTIONS + CITIZEN_CONNECTIONS) + 256
    with tempfile.TemporaryDirectory() as folder, own_redis(Path(folder) / "redis") as redis:
        config = national_config(Path(folder))
        catalog = load_catalog(config)
        env = rigi_environment(Path(folder), POSTGRES_URL, redis) | {
            "RIGI_CONFIG": str(config),
            "RIGI_TRUSTED_PROXIES": PROXY_ADDRESS,
        }
        create_admin(env)
        with (
            servers(env, 2) as processes,
            nginx_in_front(Path(folder) / "nginx", processes.ports, connections) as url,
        ):
            day, displays, cpu, day_s, phones_peak = asyncio.run(
                _the_day(url, processes.pids, config)
            )
        lost, doubled, samples = _judge(day, displays)
        frame = _frame()
        with (
            bare(env) as baseline,
            nginx_in_front(Path(folder) / "bare-nginx", [baseline.port], connections) as bare_url,
        ):
            bare_latency = asyncio.run(_bare_calls(bare_url, DISPLAYS, BARE_CALLS, frame))
    branches = len(catalog.branches)
    return Result(
        branches=branches,
        visits=_visits(branches),
        issued=day.issued,
        finished=day.finished,
        displays=DISPLAYS,
        phones_peak=phones_peak,
        phones_opened=day.phones_opened,
        # A phone whose visit an operator finished and that never saw it end; a visit left
        # unfinished by an error is counted among the errors, not here.
        phones_unfinished=sum(
            not ended and ticket in day.finished_ids for ticket, ended in day.phones_ended.items()
        ),
        errors=dict(day.errors),
        reconnects=dict(day.reconnects),
        lost=lost,
        doubled=doubled,
        latency=Latency(samples, lost, len(frame)),
        bare=bare_latency,
        cpu_s=cpu,
        day_s=day_s,
    )


def describe(result: Result) -> str:
    return (
        f"{result.branches} branches, {result.issued}/{result.visits} visits issued, "
        f"{result.finished} finished in {result.day_s:.0f} s; {result.displays} displays, "
        f"phones {result.phones_opened} opened (peak {result.phones_peak} at once, "
        f"{result.phones_unfinished} never saw their visit end); "
        f"errors {sum(result.errors.values())} {result.errors or ''}; "
        f"feeds resumed {sum(result.reconnects.values())} {result.reconnects or ''}; "
        f"lost {result.lost}, doubled {result.doubled}; "
        f"call → display p50 {result.latency.p50_ms:.1f} ms, p99 {result.latency.p99_ms:.1f} ms "
        f"({len(result.latency.samples)} deliveries) against bare p50 {result.bare.p50_ms:.1f} ms, "
        f"p99 {result.bare.p99_ms:.1f} ms; servers' CPU {result.cpu_s:.1f} s, "
        f"{result.cpu_per_1000_s:.1f} s per 1,000 visits"
    )


if __name__ == "__main__":
    from benchmarks._support import raise_open_files
    from benchmarks.run import national_rows

    # `timeout` and Ctrl-C end the run with its servers, nginx and Redis stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    raise_open_files()
    result = main()
    print(describe(result))
    row, goal = national_rows(result)
    print("\n".join(row + goal))
