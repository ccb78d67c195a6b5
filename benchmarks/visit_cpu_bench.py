"""What one visit costs the server in CPU, measured without queueing: one `queue-server serve`
on PostgreSQL and Redis with the shipped organisation (86 branches), lobby displays on the
boards, and visits run one after another (issue, call next, start, finish), each followed by a
phone on its ticket's feed until it sees its visit end.

The national day (national_bench.py) measures the same cost under load, where a saturated,
shared machine makes the figure move by a quarter from run to run; here the visits do not
overlap, so the figure is the work itself: it is the one to compare before and after a change.
Reported: the server's CPU per visit (user + system, /proc/<pid>/stat), split into the four
requests and the feed frames they cause.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from benchmarks._support import (
    ADMIN,
    PASSWORD,
    PING,
    PONG,
    POSTGRES_URL,
    ROOT,
    create_admin,
    in_the_hall,
    own_redis,
    reset_postgres,
    rigi_environment,
)
from queue_server.catalog.loader import load_catalog
from tests.proxy_cluster import cpu_seconds, servers

VISITS = int(os.environ.get("VISIT_CPU_VISITS", "150"))
BRANCHES = 20  # branches the visits go round, one open counter each
DISPLAYS_PER_BRANCH = 2
WARM_UP = 10  # visits before the measurement starts (caches, prepared statements)
CONFIG = ROOT / "config"
DONE = '"status":"done"'
PHONE_TIMEOUT_S = 30.0


@dataclass
class Result:
    visits: int
    cpu_s: float
    wall_s: float

    @property
    def ms_per_visit(self) -> float:
        return self.cpu_s * 1000 / self.visits


async def _phone(url: str, ticket_id: str) -> None:
    async with connect(f"{url}/ws/tickets/{ticket_id}", ping_interval=None) as ws:
        await ws.send(PONG)
        async with asyncio.timeout(PHONE_TIMEOUT_S):
            async for raw in ws:
                if raw == PING:
                    await ws.send(PONG)
                elif DONE in str(raw):
                    return


async def _displays(url: str, branch: str, token: str) -> list[asyncio.Task[None]]:
    async def follow() -> None:
        async with connect(f"{url}/ws/branches/{branch}/board", ping_interval=None) as ws:
            await ws.send(json.dumps({"type": "hello", "token": token}))
            async for raw in ws:
                if raw == PING:
                    await ws.send(PONG)

    return [asyncio.create_task(follow()) for _ in range(DISPLAYS_PER_BRANCH)]


async def _run(url: str, pid: int) -> Result:
    catalog = load_catalog(CONFIG)
    ws_url = url.replace("http://", "ws://")
    picked = []
    for branch_id in sorted(catalog.branches)[:BRANCHES]:
        counter = catalog.branches[branch_id].counters[0]
        service = next(s for s in catalog.profile(branch_id, counter.id) if s)
        picked.append((branch_id, counter.id, service))
    async with httpx.AsyncClient(base_url=url, timeout=30) as staff:
        signed = await staff.post("/api/v1/session", json={"username": ADMIN, "password": PASSWORD})
        staff.headers["X-CSRF-Token"] = signed.raise_for_status().json()["csrf_token"]
        displays: list[asyncio.Task[None]] = []
        for branch_id, counter_id, _ in picked:
            made = await staff.post(
                f"/api/v1/branches/{branch_id}/devices", json={"role": "display", "name": "lobby"}
            )
            displays += await _displays(ws_url, branch_id, made.raise_for_status().json()["token"])
            opened = await staff.post(f"/api/v1/branches/{branch_id}/counters/{counter_id}/open")
            opened.raise_for_status()
        async with httpx.AsyncClient(base_url=url, timeout=30) as citizen:

            async def visit(n: int) -> None:
                branch_id, counter_id, service = picked[n % len(picked)]
                issued = await citizen.post(
                    f"/api/v1/branches/{branch_id}/tickets",
                    json={"service_id": service},
                    headers=in_the_hall(branch_id),  # the citizen scanned the lobby screen
                )
                phone = asyncio.create_task(_phone(ws_url, issued.raise_for_status().json()["id"]))
                await asyncio.sleep(0.05)  # the phone connects while the ticket waits
                path = f"/api/v1/branches/{branch_id}/counters/{counter_id}"
                for action in ("/call-next", "/start", "/finish"):
                    (await staff.post(path + action)).raise_for_status()
                await phone

            for n in range(WARM_UP):
                await visit(n)
            before, started = cpu_seconds(pid), time.perf_counter()
            for n in range(VISITS):
                await visit(n)
            cpu, wall = cpu_seconds(pid) - before, time.perf_counter() - started
        for task in displays:
            task.cancel()
        await asyncio.gather(*displays, return_exceptions=True)
    return Result(VISITS, cpu, wall)


def main() -> Result:
    reset_postgres()
    with tempfile.TemporaryDirectory() as folder, own_redis(Path(folder) / "redis") as redis:
        env = rigi_environment(Path(folder), POSTGRES_URL, redis) | {"RIGI_CONFIG": str(CONFIG)}
        create_admin(env)
        with servers(env, 1) as processes:
            return asyncio.run(_run(processes.urls[0], processes.pids[0]))


def describe(result: Result) -> str:
    return (
        f"{result.visits} visits one after another on 1 process (PostgreSQL + Redis, 86 "
        f"branches, {BRANCHES * DISPLAYS_PER_BRANCH} displays, a phone per visit): server CPU "
        f"{result.ms_per_visit:.1f} ms per visit ({result.ms_per_visit:.1f} s per 1,000), "
        f"{result.wall_s:.1f} s"
    )


if __name__ == "__main__":
    print(describe(main()))
