"""Notifications under load: does a branch with 1,000 subscribed tickets still call to its
displays as fast, and how many messages a second does the worker send to the local SMS gateway?

Call to display: as benchmarks/realtime_bench.py (1,000 displays, CALLS calls), but the branch
has SUBSCRIBED waiting tickets that left a number, so every call also starts the outbox: the
"near" check over them (notify/outbox.py) and the sends of what it finds. Worker rate: a
manager's broadcast to those SUBSCRIBED tickets queues one message each at once; the time is
from the broadcast's answer to the gateway holding them all (its `GET /counts`), one
`queue-server serve` and `queue-server sms-gateway`, each a subprocess.

`python -m benchmarks.notify_bench` runs it alone (with its own bare baseline).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks import realtime_bench
from benchmarks._support import (
    BRANCH,
    POSTGRES_URL,
    B,
    Fleet,
    create_admin,
    display_token,
    reset_postgres,
    rigi_cli,
    rigi_environment,
    serving,
    sign_in,
)
from benchmarks.realtime_bench import COUNTER, MARKER, Latency

SUBSCRIBED = 1_000
GATEWAY_TOKEN = "bench-gateway-token"
SEND_TIMEOUT_S = 300
POLL_S = 0.05
SUBSCRIBE_CONCURRENCY = 20


@dataclass
class WorkerRate:
    messages: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    def line(self, what: str) -> str:
        return f"{what}: {self.messages} messages in {self.seconds:.2f} s, {self.per_s:.0f}/s"


@dataclass
class NotifyResult:
    latency: Latency | None
    rate: WorkerRate


def _number(n: int) -> str:
    return f"+99559{n:07d}"


async def _subscribe_all(client: httpx.AsyncClient, ids: list[str]) -> None:
    gate = asyncio.Semaphore(SUBSCRIBE_CONCURRENCY)

    async def one(n: int, ticket_id: str) -> None:
        async with gate:
            answer = await client.post(
                f"/api/v1/tickets/{ticket_id}/subscribe", json={"phone": _number(n)}
            )
            answer.raise_for_status()

    await asyncio.gather(*(one(n, i) for n, i in enumerate(ids)))


async def _gateway_count(gateway: httpx.AsyncClient) -> int:
    return int((await gateway.get("/counts")).json()["sent"])


async def _run(url: str, ws_url: str, gateway_url: str, displays: int, calls: int,
               measure_calls: bool, subscribe: bool) -> NotifyResult:  # fmt: skip
    async with (
        httpx.AsyncClient(base_url=url, timeout=60) as client,
        httpx.AsyncClient(base_url=gateway_url, timeout=30) as gateway,
    ):
        await sign_in(client)
        (await client.post(f"{B}/counters/{COUNTER}/open")).raise_for_status()
        called = realtime_bench.WARM_UP_CALLS + calls
        ids = []
        for _ in range(called + SUBSCRIBED):  # the first ones are called, the rest wait
            answer = await client.post(f"{B}/tickets", json={"service_id": "stamp"})
            ids.append(answer.raise_for_status().json()["id"])
        if subscribe:
            await _subscribe_all(client, ids[called:])
        latency = None
        if measure_calls:
            token = await display_token(client)
            fleet = Fleet(MARKER)
            hello = json.dumps({"type": "hello", "token": token})
            await fleet.open(f"{ws_url}/ws/branches/{BRANCH}/board", displays, hello)
            try:

                async def call() -> None:
                    (await client.post(f"{B}/counters/{COUNTER}/call-next")).raise_for_status()

                async def after() -> None:
                    (await client.post(f"{B}/counters/{COUNTER}/no-show")).raise_for_status()

                latency = await realtime_bench._calls(fleet, call, after, calls)
            finally:
                await fleet.close()
        if not subscribe:
            return NotifyResult(latency, WorkerRate(0, 0.0))
        await asyncio.sleep(2.0)  # the "near" messages of the calls go out first
        before = await _gateway_count(gateway)
        answer = await client.post(f"{B}/notify/broadcast", json={"kind": "delay", "minutes": 30})
        started = time.perf_counter()
        reached = answer.raise_for_status().json()["recipients"]
        for _ in range(int(SEND_TIMEOUT_S / POLL_S)):  # a bound, so a broken run ends
            if await _gateway_count(gateway) >= before + reached:
                break
            await asyncio.sleep(POLL_S)
        sent = await _gateway_count(gateway) - before
        return NotifyResult(latency, WorkerRate(sent, time.perf_counter() - started))


def run(database: str = "sqlite", *, displays: int = realtime_bench.DISPLAYS,
        calls: int = realtime_bench.CALLS, measure_calls: bool = True,
        subscribe: bool = True) -> NotifyResult:  # fmt: skip
    """One `queue-server serve` (memory bus) with SUBSCRIBED waiting tickets that left a number
    (`subscribe`; without, the same line with nobody subscribed: what the notifications cost),
    sending SMS to one `queue-server sms-gateway`."""
    url = None
    if database == "postgresql":
        reset_postgres()
        url = POSTGRES_URL
    with tempfile.TemporaryDirectory() as folder:
        gateway_env = os.environ | {"RIGI_SMS_GATEWAY_TOKEN": GATEWAY_TOKEN}
        gateway_command = [sys.executable, "-m", "queue_server", "sms-gateway",
                           "--host", "127.0.0.1"]  # fmt: skip
        with serving(gateway_command, gateway_env, "/counts") as gateway:
            env = rigi_environment(Path(folder), url, "memory://") | {
                "RIGI_NOTIFY_SMS_URL": f"sms+{gateway.url}/send?token={GATEWAY_TOKEN}",
                "RIGI_NOTIFY_SUBSCRIBE_RATE": "1000000/hour",
            }
            create_admin(env)
            with rigi_cli(env) as server:
                return asyncio.run(
                    _run(
                        server.url,
                        server.ws_url,
                        gateway.url,
                        displays,
                        calls,
                        measure_calls,
                        subscribe,
                    )
                )


def main() -> None:
    result = run()
    assert result.latency is not None
    print(result.latency.line(f"rigi, one process, {SUBSCRIBED} subscribed"))
    print(result.rate.line("worker → local SMS gateway (SQLite)"))
    unsubscribed = run(subscribe=False).latency
    assert unsubscribed is not None
    print(unsubscribed.line(f"rigi, one process, {SUBSCRIBED} waiting, nobody subscribed"))
    plain, frame = realtime_bench.single_process()
    print(plain.line("rigi, one process, a short line"))
    print(realtime_bench.bare_broadcast(frame).line("bare broadcast"))
    print(
        run("postgresql", measure_calls=False).rate.line("worker → local SMS gateway (PostgreSQL)")
    )


if __name__ == "__main__":
    main()
