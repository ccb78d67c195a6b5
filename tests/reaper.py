"""The processes a test worker started end with it, even when it is ended mid-test.

A worker that overruns a test's timeout is ended at once (`os._exit`, tests/workers.py), so
its fixtures' teardowns never run: the server processes, nginx and Redis its test had started
lived on, each server holding its PostgreSQL connections. On a loaded run one such crash left
37 connections open, and the next tests failed with "too many clients already".

So a worker leads a process group of its own, which the processes its tests start join, and a
small watcher process (in a session of its own) holds a pipe from it: when the worker ends,
however it ends, the pipe closes and the watcher ends the group's processes (SIGTERM, then
SIGKILL after `GRACE_S`).
"""

from __future__ import annotations

import os
import subprocess
import sys

GRACE_S = 5.0

# The watcher (standard library only): wait for the end of its stdin, then for the worker to
# have exited (gone, or a zombie: its pipe may close while it is still exiting), then end the
# rest of the group.
WATCHER = """
import os, signal, sys, time
worker, grace = int(sys.argv[1]), float(sys.argv[2])
sys.stdin.buffer.read()

def running(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

deadline = time.monotonic() + 60
while running(worker) and time.monotonic() < deadline:
    time.sleep(0.1)
for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 0.0)):
    try:
        os.killpg(worker, sig)
    except (ProcessLookupError, PermissionError):
        break
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            os.killpg(worker, 0)
        except (ProcessLookupError, PermissionError):
            sys.exit(0)
"""

_watcher: list[subprocess.Popen[bytes]] = []  # kept: its pipe must stay open while we live


def end_children_with_this_process() -> None:
    """Lead a process group, and start the watcher that ends it when this process ends."""
    if _watcher:
        return
    if os.getpgrp() != os.getpid():
        os.setpgid(0, 0)
    _watcher.append(
        subprocess.Popen(
            [sys.executable, "-c", WATCHER, str(os.getpid()), str(GRACE_S)],
            stdin=subprocess.PIPE,
            start_new_session=True,  # not in the group it ends
        )
    )
