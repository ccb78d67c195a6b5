"""Tickets issued per second through the HTTP API, each one a durable commit.

CLIENTS keep-alive connections post `{"service_id": "stamp"}` as fast as answers come, for
WARM_UP_S (not counted) then DURATION_S. Rigi is `POST /api/v1/branches/{branch}/tickets`
(anonymous, rate limits lifted); the baseline is benchmarks/bare_app.py's `POST /tickets`:
one INSERT and commit through SQLAlchemy Core on the same driver and database.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchmarks._support import (
    POSTGRES_URL,
    B,
    LeanClient,
    bare,
    create_admin,
    percentile,
    reset_postgres,
    rigi_cli,
    rigi_environment,
)

CLIENTS = 16
WARM_UP_S = 1.0
DURATION_S = 5.0
BODY = b'{"service_id":"stamp"}'


@dataclass
class Rate:
    per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    statuses: dict[int, int]

    def line(self, what: str) -> str:
        return (
            f"{what}: {self.per_s:.0f} tickets/s ({CLIENTS} clients, {DURATION_S:.0f} s), "
            f"p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, errors {self.errors}"
        )


async def _load(port: int, path: str) -> Rate:
    clients = [await LeanClient.open(port) for _ in range(CLIENTS)]
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    start = time.perf_counter()
    counting_from = start + WARM_UP_S
    stop = counting_from + DURATION_S

    async def work(client: LeanClient) -> None:
        while (sent := time.perf_counter()) < stop:
            try:
                status, _ = await asyncio.wait_for(client.post_json(path, BODY), 30)
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                status = 0
            done = time.perf_counter()
            if sent >= counting_from and done <= stop:
                statuses[status] += 1
                latencies.append(done - sent)
            if status == 0:
                return

    try:
        await asyncio.gather(*(work(client) for client in clients))
    finally:
        await asyncio.gather(*(client.close() for client in clients))
    ok = sum(count for status, count in statuses.items() if status in (200, 201))
    return Rate(
        ok / DURATION_S,
        percentile(latencies, 0.5) * 1000,
        percentile(latencies, 0.99) * 1000,
        sum(statuses.values()) - ok,
        dict(statuses),
    )


def rigi_rate(database: str, forecast_runs: int | None = None) -> Rate:
    """`database` is "sqlite" (the default file) or "postgresql"; `forecast_runs` sets
    `RIGI_FORECAST_RUNS` (None: the server's default; 0: the wait forecast off)."""
    with tempfile.TemporaryDirectory() as folder:
        url = None
        if database == "postgresql":
            reset_postgres()
            url = POSTGRES_URL
        env = rigi_environment(Path(folder), url, "memory://")
        if forecast_runs is not None:
            env["RIGI_FORECAST_RUNS"] = str(forecast_runs)
        create_admin(env)
        with rigi_cli(env) as server:
            return asyncio.run(_load(server.port, f"{B}/tickets"))


def bare_rate(database: str) -> Rate:
    with tempfile.TemporaryDirectory() as folder:
        if database == "postgresql":
            reset_postgres()
            url = POSTGRES_URL
        else:
            url = f"sqlite+aiosqlite:///{Path(folder) / 'bare.sqlite3'}"
        env = rigi_environment(Path(folder), None, "memory://") | {"BARE_DATABASE_URL": url}
        with bare(env) as server:
            return asyncio.run(_load(server.port, "/tickets"))
