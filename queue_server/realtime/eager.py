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
    return loop.create_task(_finish(coroutine, awaited))


async def _finish(coroutine: Coroutine[Any, Any, None], awaited: Any) -> None:
    await _Rest(coroutine, awaited)


class _Rest:
    """The rest of a started coroutine, for a task to drive: the task first gets what the
    coroutine is waiting on (a future, or None for a bare yield), then every resumption and
    every cancellation is relayed to the coroutine, as if the task had run it from the start."""

    __slots__ = ("_awaited", "_coroutine")

    def __init__(self, coroutine: Coroutine[Any, Any, None], awaited: Any) -> None:
        self._coroutine = coroutine
        self._awaited = awaited

    def __await__(self) -> Generator[Any, Any, None]:
        coroutine, awaited = self._coroutine, self._awaited
        while True:
            try:
                sent = yield awaited
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as error:  # cancellation, or what the future raised
                step: Any = coroutine.throw
                value: Any = error
            else:
                step, value = coroutine.send, sent
            try:
                awaited = step(value)
            except StopIteration:
                return
