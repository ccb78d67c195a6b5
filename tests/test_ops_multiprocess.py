"""Two `queue-server serve` processes sharing `PROMETHEUS_MULTIPROC_DIR`: a scrape of either
reports what both did, and a process that stops leaves the live gauges."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from tests.support import TEST_CATALOG, free_port, in_the_hall
from tests.test_ops_logs import wait_until_up

B = "/api/v1/branches/testhall"
TOKEN = "a-scraper-token-for-the-test"


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def issued(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> float:
    return samples.get(("rigi_tickets_issued_total", frozenset({("branch", "testhall")})), 0)


def phones(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> float:
    return samples.get(("rigi_feed_connections", frozenset({("kind", "ticket")})), 0)


def test_a_scrape_of_one_process_sums_both_and_forgets_a_stopped_one(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = os.environ | {
        "RIGI_DATA_DIR": str(tmp_path),
        "RIGI_CONFIG": str(TEST_CATALOG),
        "RIGI_METRICS_TOKEN": TOKEN,
        "RIGI_ISSUE_RATE_ADDRESS": "1000/minute",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    processes: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for _ in range(2):  # one after the other: the first migrates the database
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", "queue_server", "serve", "--port", str(port)],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            processes.append(process)
            urls.append(f"http://127.0.0.1:{port}")
            wait_until_up(urls[-1], process)  # type: ignore[arg-type]
        ids = []
        hall = in_the_hall((tmp_path / "secret_key").read_text().strip())  # the shared dev key
        for url, count in zip(urls, (2, 3), strict=True):
            for _ in range(count):
                response = httpx.post(
                    url + f"{B}/tickets", json={"service_id": "id_card"}, headers=hall
                )
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])
        assert issued(scrape(urls[0])) == issued(scrape(urls[1])) == 5

        async def follow_on_second() -> float:
            second = urls[1].replace("http://", "ws://")
            async with connect(f"{second}/ws/tickets/{ids[0]}") as phone:
                assert json.loads(await phone.recv())["type"] == "ticket"
                return phones(await asyncio.to_thread(scrape, urls[0]))

        assert asyncio.run(follow_on_second()) == 1
        processes[1].send_signal(signal.SIGINT)
        processes[1].wait(timeout=30)
        after = scrape(urls[0])
        assert phones(after) == 0
        assert issued(after) == 5  # counters of a stopped process still count
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            process.wait(timeout=30)
