"""Call-to-display latency with 1,000 lobby displays, and the memory an idle display costs.

Latency: the time from sending `POST …/call-next` to each display receiving the
`ticket.called` event, per display, over CALLS calls. The baseline is benchmarks/bare_app.py:
a POST that sends the very same frame (a real `ticket.called` event captured from Rigi) to the
same number of WebSocket clients. Between calls the counter marks a no-show (one more event to
every display) and everything settles for SETTLE_S, the same pause for the baseline.

Followers, timed the same way: phones following their waiting tickets, and operator consoles
following their counters' waiting lists; every call changes what each of them shows.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from benchmarks._support import (
    BRANCH,
    PONG,
    POSTGRES_URL,
    B,
    Fleet,
    Server,
    bare,
    create_admin,
    display_token,
    own_redis,
    percentile,
    reset_postgres,
    rigi_cli,
    rigi_environment,
    rigi_factory,
    settled_rss_mb,
    sign_in,
)

T = TypeVar("T")

DISPLAYS = 1_000
CALLS = 20
WARM_UP_CALLS = 2
COUNTER = "c01"
SETTLE_S = 0.3
ARRIVAL_TIMEOUT_S = 10
MARKER = '"kind":"ticket.called"'
PHONES = 200
PHONE_MARKER = '"type":"ticket"'
CONSOLE_COUNTERS = 8
CONSOLES_PER_COUNTER = 4
CONSOLE_WAITING = 300
CONSOLE_MARKER = '"type":"counter"'


@dataclass
class Latency:
    """Per-display latencies (s) over all calls, and displays that never got a call."""

    samples: list[float]
    missing: int
    frame_bytes: int

    @property
    def p50_ms(self) -> float:
        return percentile(self.samples, 0.50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.samples, 0.99) * 1000

    def line(self, what: str) -> str:
        return (
            f"{what}: {len(self.samples)} deliveries, p50 {self.p50_ms:.1f} ms, "
            f"p99 {self.p99_ms:.1f} ms, missing {self.missing}"
        )


async def _calls(fleet: Fleet, call: object, after: object, calls: int) -> Latency:
    samples: list[float] = []
    missing = 0
    for index in range(WARM_UP_CALLS + calls):
        fleet.expect(len(fleet.connections))
        started = time.perf_counter()
        await call()  # type: ignore[operator]
        await fleet.arrived(ARRIVAL_TIMEOUT_S)
        if index >= WARM_UP_CALLS:
            samples.extend(arrival - started for arrival in fleet.arrivals)
            missing += len(fleet.connections) - len(fleet.arrivals)
        if len(fleet.arrivals) < len(fleet.connections):
            break  # displays were dropped: report what was missed rather than wait on
        await after()  # type: ignore[operator]
        await asyncio.sleep(SETTLE_S)
    return Latency(samples, missing, len((fleet.sample or "").encode()))


async def _rigi_calls(
    operate_url: str, display_ws_url: str, displays: int, calls: int
) -> tuple[Latency, str]:
    """Issue the tickets and sign in on `operate_url`; displays watch `display_ws_url`."""
    async with httpx.AsyncClient(base_url=operate_url, timeout=30) as client:
        await sign_in(client)
        token = await display_token(client)
        (await client.post(f"{B}/counters/{COUNTER}/open")).raise_for_status()
        for _ in range(WARM_UP_CALLS + calls):
            (await client.post(f"{B}/tickets", json={"service_id": "stamp"})).raise_for_status()
        fleet = Fleet(MARKER)
        hello = json.dumps({"type": "hello", "token": token})
        await fleet.open(f"{display_ws_url}/ws/branches/{BRANCH}/board", displays, hello)
        try:

            async def call() -> None:
                (await client.post(f"{B}/counters/{COUNTER}/call-next")).raise_for_status()

            async def after() -> None:
                (await client.post(f"{B}/counters/{COUNTER}/no-show")).raise_for_status()

            latency = await _calls(fleet, call, after, calls)
        finally:
            await fleet.close()
    assert fleet.sample is not None
    return latency, fleet.sample


async def _bare_calls(url: str, displays: int, calls: int, frame: str) -> Latency:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        fleet = Fleet(MARKER)
        await fleet.open(url.replace("http", "ws", 1) + "/ws", displays, '{"type":"hello"}')
        try:

            async def call() -> None:
                (await client.post("/broadcast", content=frame.encode())).raise_for_status()

            async def nothing() -> None:
                return None

            return await _calls(fleet, call, nothing, calls)
        finally:
            await fleet.close()


def single_process(
    database: str = "sqlite", displays: int = DISPLAYS, calls: int = CALLS
) -> tuple[Latency, str]:
    """One `queue-server serve` with the memory bus, on the default SQLite file or (as in
    production) on PostgreSQL."""
    return _on_one_process(
        database, lambda server: _rigi_calls(server.url, server.ws_url, displays, calls)
    )


def _on_one_process(database: str, run: Callable[[Server], Coroutine[Any, Any, T]]) -> T:
    """`run` against one `queue-server serve` with the memory bus, on a fresh SQLite file or
    PostgreSQL database."""
    url = None
    if database == "postgresql":
        reset_postgres()
        url = POSTGRES_URL
    with tempfile.TemporaryDirectory() as folder:
        env = rigi_environment(Path(folder), url, "memory://")
        create_admin(env)
        with rigi_cli(env) as server:
            return asyncio.run(run(server))


def two_processes(displays: int = DISPLAYS, calls: int = CALLS) -> Latency:
    """Calls on process A, displays on process B: PostgreSQL and Redis in between."""
    reset_postgres()
    with tempfile.TemporaryDirectory() as folder, own_redis(Path(folder) / "redis") as redis_url:
        env = rigi_environment(Path(folder), POSTGRES_URL, redis_url)
        create_admin(env)
        with rigi_cli(env) as a, rigi_cli(env) as b:
            latency, _ = asyncio.run(_rigi_calls(a.url, b.ws_url, displays, calls))
            return latency


def bare_broadcast(frame: str, displays: int = DISPLAYS, calls: int = CALLS) -> Latency:
    with tempfile.TemporaryDirectory() as folder:
        env = rigi_environment(Path(folder), None, "memory://")
        with bare(env) as server:
            return asyncio.run(_bare_calls(server.url, displays, calls, frame))


async def _followers_calls(
    url: str, ws_url: str, kind: str, followers: int, waiting: int, calls: int
) -> Latency:
    """Clients that follow what a call changes: `phones` (each its own waiting ticket, which
    every call moves up) or `consoles` (on CONSOLE_COUNTERS counters, each showing the waiting
    list, which every call shortens). The time is from the POST to each client's new frame."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await sign_in(client)
        counters = [f"c{n:02d}" for n in range(1, CONSOLE_COUNTERS + 1)]
        for counter in counters if kind == "consoles" else [COUNTER]:
            (await client.post(f"{B}/counters/{counter}/open")).raise_for_status()
        ids = []
        for _ in range(WARM_UP_CALLS + calls + waiting):  # the first ones are called
            response = await client.post(f"{B}/tickets", json={"service_id": "stamp"})
            ids.append(response.raise_for_status().json()["id"])
        if kind == "phones":
            fleet = Fleet(PHONE_MARKER)
            await fleet.open_each([f"{ws_url}/ws/tickets/{i}" for i in ids[-followers:]], PONG)
        else:
            fleet = Fleet(CONSOLE_MARKER)
            cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
            urls = [f"{ws_url}/ws/branches/{BRANCH}/counters/{c}" for c in counters]
            await fleet.open_each(
                urls * (followers // len(urls)), '{"type":"hello"}', headers={"Cookie": cookie}
            )
        try:

            async def call() -> None:
                (await client.post(f"{B}/counters/{COUNTER}/call-next")).raise_for_status()

            async def after() -> None:
                (await client.post(f"{B}/counters/{COUNTER}/no-show")).raise_for_status()

            return await _calls(fleet, call, after, calls)
        finally:
            await fleet.close()


def followers(kind: str, database: str = "sqlite", calls: int = CALLS) -> Latency:
    """`phones` or `consoles` following a branch on one `queue-server serve` (memory bus)."""
    count, waiting = (
        (PHONES, PHONES)
        if kind == "phones"
        else (CONSOLE_COUNTERS * CONSOLES_PER_COUNTER, CONSOLE_WAITING)
    )
    return _on_one_process(
        database,
        lambda server: _followers_calls(server.url, server.ws_url, kind, count, waiting, calls),
    )


def warm_up(displays: int = DISPLAYS) -> None:
    """One unmeasured bare round before the first measured one. This process's first fleet of
    1,000 clients is slow whatever the server (measured: a bare broadcast run first had a p50
    of 40.5 ms, and 19.8 ms run again), which would be charged to whichever server went first."""
    bare_broadcast('{"type":"event","kind":"ticket.called"}', displays, calls=3)


async def _connect_idle(ws_url: str, token: str, displays: int, deflate: bool) -> Fleet:
    fleet = Fleet(MARKER)
    hello = json.dumps({"type": "hello", "token": token})
    await fleet.open(
        f"{ws_url}/ws/branches/{BRANCH}/board", displays, hello,
        compression="deflate" if deflate else None,
    )  # fmt: skip
    return fleet


def idle_memory(deflate: bool, displays: int = DISPLAYS) -> tuple[float, float]:
    """Server RSS (MB) before and after `displays` idle displays connect and say hello."""

    async def measure(url: str, ws_url: str, pid: int) -> tuple[float, float]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            await sign_in(client)
            token = await display_token(client)
        warm = await _connect_idle(ws_url, token, 1, deflate)  # imports, hub stream, pools
        before = await settled_rss_mb(pid)
        fleet = await _connect_idle(ws_url, token, displays, deflate)
        after = await settled_rss_mb(pid)
        await fleet.close()
        await warm.close()
        return before, after

    with tempfile.TemporaryDirectory() as folder:
        env = rigi_environment(Path(folder), None, "memory://")
        create_admin(env)
        with rigi_factory(env, deflate=deflate) as server:
            return asyncio.run(measure(server.url, server.ws_url, server.pid))
