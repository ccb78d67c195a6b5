"""Phones to wake when their ticket's wait forecast changed materially.

A forecast refresh is not an event of the branch (nothing happened in the hall; time passed or
the runs saw further), so the feeds that refresh after events would show a new range only
after the next call or issue. The forecast store tells `Nudges.changed` which tickets moved
(`Forecasts.listeners`), and each phone following one of them reads its view again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class Nudge(asyncio.Event):
    """Set when the ticket's forecast changed; `at` is the loop's time of the change (the
    phones nudged together share one read made after it)."""

    at: float = 0.0


class Nudges:
    """Per ticket, the phones of this process that follow it."""

    def __init__(self) -> None:
        self._following: dict[str, set[Nudge]] = {}

    @contextlib.contextmanager
    def watch(self, ticket_id: str) -> Iterator[Nudge]:
        """A nudge set whenever the ticket's forecast changes materially, while watched."""
        nudge = Nudge()
        self._following.setdefault(ticket_id, set()).add(nudge)
        try:
            yield nudge
        finally:
            watchers = self._following.get(ticket_id, set())
            watchers.discard(nudge)
            if not watchers:
                self._following.pop(ticket_id, None)

    def changed(self, branch_id: str, ticket_ids: frozenset[str]) -> None:
        """On the loop: these tickets' forecasts changed (`Forecasts.listeners`)."""
        at = asyncio.get_running_loop().time()
        for ticket_id in ticket_ids & self._following.keys():
            for nudge in self._following[ticket_id]:
                nudge.at = at
                nudge.set()
