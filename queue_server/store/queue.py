"""The queue of every branch, as the app's edges use it: one facade over the store's parts.

Issuing (`issuing`), counter actions (`counter_actions`) and read views (`reads`) share the
database, the catalog, the clock and the wait estimates' caches (`estimates`).
"""

from __future__ import annotations

from typing import Any

from queue_server.catalog.loader import Catalog
from queue_server.domain.dispatch import FAIRNESS_GUARD
from queue_server.store.change import Change, Clock, utc_now
from queue_server.store.counter_actions import CounterActions
from queue_server.store.database import Database
from queue_server.store.estimates import Estimates
from queue_server.store.forecasts import Forecasts
from queue_server.store.issuing import Issuing
from queue_server.store.priority import PriorityMarks
from queue_server.store.reads import Reads
from queue_server.store.rows import CounterMode

__all__ = ["Change", "Clock", "CounterMode", "QueueStore", "utc_now"]


class QueueStore:
    """Tickets and counters of every branch, kept in the database."""

    def __init__(
        self,
        database: Database,
        catalog: Catalog,
        clock: Clock = utc_now,
        *,
        forecast_runs: int = 0,
        guard: float | None = FAIRNESS_GUARD,
    ) -> None:
        """`guard` is the dispatcher's fairness guard (None: off): "call next", the order a
        console shows and the wait forecast all use it."""
        self.database = database
        self.catalog = catalog
        self.clock = clock
        self.forecasts = Forecasts(database, catalog, clock, forecast_runs, guard=guard)
        self.estimates = estimates = Estimates(catalog, self.forecasts)
        self._issuing = Issuing(database, catalog, clock, estimates)
        self._actions = CounterActions(database, catalog, clock, guard)
        self._reads = Reads(database, catalog, clock, estimates, guard)
        self._priority = PriorityMarks(database, catalog, clock)
        # Writes
        self.issue_ticket = self._issuing.issue_ticket
        self.cancel_ticket = self._actions.cancel_ticket
        self.set_counter_mode = self._actions.set_counter_mode
        self.call_next = self._actions.call_next
        self.call_ticket = self._actions.call_ticket
        self.act_on_current = self._actions.act_on_current
        self.transfer = self._actions.transfer
        self.take_over = self._actions.take_over
        self.mark_priority = self._priority.mark_priority
        # Reads
        self.ticket = self._reads.ticket
        self.tickets = self._reads.tickets
        self.board = self._reads.board
        self.snapshot = self._reads.snapshot
        self.queues = self._reads.queues
        self.consoles = self._reads.consoles
        self.counters = self._reads.counters

    async def waiting_tickets(self, branch_id: str, counter_id: str) -> list[dict[str, Any]]:
        """The waiting list a counter sees: what it may serve, most urgent first."""
        self.catalog.counter(branch_id, counter_id)  # an unknown counter is a NotFound
        consoles: dict[str, dict[str, Any]] = await self.consoles(branch_id, [counter_id])
        waiting: list[dict[str, Any]] = consoles[counter_id]["waiting"]
        return waiting
