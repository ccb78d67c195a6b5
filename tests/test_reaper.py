"""A test worker ended mid-test (a timeout ends it with `os._exit`) takes the processes its
tests started with it: they would otherwise hold their ports and database connections."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

GONE_WITHIN_S = 30
WORKER = """
import os, subprocess, sys
sys.path.insert(0, sys.argv[1])
from tests.reaper import end_children_with_this_process
end_children_with_this_process()
server = subprocess.Popen(["sleep", "600"])
print(server.pid, flush=True)
sys.stdin.readline()
os._exit(1)  # as pytest-timeout's thread method ends an overrunning worker
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_worker_ended_mid_test_ends_the_processes_its_test_started() -> None:
    root = str(Path(__file__).resolve().parent.parent)
    with subprocess.Popen(
        [sys.executable, "-c", WORKER, root], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as worker:
        assert worker.stdout is not None and worker.stdin is not None
        server = int(worker.stdout.readline())
        try:
            assert _alive(server)
            worker.stdin.write(b"end\n")
            worker.stdin.flush()
            assert worker.wait(timeout=GONE_WITHIN_S) == 1
            deadline = time.monotonic() + GONE_WITHIN_S
            while _alive(server) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not _alive(server)
        finally:
            if _alive(server):
                os.kill(server, signal.SIGKILL)
