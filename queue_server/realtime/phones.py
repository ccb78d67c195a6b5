"""The phones of this process following their tickets, read together.

After an event every phone of the branch asks for its own ticket's view: people ahead and the
wait change for everybody when one ticket is called. Read one by one that is a handful of
queries per phone per event; here the first phone to ask reads every followed ticket of the
branch in one go, and the phones asking for the same event or an older one share that read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

from queue_server.store.events import Event

Views = dict[str, dict[str, Any]]


@dataclass
class _Read:
    epoch: str
    seq: int  # the newest event it is sure to include: it started after that was committed
    ticket_ids: frozenset[str]
    task: asyncio.Task[Views]


class TicketWatch:
    """Who follows which ticket, per branch, and the latest shared read of their views."""

    def __init__(self, read: Callable[[Collection[str]], Awaitable[Views]]) -> None:
        self._read = read
        self._followed: dict[str, Counter[str]] = {}
        self._latest: dict[str, _Read] = {}

    @contextlib.contextmanager
    def follow(self, branch: str, ticket_id: str) -> Iterator[None]:
        followed = self._followed.setdefault(branch, Counter())
        followed[ticket_id] += 1
        try:
            yield
        finally:
            followed[ticket_id] -= 1
            if followed[ticket_id] <= 0:
                del followed[ticket_id]
            if not followed:
                del self._followed[branch]
                self._latest.pop(branch, None)

    async def view(self, ticket_id: str, after: Event) -> dict[str, Any] | None:
        """The ticket's view as of event `after` or later; None if the ticket is gone."""
        read = self._latest.get(after.branch)
        if (
            read is None
            or read.epoch != after.epoch
            or read.seq < after.seq
            or ticket_id not in read.ticket_ids
        ):
            ids = frozenset(self._followed.get(after.branch, ())) | {ticket_id}
            task = asyncio.ensure_future(self._read(ids))
            read = self._latest[after.branch] = _Read(after.epoch, after.seq, ids, task)
        # Shielded: a phone that leaves while waiting must not cancel the others' read.
        views = await asyncio.shield(read.task)
        return views.get(ticket_id)
