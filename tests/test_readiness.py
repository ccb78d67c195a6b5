"""A fresh server says it is not ready until the wait forecast's compiled runs are loaded, so a
load balancer sends it no traffic while a fresh install compiles them (a minute or more of a
core, during which it would answer slowly)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from queue_server.domain import forecast
from queue_server.settings import Settings
from tests.support import LiveServer, test_settings

READY_WITHIN_S = 30.0


def _sqlite_settings(tmp_path: Path, **overrides: object) -> Settings:
    return test_settings(f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}", tmp_path, **overrides)


def _wait_ready(url: str) -> httpx.Response:
    deadline = time.monotonic() + READY_WITHIN_S
    while True:
        answer = httpx.get(url + "/readyz", timeout=5)
        if answer.status_code == 200 or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def test_a_server_is_not_ready_until_its_wait_forecast_is_compiled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled = threading.Event()
    started = threading.Event()
    real_warm_up = forecast.warm_up

    def slow_warm_up() -> None:  # the compile of a fresh install, held until the test says
        started.set()
        compiled.wait(READY_WITHIN_S)
        real_warm_up()

    monkeypatch.setattr(forecast, "warm_up", slow_warm_up)
    server = LiveServer(_sqlite_settings(tmp_path)).start()
    try:
        assert started.wait(READY_WITHIN_S)
        for _ in range(3):  # asked again and again while it compiles: never ready
            health = httpx.get(server.url + "/healthz", timeout=5)
            ready = httpx.get(server.url + "/readyz", timeout=5)
            assert health.status_code == 200  # alive, and says so
            assert ready.status_code == 503
            assert ready.json()["code"] == "not_ready"
            assert "wait forecast" in ready.json()["message"]
            time.sleep(0.1)
        compiled.set()
        ready = _wait_ready(server.url)
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    finally:
        compiled.set()
        server.stop()


def test_a_server_without_the_forecast_is_ready_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    never = threading.Event()
    monkeypatch.setattr(forecast, "warm_up", lambda: never.wait(READY_WITHIN_S))
    server = LiveServer(_sqlite_settings(tmp_path, forecast_runs=0)).start()
    try:  # forecasting off: nothing to compile, nothing to wait for
        ready = httpx.get(server.url + "/readyz", timeout=5)
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    finally:
        never.set()
        server.stop()
