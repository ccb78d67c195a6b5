"""Start a coroutine at once, inside the caller's step, and make a task only if it must wait.

The hub hands a call to a thousand idle lobby displays in one pass. A WebSocket send that the
socket's buffer takes completes without waiting, so each display then costs one write and no
task switch, as in a plain loop over the sockets. A send that has to wait (a client that
stopped reading) goes on in a task of its own, so it never holds up the rest.

Python 3.12 has this built in (`asyncio.eager_task_factory`); on 3.11 the coroutine is stepped
here and, if it waits, the rest of it is handed to a task. Until its first wait it runs inside
the caller's task, so it must not look at the current task there (`asyncio.timeout` does):
sends and `asyncio.wait_for` on 3.11 are fine.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine, Generator
from typing import Any


def start_eagerly(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run `coroutine` now; return None if it finished, else the task that finishes it.
    An exception raised before its first wait propagates to the caller."""
    loop = asyncio.get_running_loop()
    if sys.version_info >= (3, 12):
        task = asyncio.eager_task_factory(loop, coroutine)
        if not task.done():
            return task
        task.result()
        return None
    try:
        awaited = coroutine.send(None)
    except StopIteration:
        return None
    return loop.create_task(_Rest(coroutine, awaited))


class _Rest(Coroutine[Any, Any, None]):
    """The rest of a started coroutine, for a task to drive as if it had run it from the
    start: the task's first step gets what the coroutine is waiting on (a future, or None for a
    bare yield), and every later step, or a cancellation even before the first, goes to the
    coroutine itself."""

    __slots__ = ("_awaited", "_coroutine", "_started")

    def __init__(self, coroutine: Coroutine[Any, Any, None], awaited: Any) -> None:
        self._coroutine = coroutine
        self._awaited = awaited
        self._started = False

    def send(self, value: Any) -> Any:
        if not self._started:
            self._started = True
            return self._awaited
        return self._coroutine.send(value)

    def throw(self, error: Any, *_: Any) -> Any:  # type: ignore[override]
        self._started = True
        return self._coroutine.throw(error)

    def close(self) -> None:
        self._coroutine.close()

    def __await__(self) -> Generator[Any, Any, None]:
        raise TypeError("_Rest is driven by a task, not awaited")
