"""What keeping report facts costs issuing and call-next: the same server with and without its
reports projector, measured back to back (ABAB, best of each), on SQLite and PostgreSQL.

`python -m benchmarks.reports_bench [sqlite|postgresql ...]` prints the rates and ratios;
`python -m benchmarks.reports_bench serve --port P [--without-reports]` is the server it runs.
Issuing: anonymous `POST .../tickets` from CLIENTS keep-alive connections (as issue_bench).
Call-next: every counter of the hall, signed in as the admin, loops call-next then no-show
over a backlog of tickets. Then how long the projector takes to apply what the load wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks import issue_bench
from benchmarks._support import (
    BRANCH,
    POSTGRES_URL,
    B,
    create_admin,
    reset_postgres,
    rigi_environment,
    serving,
    sign_in,
)

COUNTERS = [f"c{n:02d}" for n in range(4, 11)]  # the hall's counters that serve `stamp`
CALL_S = 5.0
BACKLOG = 400  # the dispatcher ranks every waiting ticket: keep the line realistic
ROUNDS = 2
LAG_LIMIT_S = 120.0


def _serve(port: int, without_reports: bool) -> None:
    import uvicorn

    from queue_server.app import create_app
    from queue_server.reporting.background import reports

    app = create_app()
    if without_reports:
        app.state.extensions.remove(reports)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws_per_message_deflate=False)


async def _call_rate(url: str) -> float:
    """Call-next + no-show cycles per second over every counter."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as admin:
        await sign_in(admin)
        for counter in COUNTERS:
            (await admin.post(f"{B}/counters/{counter}/open")).raise_for_status()
        body = {"service_id": "stamp"}
        for _ in range(BACKLOG // 50):
            await asyncio.gather(*(admin.post(f"{B}/tickets", json=body) for _ in range(50)))
        cycles = 0
        stop = time.perf_counter() + CALL_S

        async def counter_loop(counter: str) -> None:
            nonlocal cycles
            while time.perf_counter() < stop:
                called = await admin.post(f"{B}/counters/{counter}/call-next")
                if called.status_code != 200:
                    return
                (await admin.post(f"{B}/counters/{counter}/no-show")).raise_for_status()
                cycles += 1

        await asyncio.gather(*(counter_loop(c) for c in COUNTERS))
        return cycles / CALL_S


async def _projector_lag(database_url: str) -> float:
    """Seconds from the end of the load until the projector has applied every event."""
    from sqlalchemy import select

    from queue_server.store.database import Database
    from queue_server.store.schema import branch_streams
    from queue_server.store.schema_reports import report_cursors

    database = Database(database_url)
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < LAG_LIMIT_S:
            async with database.read() as conn:
                head = (await conn.execute(select(branch_streams.c.last_seq))).scalar()
                applied = (await conn.execute(select(report_cursors.c.seq))).scalar()
            if head is not None and applied == head:
                return time.perf_counter() - started
            await asyncio.sleep(0.05)
    finally:
        await database.dispose()
    return float("nan")


async def _rebuild_rate(database_url: str, env: dict[str, str]) -> float:
    """Events per second the projector applies in one process (a rebuild of the run's log)."""
    from queue_server.catalog.loader import load_catalog
    from queue_server.store.database import Database
    from queue_server.store.reports.runner import rebuild

    database = Database(database_url)
    try:
        started = time.perf_counter()
        applied = await rebuild(database, load_catalog(Path(env["RIGI_CONFIG"])), [BRANCH])
        return applied[BRANCH] / (time.perf_counter() - started)
    finally:
        await database.dispose()


def measure(database: str, with_reports: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        url = None
        if database == "postgresql":
            reset_postgres()
            url = POSTGRES_URL
        env = rigi_environment(Path(folder), url, "memory://")
        create_admin(env)
        command = [sys.executable, "-m", "benchmarks.reports_bench", "serve"]
        if not with_reports:
            command.append("--without-reports")
        with serving(command, env, "/readyz") as server:
            issue = asyncio.run(issue_bench._load(server.port, f"{B}/tickets")).per_s
            call = asyncio.run(_call_rate(server.url))
            database_url = url or f"sqlite+aiosqlite:///{Path(folder) / 'rigi.sqlite3'}"
            lag = asyncio.run(_projector_lag(database_url)) if with_reports else float("nan")
        rebuilt = asyncio.run(_rebuild_rate(database_url, env)) if with_reports else float("nan")
    return {"issue": issue, "call": call, "lag": lag, "apply_per_s": rebuilt}


def main(databases: list[str]) -> None:
    for database in databases:
        best: dict[bool, dict[str, float]] = {}
        for _ in range(ROUNDS):
            for with_reports in (False, True):
                figures = measure(database, with_reports)
                print(database, "with" if with_reports else "without", figures, flush=True)
                kept = best.setdefault(with_reports, figures)
                for key in ("issue", "call"):
                    kept[key] = max(kept[key], figures[key])
        issue = best[True]["issue"] / best[False]["issue"]
        call = best[True]["call"] / best[False]["call"]
        print(
            f"{database}: issuing {best[False]['issue']:.0f}/s without reports, "
            f"{best[True]['issue']:.0f}/s with ({issue:.0%}); call-next+no-show "
            f"{best[False]['call']:.0f}/s without, {best[True]['call']:.0f}/s with ({call:.0%}); "
            f"projector caught up {best[True]['lag']:.1f} s after the load, applies "
            f"{best[True]['apply_per_s']:.0f} events/s in a rebuild",
            flush=True,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", nargs="*", default=["sqlite", "postgresql"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--without-reports", action="store_true")
    args = parser.parse_args()
    if args.what == ["serve"]:
        _serve(args.port, args.without_reports)
    else:
        main(args.what)
