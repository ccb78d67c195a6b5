"""`queue-server serve` shortens the interpreter's switch interval while it serves, so a busy
thread of the process (the reports projector, a forecast) gives the lock back to the event loop
sooner, and puts the interpreter's own back when serving ends (queue_server/ops/handoff.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from queue_server.ops.handoff import SWITCH_INTERVAL_S, quick_handoffs
from tests.support import LiveServer, test_settings


def test_serving_hands_the_lock_back_sooner_and_restores_the_interval(tmp_path: Path) -> None:
    before = sys.getswitchinterval()
    assert before != SWITCH_INTERVAL_S  # else the test could not tell
    live = LiveServer(test_settings(f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}", tmp_path))
    live.app.state.extensions.append(quick_handoffs)  # as `queue-server serve` does
    live.start()
    try:
        assert httpx.get(live.url + "/healthz").status_code == 200
        assert sys.getswitchinterval() == SWITCH_INTERVAL_S
    finally:
        live.stop()
    assert sys.getswitchinterval() == before
