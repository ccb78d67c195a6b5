"""How the server keeps its reports projector process (`reporting/process.py`) without waiting
for it to start: a child still starting when the server stops is killed at once, a ready one is
asked to end and does, and one that never says it is ready is replaced. Stand-in children
(small Python programs, real processes) play the projector, so no database is needed; the
real child is tested in `tests/test_projector_process.py`."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from queue_server.reporting import process
from queue_server.reporting.process import ProjectorProcess

SETTLE_S = 30.0  # a loaded machine starts a Python process in a few seconds
# Says it is ready, writes each branch line it is handed to a file, ends when its input closes.
READY_AND_RECORDING = """
import sys
sys.stdout.write("ready\\n")
sys.stdout.flush()
with open(sys.argv[1], "w") as record:
    for line in sys.stdin:
        record.write(line)
        record.flush()
"""
NEVER_READY = "import time; time.sleep(600)"  # deaf to its input closing, too


def _projector(*code: str) -> ProjectorProcess:
    projector = ProjectorProcess("postgresql+asyncpg://unused")
    projector.command = (sys.executable, "-c", *code)
    return projector


async def _until(what: str, outcome: Callable[[], object]) -> None:
    deadline = asyncio.get_running_loop().time() + SETTLE_S
    while not outcome():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {SETTLE_S:.0f} s: {what}")
        await asyncio.sleep(0.02)


async def test_a_server_stopped_while_its_projector_starts_kills_it_instead_of_waiting() -> None:
    projector = _projector(NEVER_READY)
    await projector.start()  # returns at once: the server serves meanwhile
    child = projector._child
    assert child is not None and child.returncode is None and not projector.ready
    await projector.stop()
    assert child.returncode == -signal.SIGKILL


async def test_a_ready_projector_is_handed_the_moved_branches_and_asked_to_end(
    tmp_path: Path,
) -> None:
    record = tmp_path / "handed"
    projector = _projector(READY_AND_RECORDING, str(record))
    await projector.start()
    await _until("the child said it is ready", lambda: projector.ready)
    events: Any = [SimpleNamespace(branch="otherhall"), SimpleNamespace(branch="testhall")]
    await projector.wake(events)
    await projector.wake(events[:1])  # the same loop turn: one line for both
    await _until("the line reached the child", lambda: record.exists() and record.read_text())
    child = projector._child
    await projector.stop()
    assert child is not None and child.returncode == 0  # it ended on its own: not killed
    assert record.read_text() == "otherhall testhall\n"


async def test_a_projector_that_never_says_it_is_ready_is_killed_and_another_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(process, "START_TIMEOUT_S", 0.5)
    monkeypatch.setattr(process, "RESTART_S", 0.05)
    projector = _projector(NEVER_READY)
    await projector.start()
    first = projector._child
    assert first is not None
    try:
        await _until("another child", lambda: projector._child is not first)
        assert first.returncode == -signal.SIGKILL
    finally:
        await projector.stop()
    assert projector._child is not None and projector._child.returncode is not None
