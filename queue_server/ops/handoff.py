"""The interpreter lock handed back to the serving loop sooner.

A serving process runs threads beside its event loop: the reports projector (an event loop of
its own, Python throughout) and the wait forecast's workers (compiled runs without the lock,
Python around them). The loop lets go of the interpreter lock at every wait for its sockets and
at every system call that releases it; a thread that wants the lock takes it then, and the loop
gets it back only when that thread lets go or is told to, after the interpreter's switch
interval, 5 ms by default. A call's transaction is a dozen round trips to PostgreSQL, each a
wait, so while a thread is busy each round trip could cost the call up to 5 ms more. In the
compressed national day the watchdog's samples of the late loop found the main thread waiting
for the lock inside such calls (docs/benchmarks.md, issue 18, n18day). A shorter interval makes
a busy thread give the lock back sooner; the threads' own work is cut into shorter turns, not
made larger.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from queue_server.app import Rigi

SWITCH_INTERVAL_S = 0.001  # Python's default: 0.005


@contextlib.asynccontextmanager
async def quick_handoffs(rigi: Rigi) -> AsyncIterator[None]:
    """Lifespan part of `queue-server serve`: the shorter switch interval while serving, the
    interpreter's own again afterwards (a test process serves and goes on)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        yield
    finally:
        sys.setswitchinterval(before)
