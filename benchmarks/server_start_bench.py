"""What a test server's start and stop cost on PostgreSQL, the reports projector's process
served at once or waited for: `python -m benchmarks.server_start_bench [--rounds N]`.

The suite starts a few hundred PostgreSQL test servers (`tests/support.py`'s `LiveServer`: a
real uvicorn server in a thread, the database copied from a migrated one). Each started a
projector process and waited for it to say READY (importing SQLAlchemy and the projector,
connecting: ~0.65 s on an idle machine, several seconds at load), and at stop waited for it to
end. Three ways, alternated in one process on the bench database, each round:

- **waiting**: the server serves once its child is ready (the previous design, emulated by
  waiting for `ProjectorProcess.ready` after `start`);
- **serving**: as shipped, the server serves at once; a child still starting at stop is killed;
- **without**: no reports part at all (the floor: what a server costs without a projector).

Each start is followed by what a short test does (a manager signs in, a ticket is issued and
read back), then the server stops. Wall per phase and this process's CPU with its reaped
children's (the projector processes) are reported as medians.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks._support import POSTGRES_URL, percentile, reset_postgres
from queue_server.reporting import process
from queue_server.reporting.background import reports
from tests.support import LiveServer, test_settings

WAYS = ("waiting", "serving", "without")
READY_TIMEOUT_S = 60.0


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@contextlib.contextmanager
def _waiting_for_ready() -> Iterator[None]:
    """The previous `ProjectorProcess.start`: return once the child has said READY."""
    shipped = process.ProjectorProcess.start

    async def start(self: process.ProjectorProcess) -> None:
        await shipped(self)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.ready:
            if time.monotonic() > deadline:
                raise RuntimeError("the projector's process did not start")
            await asyncio.sleep(0.005)

    process.ProjectorProcess.start = start  # type: ignore[method-assign]
    try:
        yield
    finally:
        process.ProjectorProcess.start = shipped  # type: ignore[method-assign]


async def _short_test(live: LiveServer) -> None:
    async with live.client("manager") as manager:
        path, ticket_body = "/api/v1/branches/testhall/tickets", {"service_id": "passport"}
        issued = await manager.post(path, json=ticket_body)
        issued.raise_for_status()
        ticket = issued.json()["id"]
        (await manager.get(f"/api/v1/tickets/{ticket}")).raise_for_status()


def _one(way: str, folder: Path) -> dict[str, float]:
    reset_postgres()
    live = LiveServer(test_settings(POSTGRES_URL, folder))
    if way == "without":
        live.app.state.extensions.remove(reports)
    cpu, began = _cpu_s(), time.perf_counter()
    with _waiting_for_ready() if way == "waiting" else contextlib.nullcontext():
        live.start()
    started = time.perf_counter()
    asyncio.run(_short_test(live))
    used = time.perf_counter()
    live.stop()
    stopped = time.perf_counter()
    return {
        "start_s": started - began,
        "use_s": used - started,
        "stop_s": stopped - used,
        "total_s": stopped - began,
        "cpu_s": _cpu_s() - cpu,
    }


def main(rounds: int = 8) -> dict[str, Any]:
    runs: dict[str, list[dict[str, float]]] = {way: [] for way in WAYS}
    with tempfile.TemporaryDirectory() as folder:
        for number in range(rounds):
            order = WAYS if number % 2 == 0 else tuple(reversed(WAYS))
            for way in order:
                figures = _one(way, Path(folder) / f"{number}-{way}")
                runs[way].append(figures)
                shown = ", ".join(f"{key} {value:.2f}" for key, value in figures.items())
                print(f"round {number + 1}, {way}: {shown}", flush=True)
    return {"rounds": rounds, "runs": runs}


def describe(result: dict[str, Any]) -> str:
    lines = [f"a PostgreSQL test server's start + a short test + stop, {result['rounds']} rounds:"]
    for way, runs in result["runs"].items():
        medians = {key: percentile([run[key] for run in runs], 0.5) for key in runs[0]}
        lines.append(f"  {way}: " + ", ".join(f"{k} {v:.2f}" for k, v in medians.items()))
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=8)
    print(describe(main(parser.parse_args().rounds)))
