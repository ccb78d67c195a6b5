"""Time `POST …/call-next` over HTTP against a real `queue-server serve` (not a test).

    python scripts/time_call_next.py [sqlite|postgres] [calls]

Issues `calls` tickets, then calls each one and marks it a no-show, timing only the call;
prints the p50 and p90 in milliseconds. SQLite runs on a fresh file in a temporary folder,
PostgreSQL on `RIGI_TIMING_DATABASE_URL` (default: the `test_core_timing` database, emptied).
Used to compare the write path before and after a change on the same machine.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._support import (
    B,
    create_admin,
    percentile,
    reset_postgres,
    rigi_cli,
    rigi_environment,
    sign_in,
)

COUNTER = "c01"
WARM_UP = 20
POSTGRES_URL = os.environ.get(
    "RIGI_TIMING_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test_core_timing"
)


async def _measure(url: str, calls: int) -> list[float]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await sign_in(client)
        (await client.post(f"{B}/counters/{COUNTER}/open")).raise_for_status()
        for _ in range(WARM_UP + calls):
            (await client.post(f"{B}/tickets", json={"service_id": "stamp"})).raise_for_status()
        samples = []
        for n in range(WARM_UP + calls):
            started = time.perf_counter()
            (await client.post(f"{B}/counters/{COUNTER}/call-next")).raise_for_status()
            if n >= WARM_UP:
                samples.append((time.perf_counter() - started) * 1000)
            (await client.post(f"{B}/counters/{COUNTER}/no-show")).raise_for_status()
        return samples


def main() -> None:
    backend = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    with tempfile.TemporaryDirectory() as folder:
        database_url = None
        if backend == "postgres":
            reset_postgres(POSTGRES_URL)
            database_url = POSTGRES_URL
        env = rigi_environment(Path(folder), database_url, "memory://")
        create_admin(env)
        with rigi_cli(env) as server:
            samples = asyncio.run(_measure(server.url, calls))
    print(
        f"{backend}: call-next over HTTP, {len(samples)} calls: "
        f"p50 {percentile(samples, 0.5):.2f} ms, p90 {percentile(samples, 0.9):.2f} ms"
    )


if __name__ == "__main__":
    main()
