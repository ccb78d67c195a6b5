"""A Community Centre's node catching up after a day offline, and the latency a live link adds
(docs/offline.md). `python -m benchmarks.offline_bench` runs it alone.

1. Catch-up: the node's SQLite file is filled with a busy day served through the real store
   (issue, call next, start, finish at the centre's three counters: DAY_VISITS visits, four
   events each) while no central exists, and the node's own reports are made as they would
   have been during the day. Then two central processes (PostgreSQL + a Redis of
   the benchmark's own) start behind a TCP proxy, and the node starts with the link cut, as a
   centre that has served all day offline. When every process has settled (their start-up
   work done: a running central and a running node, as in the field), the link is restored;
   measured: events per second (goal ≥ 5,000/s), from the node's first connection through the
   restored link until central holds every event.
2. Live link: with the node caught up, LIVE_CALLS calls at the centre (issue, then call next,
   over the node's HTTP API); measured: from sending `call-next` to the node until central
   publishes the `ticket.called` on its Redis bus (what every central feed and the national
   view hear), against the call's own round trip at the node (goal: p99 ≤ 1 s).
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from benchmarks._support import POSTGRES_URL, own_redis, percentile, reset_postgres
from queue_server.catalog.loader import load_catalog
from queue_server.domain.tickets import Outcome, TicketAction
from queue_server.realtime.hub import channel_of
from queue_server.settings import SHIPPED_CONFIG
from queue_server.store.database import Database
from queue_server.store.migrate import migrate
from queue_server.store.queue import CounterMode, QueueStore
from queue_server.store.reports.runner import catch_up
from tests.offline_link import (
    NODE_BRANCH,
    LinkProxy,
    Process,
    base_env,
    node_events,
    run,
    signed_in,
)
from tests.proxy_cluster import cpu_seconds
from tests.support import manager_and_display

DAY_VISITS = 2_500  # a busy day of a large centre: ~10,000 events
LIVE_CALLS = 200
COUNTERS = ("c01", "c02", "c03")
MANAGER = "manager-bench"
CATCH_UP_LIMIT_S = 300.0
GOAL_EVENTS_PER_S = 5_000.0
PROJECTOR_SETTLE_S = 5.0  # after the catch-up, for the CPU figure
SETTLE_WINDOW_S = 2.0
IDLE_CPU_S = 0.1  # of CPU in a window: a process that waits for work
SETTLE_LIMIT_S = 120.0
GOAL_LIVE_P99_MS = 1_000.0
BUS_PREFIX = "rigi-offline-bench:bus:"


@dataclass
class OfflineResult:
    events: int
    catch_up_s: float
    live_call_ms: list[float]
    live_central_ms: list[float]
    central_cpu_s: float  # both central processes, catch-up and its reports
    node_cpu_s: float  # the node's process while it caught up (its start-up left out)

    @property
    def cpu_ms_per_1000(self) -> float:
        return 1000 * self.central_cpu_s / self.events * 1000 if self.events else 0.0

    @property
    def node_cpu_ms_per_1000(self) -> float:
        return 1000 * self.node_cpu_s / self.events * 1000 if self.events else 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.catch_up_s if self.catch_up_s else 0.0


async def fill_a_day(node_file: Path, visits: int) -> int:
    """Serve `visits` visits at the centre through the real store; returns the events."""
    database = Database(f"sqlite+aiosqlite:///{node_file}")
    await migrate(database)
    catalog = load_catalog(SHIPPED_CONFIG)
    store = QueueStore(database, catalog)
    actor = "operator:bench"
    try:
        for counter in COUNTERS:
            await store.set_counter_mode(NODE_BRANCH, counter, CounterMode.OPEN, actor=actor)
        for number in range(visits):
            counter = COUNTERS[number % len(COUNTERS)]
            await store.issue_ticket(NODE_BRANCH, "id_card", actor="kiosk:bench")
            await store.call_next(NODE_BRANCH, counter, actor=actor)
            await store.act_on_current(NODE_BRANCH, counter, TicketAction.START, actor=actor)
            await store.act_on_current(
                NODE_BRANCH, counter, TicketAction.FINISH, actor=actor, outcome=Outcome.SERVED
            )
        for counter in COUNTERS:  # the day ends; the live calls open them again
            await store.set_counter_mode(NODE_BRANCH, counter, CounterMode.CLOSED, actor=actor)
        # A node that served all day has made its own reports as it went: not left for later.
        await catch_up(database, catalog, NODE_BRANCH)
        async with database.read() as conn:
            head = await conn.exec_driver_sql("SELECT max(seq) FROM events")
            return int(head.scalar_one())
    finally:
        await database.dispose()


async def _measure(folder: Path, redis_url: str) -> OfflineResult:
    node_dir = folder / "node"
    node_dir.mkdir()
    node_file = node_dir / "rigi.sqlite3"
    await fill_a_day(node_file, DAY_VISITS)
    await manager_and_display(f"sqlite+aiosqlite:///{node_file}", MANAGER, NODE_BRANCH)
    total = len(node_events(node_file))
    central_env = base_env(folder / "central", database_url=POSTGRES_URL, bus_url=redis_url,
                           bus_channel_prefix=BUS_PREFIX)  # fmt: skip
    token = run(central_env, "node-token", NODE_BRANCH).strip().splitlines()[-1]
    centrals = [Process(central_env), Process(central_env)]
    await asyncio.gather(*(c.start() for c in centrals))
    proxy = await LinkProxy([c.port for c in centrals]).start()
    node = Process(base_env(node_dir, node_central_url=proxy.url, node_token=token,
                            node_branch=NODE_BRANCH))  # fmt: skip
    try:
        proxy.cut()  # the day offline
        await node.start()
        assert node.popen is not None
        pids = [c.popen.pid for c in centrals if c.popen] + [node.popen.pid]
        await _settled(pids)
        cpu_before = sum(cpu_seconds(pid) for pid in pids[:-1])
        node_cpu_before = cpu_seconds(node.popen.pid)
        proxy.connected_at = None
        proxy.restore()
        started_at = await _first_connection(proxy)
        done_at = await _all_events(total)
        node_cpu = cpu_seconds(node.popen.pid) - node_cpu_before
        await asyncio.sleep(PROJECTOR_SETTLE_S)  # central's reports apply the day too
        cpu = sum(cpu_seconds(pid) for pid in pids[:-1]) - cpu_before
        print(f"caught up {total} events in {done_at - started_at:.2f} s", flush=True)
        calls, central = await _live_calls(node.url, redis_url)
        return OfflineResult(total, done_at - started_at, calls, central, cpu, node_cpu)
    finally:
        node.stop()
        for process in centrals:
            process.stop()
        await proxy.close()


async def _settled(pids: list[int]) -> None:
    """Wait until the processes have done their start-up work (each spends under
    IDLE_CPU_S of CPU in a SETTLE_WINDOW_S window), at most SETTLE_LIMIT_S."""
    deadline = time.monotonic() + SETTLE_LIMIT_S
    before = [cpu_seconds(pid) for pid in pids]
    while time.monotonic() < deadline:
        await asyncio.sleep(SETTLE_WINDOW_S)
        now = [cpu_seconds(pid) for pid in pids]
        if all(b - a < IDLE_CPU_S for a, b in zip(before, now, strict=True)):
            return
        before = now
    print("the processes never settled: measuring anyway", flush=True)


async def _first_connection(proxy: LinkProxy) -> float:
    """When the node first reached central through the restored link (its retry pause is
    the reconnection's, not the catch-up's)."""
    deadline = time.monotonic() + CATCH_UP_LIMIT_S
    while proxy.connected_at is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the node never came back through the link")
        await asyncio.sleep(0.005)
    # the proxy's clock is its loop's, which is this one's: monotonic as well
    return time.monotonic() - (asyncio.get_running_loop().time() - proxy.connected_at)


async def _count() -> int:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg", "postgresql"))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM events"))
    finally:
        await conn.close()


async def _all_events(total: int) -> float:
    deadline = time.monotonic() + CATCH_UP_LIMIT_S
    while time.monotonic() < deadline:
        if await _count() >= total:
            return time.monotonic()
        await asyncio.sleep(0.02)
    raise RuntimeError(f"central did not catch up with {total} events")


async def _live_calls(node_url: str, redis_url: str) -> tuple[list[float], list[float]]:
    """Per call: the node's round trip, and send → central's bus publishing it (ms)."""
    bus = aioredis.from_url(redis_url)
    subscription = bus.pubsub()
    await subscription.subscribe(BUS_PREFIX + channel_of(NODE_BRANCH))
    staff = await signed_in(node_url, MANAGER)
    b = f"/api/v1/branches/{NODE_BRANCH}"
    calls, central = [], []
    try:
        for counter in COUNTERS:
            opened = await staff.post(f"{b}/counters/{counter}/open")
            assert opened.status_code == 200, opened.text
        for number in range(LIVE_CALLS):
            counter = f"{b}/counters/{COUNTERS[number % len(COUNTERS)]}"
            await staff.post(f"{counter}/finish", json={"outcome": "served"})
            await staff.post(b + "/tickets", json={"service_id": "id_card"})
            await _drain(subscription)
            sent = time.perf_counter()
            answer = await staff.post(f"{counter}/call-next")
            calls.append((time.perf_counter() - sent) * 1000)
            called = answer.json()
            if answer.status_code != 200:
                raise RuntimeError(f"call-next at the node: {answer.status_code} {answer.text}")
            ticket_id = called["ticket"]["id"] if "ticket" in called else called["id"]
            await _heard(subscription, ticket_id)
            central.append((time.perf_counter() - sent) * 1000)
            await staff.post(f"{counter}/start")
    finally:
        await staff.aclose()
        await subscription.aclose()
        await bus.aclose()
    return calls, central


async def _drain(subscription: aioredis.client.PubSub) -> None:
    while await subscription.get_message(ignore_subscribe_messages=True, timeout=0):
        pass


async def _heard(subscription: aioredis.client.PubSub, ticket_id: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        message = await subscription.get_message(ignore_subscribe_messages=True, timeout=1)
        if (
            message
            and b'"ticket.called"' in message["data"]
            and ticket_id.encode() in message["data"]
        ):
            return
    raise RuntimeError("central never published the call")


def main() -> OfflineResult:
    reset_postgres()
    with tempfile.TemporaryDirectory(prefix="rigi-offline-bench-") as name:
        folder = Path(name)
        with own_redis(folder / "redis") as redis_url:
            result = asyncio.run(_measure(folder, redis_url))
    print(describe(result))
    return result


def describe(result: OfflineResult) -> str:
    p = functools.partial(percentile, fraction=0.5)
    q = functools.partial(percentile, fraction=0.99)
    return (
        f"catch-up: {result.events} events in {result.catch_up_s:.2f} s = "
        f"{result.events_per_s:,.0f} events/s (goal ≥ {GOAL_EVENTS_PER_S:,.0f}); central's CPU "
        f"{result.cpu_ms_per_1000:.0f} ms per 1,000 events, its reports included; the node's "
        f"{result.node_cpu_ms_per_1000:.0f} ms\n"
        f"live link: call at the centre {p(result.live_call_ms):.1f} / "
        f"{q(result.live_call_ms):.1f} ms (p50 / p99); call → central's bus "
        f"{p(result.live_central_ms):.1f} / {q(result.live_central_ms):.1f} ms "
        f"(goal p99 ≤ {GOAL_LIVE_P99_MS:,.0f} ms)"
    )


def report_rows(result: OfflineResult | None) -> tuple[list[str], list[str]]:
    """The report's rows and goal lines (benchmarks/run.py)."""
    what = "a branch node after a day offline, 2 central processes (PostgreSQL + Redis)"
    if result is None:
        return [], [f"{what}: not measured (see the run's output)"]
    rate = result.events_per_s
    live_p99 = percentile(result.live_central_ms, 0.99)
    rate_met, live_met = rate >= GOAL_EVENTS_PER_S, live_p99 <= GOAL_LIVE_P99_MS
    verdict = {True: "**met**", False: "**short**"}
    rows = [
        f"| {what}: catch-up of {result.events:,} events | {rate:,.0f} events/s "
        f"({result.catch_up_s:.2f} s); central's CPU {result.cpu_ms_per_1000:.0f} ms per 1,000 "
        f"events, its reports included; the node's {result.node_cpu_ms_per_1000:.0f} ms "
        f"| goal ≥ {GOAL_EVENTS_PER_S:,.0f} events/s "
        f"| {verdict[rate_met]} |",
        f"| a call at the centre → central's bus, live link ({len(result.live_central_ms)} calls) "
        f"| p50 {percentile(result.live_central_ms, 0.5):.1f} ms, p99 {live_p99:.1f} ms "
        f"| the call alone at the node: p50 {percentile(result.live_call_ms, 0.5):.1f} ms, "
        f"p99 {percentile(result.live_call_ms, 0.99):.1f} ms; goal p99 ≤ "
        f"{GOAL_LIVE_P99_MS:,.0f} ms | {verdict[live_met]} |",
    ]
    goals = [
        f"branch node catch-up: {verdict[rate_met]} ({rate:,.0f} events/s)",
        f"branch node live link: {verdict[live_met]} (p99 {live_p99:.1f} ms)",
    ]
    return rows, goals


if __name__ == "__main__":
    main()
