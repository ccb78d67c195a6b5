"""Crash-test hook: pause at a named point so a test can SIGKILL the agent exactly there.

Set `RIGI_PRINTER_TEST_PAUSE_AT` to one of POINTS and `RIGI_PRINTER_TEST_PAUSE_DIR` to a
directory. At that point the agent writes `<point>.reached` there and waits until
`<point>.release` appears. Unset (the default), the hook costs one dictionary look-up.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

POINTS = ("before_print", "during_print", "after_print", "after_ack")
_POLL_S = 0.02


def _armed(point: str) -> Path | None:
    if os.environ.get("RIGI_PRINTER_TEST_PAUSE_AT") != point:
        return None
    folder = Path(os.environ.get("RIGI_PRINTER_TEST_PAUSE_DIR", "."))
    (folder / f"{point}.reached").touch()
    return folder / f"{point}.release"


def pause(point: str) -> None:
    """Blocking form, for the printer's worker thread."""
    release = _armed(point)
    while release is not None and not release.exists():
        time.sleep(_POLL_S)


async def pause_async(point: str) -> None:
    """Event-loop form."""
    release = _armed(point)
    # A file appearing is not an event the loop can await; polling is the point here.
    while release is not None and not release.exists():  # noqa: ASYNC110
        await asyncio.sleep(_POLL_S)
