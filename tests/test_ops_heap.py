"""`queue-server serve` keeps its start-up heap (libraries, organisation, numba's compiler, which
the forecast's warm-up loads after start) out of the garbage collector's full collections, and
makes those rarer: each walked the whole heap, a pause of 0.25-1.6 s on a loaded machine, the
national day's slowest calls (queue_server/ops/heap.py)."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from queue_server.ops.heap import FULL_EVERY, frozen_start_up
from tests.support import LiveServer, test_settings

WARM_TIMEOUT_S = 60  # the forecast's warm-up loads the compiled runs first
# The server's libraries alone are over 100,000 objects.
START_UP_OBJECTS = 50_000


@pytest.fixture
def thresholds() -> Iterator[None]:
    """The test process's own collector settings, put back afterwards."""
    before = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("thresholds")
def test_serving_freezes_the_warmed_up_heap_and_collects_fully_less_often(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="queue_server.ops.heap")
    live = LiveServer(
        test_settings(f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}", tmp_path, forecast_runs=8)
    )
    live.app.state.extensions.append(frozen_start_up)  # as `queue-server serve` does
    live.start()
    try:
        assert gc.get_freeze_count() > START_UP_OBJECTS
        assert gc.get_threshold()[2] == FULL_EVERY
        deadline = time.monotonic() + WARM_TIMEOUT_S
        while len([r for r in caplog.records if r.message.startswith("heap frozen")]) < 2:
            assert time.monotonic() < deadline, "the heap was not frozen again once warm"
            time.sleep(0.05)
        # What a full collection still walks: what was made since, a small part.
        assert len(gc.get_objects(generation=2)) < gc.get_freeze_count() / 4
        assert httpx.get(live.url + "/readyz").status_code == 200
    finally:
        live.stop()
