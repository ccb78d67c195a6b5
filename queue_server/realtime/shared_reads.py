"""What this process's clients follow in a branch, read together after each event.

A phone follows its ticket and a console its counter. One event changes what many of them
show: a call moves every waiting ticket up and changes every console's waiting list. Read one
by one that is a few queries per client per event (and every console ranking the whole queue);
here the first client to ask after an event reads everything followed in the branch in one
go, and the clients asking for that event or an older one share the read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from queue_server.store.events import Event

log = logging.getLogger(__name__)

Read = Callable[[str, frozenset[str]], Awaitable[dict[str, Any]]]


class SharedReadFailed(Exception):
    """The shared read failed (logged once, with its cause); each client waiting on it ends its
    connection, and reconnects to a fresh read."""


@dataclass
class _Latest:
    epoch: str
    seq: int  # the newest event it is sure to include: it started after that was committed
    keys: frozenset[str]
    task: asyncio.Task[dict[str, Any]]


class SharedReads:
    """Who follows what, per branch, and the latest shared read of it. `read(branch, keys)`
    returns a view per key (a key it does not know is left out)."""

    def __init__(self, read: Read) -> None:
        self._read = read
        self._followed: dict[str, Counter[str]] = {}
        self._latest: dict[str, _Latest] = {}
        self._since: dict[str, tuple[float, frozenset[str], asyncio.Task[dict[str, Any]]]] = {}

    @contextlib.contextmanager
    def follow(self, branch: str, key: str) -> Iterator[None]:
        followed = self._followed.setdefault(branch, Counter())
        followed[key] += 1
        try:
            yield
        finally:
            followed[key] -= 1
            if followed[key] <= 0:
                del followed[key]
            if not followed:
                del self._followed[branch]
                self._latest.pop(branch, None)
                self._since.pop(branch, None)

    async def read_now(self, branch: str, key: str) -> Any | None:
        """The view of `key` read at once, on its own (a client that just arrived)."""
        return (await self._read(branch, frozenset({key}))).get(key)

    async def view(self, key: str, after: Event) -> Any | None:
        """The view of `key` as of event `after` or later; None if there is no such thing."""
        latest = self._latest.get(after.branch)
        if (
            latest is None
            or latest.epoch != after.epoch
            or latest.seq < after.seq
            or key not in latest.keys
        ):
            keys = frozenset(self._followed.get(after.branch, ())) | {key}
            task = asyncio.ensure_future(self._read(after.branch, keys))
            task.add_done_callback(_log_failure)
            latest = self._latest[after.branch] = _Latest(after.epoch, after.seq, keys, task)
        try:
            # Shielded: a client that leaves while waiting must not cancel the others' read.
            views = await asyncio.shield(latest.task)
        except Exception as error:
            raise SharedReadFailed(str(error)) from error
        return views.get(key)

    async def view_since(self, branch: str, key: str, since: float) -> Any | None:
        """The view of `key` read after the loop's time `since` (a nudge: no event to go by),
        shared like `view` by the clients nudged together."""
        latest = self._since.get(branch)
        if latest is None or latest[0] < since or key not in latest[1]:
            keys = frozenset(self._followed.get(branch, ())) | {key}
            task = asyncio.ensure_future(self._read(branch, keys))
            task.add_done_callback(_log_failure)
            latest = self._since[branch] = (asyncio.get_running_loop().time(), keys, task)
        try:
            views = await asyncio.shield(latest[2])
        except Exception as error:
            raise SharedReadFailed(str(error)) from error
        return views.get(key)


def _log_failure(task: asyncio.Task[dict[str, Any]]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("a shared read for feeds failed", exc_info=task.exception())
