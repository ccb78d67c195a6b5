"""The garbage collector kept from pausing a serving process for long.

A full collection walks every object the process holds and serves nothing meanwhile. After
start-up that is over 200,000 objects: the libraries, the organisation, and numba's compiler
(about 80,000), which the wait forecast's warm-up loads in a thread once the server already
answers. In the national day (docs/benchmarks.md) the servers made 4-5 full collections each in
130 s, 0.25-1.6 s of wall time apiece on the loaded machine, and the slowest calls were the
ones that met one. So:

- everything alive at start-up is frozen (`gc.freeze()`: a permanent generation that
  collections skip), once when serving starts (which alone halved a full collection with
  1,000 displays connected, 37-84 ms against 108-197 ms, when numba was not there yet) and
  again when the warm-up has loaded the compiled runs;
- a full collection waits for FULL_EVERY collections of the middle generation instead of
  Python's 10. Young collections stay as they are (cheap: they walk new objects only); what
  outlives them is still collected, only less often.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from queue_server.app import Rigi

log = logging.getLogger(__name__)

FULL_EVERY = 100  # middle-generation collections between two full ones (Python: 10)


def freeze() -> None:
    """Move everything alive now out of the collector's way (collected once first, so
    start-up's garbage is not kept for good)."""
    gc.collect()
    gc.freeze()
    log.info("heap frozen: %d objects", gc.get_freeze_count())


@contextlib.asynccontextmanager
async def frozen_start_up(rigi: Rigi) -> AsyncIterator[None]:
    """Lifespan part of `queue-server serve`, last: freeze the start-up heap now and again
    once the forecast's compiled runs are loaded, and make full collections rarer."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_EVERY)
    freeze()

    async def freeze_when_warm() -> None:
        await rigi.store.forecasts.until_warmed()
        freeze()

    task = asyncio.create_task(freeze_when_warm(), name="freeze the warmed-up heap")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
