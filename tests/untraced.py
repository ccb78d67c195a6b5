"""Bulk computation in a test without the coverage tracer: the Erlang C checks, the simulated
hall, the report tests' own count of thousands of visits per slice.

`make test` measures coverage with coverage.py's tracer, which costs every line run in
`queue_server` a callback. On the simulator's tight loops (the dispatcher ranks the queue at every
call) that made the Erlang C check at ρ 0.95 about four times slower (27 s of CPU against 7 s,
side by side). What such a test proves is its assertion, which does not change; the lines it runs
are run, traced, by the short tests of the same code (test_domain, the simulator's small runs,
the report and server tests). Used for a block that runs no server and awaits nothing.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def untraced() -> Iterator[None]:
    """Run the block with this thread's trace function (coverage's, when measuring) removed, and
    put it back after. Only this thread: a server thread or a writer thread goes on being traced,
    and so does every thread started meanwhile (`threading.settrace` is left alone). Back from the
    block, the calling function's own remaining lines go untraced (Python keeps a frame's line
    tracing from its entry) while everything it calls is traced again: keep the block in test
    code."""
    tracer = sys.gettrace()
    sys.settrace(None)
    try:
        yield
    finally:
        sys.settrace(tracer)
