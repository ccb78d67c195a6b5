"""Printer agent latency: a print job sent over `/ws/printers` until its cut reaches the printer.

Real parts on loopback: a `websockets` server standing in for queue_server, the agent in this
process (journal on a temporary SQLite file, python-escpos `Network` in its worker thread) and
the fake TCP printer that decodes the bytes. Jobs go one at a time, so the figure is the latency
of one ticket (journal write, status query, layout with Georgian raster lines and QR, ~30 kB of
ESC/POS, journal mark) — not throughput. Run: `python -m benchmarks.printer_bench`.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve

from printer_agent.agent import PrinterAgent
from printer_agent.config import DEFAULT_BOLD_FONT, DEFAULT_FONT, parse_config
from printer_agent.fake_printer import FakePrinter
from printer_agent.layout import Fonts
from printer_agent.ticket import LANGUAGES, sample_ticket_json

JOBS = 60
WARM_UP = 5
TOKEN = "bench-token"


async def _measure(jobs: int, width: int) -> list[float]:
    connected: asyncio.Queue[ServerConnection] = asyncio.Queue()
    acked: asyncio.Queue[str] = asyncio.Queue()

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()  # hello
        await connected.put(ws)
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] == "ack":
                await acked.put(message["job_id"])

    printer = FakePrinter().start()
    try:
        async with serve(handler, "127.0.0.1", 0, compression=None) as ws_server:
            port = next(iter(ws_server.sockets)).getsockname()[1]
            with tempfile.TemporaryDirectory() as folder:
                config = parse_config(
                    {
                        "agent": {
                            "server_url": f"ws://127.0.0.1:{port}/ws/printers",
                            "journal": str(Path(folder) / "journal.sqlite3"),
                        },
                        "printers": [
                            {
                                "id": "bench",
                                "transport": "network",
                                "host": "127.0.0.1",
                                "port": printer.port,
                                "width": width,
                                "timeout": 3,
                            }
                        ],
                    },
                    {"RIGI_PRINTER_TOKEN": TOKEN},
                )
                fonts = Fonts.load(Path(DEFAULT_FONT), Path(DEFAULT_BOLD_FONT))
                latencies: list[float] = []
                async with PrinterAgent(config, fonts).running():
                    ws = await asyncio.wait_for(connected.get(), 10)
                    for index in range(jobs + WARM_UP):
                        job_id = f"bench-{index}"
                        language = LANGUAGES[index % len(LANGUAGES)]
                        message = {
                            "type": "print",
                            "job": {
                                "id": job_id,
                                "reprint": False,
                                "ticket": sample_ticket_json(language, ticket_id=job_id),
                            },
                        }
                        sent = time.perf_counter()
                        await ws.send(json.dumps(message, ensure_ascii=False))
                        await asyncio.wait_for(acked.get(), 30)
                        cut = printer.wait_for_tickets(index + 1, timeout=30)[index].cut_at
                        if index >= WARM_UP:
                            latencies.append(cut - sent)
    finally:
        printer.stop()
    return latencies


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> dict[str, float]:
    """Print and return median and p99 (ms) of job-sent → last byte at the printer."""
    results: dict[str, float] = {}
    for width in (576, 384):
        latencies = asyncio.run(_measure(JOBS, width))
        median_ms = statistics.median(latencies) * 1000
        p99_ms = _p99(latencies) * 1000
        results[f"printer_job_to_last_byte_{width}_median_ms"] = median_ms
        results[f"printer_job_to_last_byte_{width}_p99_ms"] = p99_ms
        print(
            f"printer agent, {width} dots, {JOBS} jobs (5 languages): job sent → last byte "
            f"at printer: median {median_ms:.1f} ms, p99 {p99_ms:.1f} ms"
        )
    return results


if __name__ == "__main__":
    main()
