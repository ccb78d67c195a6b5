"""What keeping the report facts costs issuing and call-next (issue #15's bound: ≤ 10% of their
rate): `python -m benchmarks.facts_cost_bench [sqlite|postgresql] [--rounds N]`.

The same server twice, side by side in one run: as shipped, and without its reports part (the
background projector that turns committed events into visit facts and rollups; nothing else
changes). Each round starts both afresh, in alternating order, and measures on each:

- **call-next**: with WAITING people waiting, one client per open counter (COUNTERS of them)
  signed in as the administrator, each calling the next waiting ticket and marking it a
  no-show, over and over: the rate is the pairs a second, both requests' events going to the
  projector;
- **issue**: then CLIENTS keep-alive clients post a ticket as fast as answers come (as
  issue_bench).

Rounds alternate the order so that a machine whose load drifts (a shared 2-core machine) does
not favour one side; the ratio of the medians is the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from benchmarks._support import (
    ADMIN,
    PASSWORD,
    POSTGRES_URL,
    B,
    LeanClient,
    Server,
    create_admin,
    percentile,
    reset_postgres,
    rigi_environment,
    serving,
)

CLIENTS = 16
COUNTERS = [f"c{n:02d}" for n in range(1, 11)]  # the bench hall's counters that serve `stamp`
WARM_UP_S = 1.0
DURATION_S = 6.0
TICKET = b'{"service_id":"stamp"}'
WAITING = 1500  # waiting before the calls start: more than 10 counters take in 7 s (600 ran out)
BOUND = 0.10  # facts may cost issuing and call-next at most this share of their rate
GATHER_S = 1.5  # after the issues, the background projector's last batch (it gathers 1 s)


def app_without_facts() -> Any:
    """The shipped application without its reports part (for `benchmarks.servers`)."""
    from queue_server.app import create_app
    from queue_server.reporting.background import reports

    app = create_app()
    app.state.extensions.remove(reports)
    return app


@contextlib.contextmanager
def _server(database: str, facts: bool) -> Iterator[Server]:
    with tempfile.TemporaryDirectory() as folder:
        url = None
        if database == "postgresql":
            reset_postgres()
            url = POSTGRES_URL
        env = rigi_environment(Path(folder), url, "memory://")
        create_admin(env)
        app = "rigi" if facts else "rigi-without-facts"
        with serving([sys.executable, "-m", "benchmarks.servers", app], env, "/readyz") as server:
            yield server


async def _rate(
    port: int, jobs: list[tuple[str, bytes, str]], pair: bool
) -> tuple[float, list[float], int]:
    """Requests a second (each job's client looping on its path) over DURATION_S after
    WARM_UP_S, their latencies, and how many were answered in all (warm-up included). `pair`:
    each round is the path, then a no-show there."""
    clients = [await LeanClient.open(port) for _ in jobs]
    done, latencies, answered_in_all = 0, [], 0
    start = time.perf_counter()
    counting_from, stop = start + WARM_UP_S, start + WARM_UP_S + DURATION_S

    async def loop(client: LeanClient, path: str, body: bytes, headers: str) -> None:
        nonlocal done, answered_in_all
        while (sent := time.perf_counter()) < stop:
            status, _ = await client.post_json(path, body, headers)
            answered = time.perf_counter()
            if status not in (200, 201):
                raise RuntimeError(f"{path}: {status}")
            if pair:
                counter = path.rsplit("/", 1)[0]
                status, _ = await client.post_json(f"{counter}/no-show", b"{}", headers)
                if status != 200:
                    raise RuntimeError(f"{counter}/no-show: {status}")
            answered_in_all += 1
            if sent >= counting_from and answered <= stop:
                done += 1
                latencies.append(answered - sent)

    try:
        await asyncio.gather(
            *(loop(client, *job) for client, job in zip(clients, jobs, strict=True))
        )
    finally:
        await asyncio.gather(*(client.close() for client in clients))
    return done / DURATION_S, latencies, answered_in_all


def _ticks() -> dict[int, tuple[int, int, bytes]]:
    """Every process's CPU ticks (user + system), its parent and its command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # ended meanwhile
        found[int(entry.name)] = (int(fields[11]) + int(fields[12]), int(fields[1]), command)
    return found


def _cpu_s(pid: int) -> dict[str, float]:
    """The CPU time so far (seconds) of the server (every thread), of its children (the
    projector's process on PostgreSQL) and of the PostgreSQL backends serving the bench
    database (their command line names it): where a round's time went, part by part."""
    database = POSTGRES_URL.rsplit("/", 1)[1].encode()
    parts = {"server": 0, "projector": 0, "postgres": 0}
    for process, (ticks, parent, command) in _ticks().items():
        if process == pid:
            parts["server"] += ticks
        elif parent == pid:
            parts["projector"] += ticks
        elif command.startswith(b"postgres: ") and f" {database.decode()} ".encode() in command:
            parts["postgres"] += ticks
    return {part: ticks / os.sysconf("SC_CLK_TCK") for part, ticks in parts.items()}


def _spent(before: dict[str, float], after: dict[str, float], answered: int) -> dict[str, float]:
    """CPU milliseconds a request, part by part (a backend that ended meanwhile is lost)."""
    return {part: (after[part] - before[part]) * 1000 / max(1, answered) for part in after}


async def _measure(server: Server) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        signed = await http.post("/api/v1/session", json={"username": ADMIN, "password": PASSWORD})
        signed.raise_for_status()
        headers = (
            f"Cookie: rigi_session={http.cookies['rigi_session']}\r\n"
            f"X-CSRF-Token: {signed.json()['csrf_token']}\r\n"
        )
        csrf = {"X-CSRF-Token": signed.json()["csrf_token"]}
        for counter in COUNTERS:
            (await http.post(f"{B}/counters/{counter}/open", headers=csrf)).raise_for_status()
        json_csrf = csrf | {"Content-Type": "application/json"}
        gate = asyncio.Semaphore(CLIENTS)

        async def issue_one() -> None:
            async with gate:
                (
                    await http.post(f"{B}/tickets", content=TICKET, headers=json_csrf)
                ).raise_for_status()

        await asyncio.gather(*(issue_one() for _ in range(WAITING)))
    pid = server.process.pid
    calls = [(f"{B}/counters/{c}/call-next", b"{}", headers) for c in COUNTERS]
    load_before = os.getloadavg()[0]
    cpu = _cpu_s(pid)
    called, call_latencies, calls_answered = await _rate(server.port, calls, pair=True)
    call_cpu, cpu = _spent(cpu, _cpu_s(pid), calls_answered), _cpu_s(pid)
    issue = [(f"{B}/tickets", TICKET, "")] * CLIENTS
    issued, issue_latencies, issues_answered = await _rate(server.port, issue, pair=False)
    await asyncio.sleep(GATHER_S)  # the projector's batch of the last ones is counted too
    issue_cpu = _spent(cpu, _cpu_s(pid), issues_answered)
    return {
        "issue_per_s": issued,
        "issue_p99_ms": percentile(issue_latencies, 0.99) * 1000,
        # The server's CPU (every thread and its children) per answered request, warm-up
        # included; then each part's (the server alone, its projector, PostgreSQL's backends).
        "issue_cpu_ms": issue_cpu["server"] + issue_cpu["projector"],
        **{f"issue_{part}_ms": spent for part, spent in issue_cpu.items()},
        "call_per_s": called,
        "call_p99_ms": percentile(call_latencies, 0.99) * 1000,
        "call_cpu_ms": call_cpu["server"] + call_cpu["projector"],
        **{f"call_{part}_ms": spent for part, spent in call_cpu.items()},
        # the machine's 1-minute load average before the calls and after the issues
        "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main(database: str = "sqlite", rounds: int = 3) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"facts": [], "without": []}
    for number in range(rounds):
        order = [True, False] if number % 2 == 0 else [False, True]
        for facts in order:
            with _server(database, facts) as server:
                figures = asyncio.run(_measure(server))
            runs["facts" if facts else "without"].append(figures)
            shown = ", ".join(
                f"{key} {value:.2f}" if isinstance(value, float) else f"{key} {value}"
                for key, value in figures.items()
            )
            print(f"round {number + 1}, {'with' if facts else 'without'} facts: {shown}",
                  flush=True)  # fmt: skip
    return {"database": database, "rounds": rounds, "runs": runs}


MEASURED = (("issue_per_s", "issue"), ("call_per_s", "call-next + no-show"))
CPU = {"issue": "issue_cpu_ms", "call-next + no-show": "call_cpu_ms"}


def _costs(result: dict[str, Any]) -> list[tuple[str, float, float, float]]:
    """Per measure: its name, the medians with and without facts, and the cost (a share)."""
    runs, costs = result["runs"], []
    for key, what in MEASURED:
        with_facts = percentile([r[key] for r in runs["facts"]], 0.5)
        without = percentile([r[key] for r in runs["without"]], 0.5)
        costs.append((what, with_facts, without, 1 - with_facts / without if without else 0.0))
    return costs


def describe(result: dict[str, Any]) -> str:
    lines = [f"facts' cost ({result['database']}, {result['rounds']} rounds, medians):"]
    runs = result["runs"]
    for (key, _), (what, with_facts, without, cost) in zip(MEASURED, _costs(result), strict=True):
        verdict = "met" if cost <= BOUND else "short"
        cpu = [percentile([r.get(CPU[what], 0.0) for r in runs[k]], 0.5) for k in runs]
        ratios = sorted(
            facts[key] / alone[key]
            for facts, alone in zip(runs["facts"], runs["without"], strict=True)
            if alone[key]
        )
        lines.append(
            f"  {what}: {with_facts:.1f}/s with facts, {without:.1f}/s without: ratio "
            f"{with_facts / without if without else 0.0:.2f}, cost {cost * 100:.1f}% "
            f"(bound {BOUND * 100:.0f}%): {verdict}; server CPU a request "
            f"{cpu[0]:.2f} ms with, {cpu[1]:.2f} ms without; round by round "
            + ", ".join(f"{ratio:.2f}" for ratio in ratios)
        )
        prefix = CPU[what].removesuffix("cpu_ms")
        for part in ("server", "projector", "postgres"):
            medians = [percentile([r.get(f"{prefix}{part}_ms", 0.0) for r in runs[k]], 0.5)
                       for k in runs]  # fmt: skip
            lines.append(f"    CPU a request, {part}: {medians[0]:.2f} ms with, "
                         f"{medians[1]:.2f} ms without")  # fmt: skip
    return "\n".join(lines)


def report_rows(database: str, result: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    """The row of docs/benchmarks.md's table and the goal line (benchmarks/run.py)."""
    what = f"the facts' cost to issuing and call-next ({database})"
    if result is None:
        return [], [f"{what}: not measured (see the run's output)"]
    costs = _costs(result)
    met = all(cost <= BOUND for *_, cost in costs)
    verdict = "**met**" if met else "**short**"
    figures = "; ".join(
        f"{what_}: {with_facts:.1f}/s with, {without:.1f}/s without ({cost * 100:+.1f}%)"
        for what_, with_facts, without, cost in costs
    )
    row = (
        f"| {what}, the server with and without its reports projector, "
        f"{result['rounds']} rounds side by side, medians | {figures} "
        f"| cost ≤ {BOUND * 100:.0f}% | {verdict} |"
    )
    worst = max(cost for *_, cost in costs)
    return [row], [f"{what}: {verdict} (worst cost {worst * 100:.1f}%)"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("database", nargs="?", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    print(describe(main(arguments.database, arguments.rounds)))
