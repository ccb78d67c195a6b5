"""What a wait estimate needs of a branch, cached: the waiting line and learned service times.

The caches belong to the event loop. A write body (which may run in the SQLite writer thread)
only reads them: it takes its own copy of the line, and what it learned is put back by
`remember`/`remember_issued` on the loop after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from queue_server.catalog.loader import Catalog
from queue_server.domain import estimate
from queue_server.domain.dispatch import QueuedTicket
from queue_server.domain.numbering import local_day
from queue_server.domain.tickets import TicketStatus
from queue_server.store import rows
from queue_server.store.events import Event, StreamHead, current_head
from queue_server.store.forecasts import Forecasts
from queue_server.store.schema import tickets

SERVICE_TIMES_TTL = timedelta(minutes=1)  # how long learned service times are reused


@dataclass(slots=True)
class EstimatorInputs:
    """A branch's waiting line, counters and service times, and what of them was read afresh
    (to be cached by `Estimates.remember`)."""

    line: estimate.WaitingLine
    counters: list[estimate.EstimatorCounter]
    times: estimate.ServiceTimes
    head: StreamHead | None  # the branch's event stream head the line is current at
    line_read: bool  # the line came from the database, not the cache
    times_read_at: datetime | None  # when the times were learned from the database, if now


@dataclass(frozen=True, slots=True)
class _WaitingSeen:
    """A branch's waiting line as it was at an event stream head."""

    head: StreamHead
    line: estimate.WaitingLine


class Estimates:
    """The caches behind wait estimates, per branch."""

    def __init__(self, catalog: Catalog, forecasts: Forecasts | None = None) -> None:
        self.catalog = catalog
        self.forecasts = forecasts
        # branch → (when learned, service times learned from the day's finished visits)
        self._learned: dict[str, tuple[datetime, estimate.ServiceTimes]] = {}
        self._waiting: dict[str, _WaitingSeen] = {}

    def read_inputs(
        self, conn: Connection, branch_id: str, now: datetime, *, to_extend: bool = False
    ) -> EstimatorInputs:
        """What a wait estimate needs. The line is read again only when the branch's event
        stream has moved since it was cached (one small query instead of the whole queue
        while nothing but this process's own issuing happened). With `to_extend` the line is
        the caller's own copy. Changes no cache."""
        head = current_head(conn, branch_id)
        seen = self._waiting.get(branch_id)
        if seen is not None and seen.head == head:
            line = seen.line.copy() if to_extend else seen.line
            line_read = False
        else:
            # Read after the head, so at least as new as it: the cache is never staler than
            # it says (at worst it is read again once more than needed).
            line = estimate.WaitingLine(rows.waiting(conn, branch_id, self.catalog))
            line_read = True
        states = rows.counter_rows(conn, branch_id)
        counters = [
            estimate.EstimatorCounter(
                id=c.id,
                is_open=bool(states.get(c.id) and states[c.id].state == rows.CounterMode.OPEN),
                profile=self.catalog.profile(branch_id, c.id),
                busy=bool(states.get(c.id) and states[c.id].current_ticket_id),
            )
            for c in self.catalog.branch(branch_id).counters
        ]
        times, times_read_at = self._service_times(conn, branch_id, now)
        return EstimatorInputs(line, counters, times, head, line_read, times_read_at)

    def guess(
        self,
        branch_id: str,
        ticket: QueuedTicket,
        inputs: EstimatorInputs,
        now: datetime,
        *,
        newcomer: bool = False,
    ) -> estimate.WaitEstimate:
        """A waiting ticket's wait: the branch's latest forecast when it includes the ticket
        (or, for a `newcomer` being issued, a walk-in of its service issued at the refresh),
        `estimate_wait` until then (people ahead always come from the line)."""
        guess = estimate.estimate_wait(ticket, inputs.line, inputs.counters, inputs.times, now)
        if self.forecasts is None:
            return guess
        return self.forecasts.apply(guess, ticket, branch_id, newcomer=newcomer, head=inputs.head)

    def remember(self, branch_id: str, inputs: EstimatorInputs, *, forecast: bool = True) -> None:
        """On the loop: cache what `read_inputs` read afresh; a line read afresh means the
        branch changed, so its forecast is asked to refresh. A reader that needs no forecast
        (`forecast` False: the "near" check by people ahead) neither asks nor caches the line,
        so the next reader that shows waits still asks."""
        if inputs.line_read and inputs.head is not None and forecast:
            self._waiting[branch_id] = _WaitingSeen(inputs.head, inputs.line)
            if self.forecasts is not None:
                self.forecasts.request(branch_id)
        if inputs.times_read_at is not None:
            self._learned[branch_id] = (inputs.times_read_at, inputs.times)

    def remember_issued(self, branch_id: str, inputs: EstimatorInputs, events: list[Event]) -> None:
        """On the loop, after an issuing batch committed: its tickets are in `inputs.line`. If
        that line was current just before the batch's events (nothing else happened in the
        branch meanwhile), it is current now; otherwise it is read again next time."""
        if inputs.times_read_at is not None:
            self._learned[branch_id] = (inputs.times_read_at, inputs.times)
        if events and self.forecasts is not None:
            self.forecasts.request(branch_id)
        if not events or inputs.head is None:
            return
        first, last = events[0], events[-1]
        if inputs.head == StreamHead(first.epoch, first.seq - 1):
            self._waiting[branch_id] = _WaitingSeen(StreamHead(last.epoch, last.seq), inputs.line)

    def _service_times(
        self, conn: Connection, branch_id: str, now: datetime
    ) -> tuple[estimate.ServiceTimes, datetime | None]:
        """Service times learned from the branch's visits finished today (configured times
        until there are enough), read from the database at most once a `SERVICE_TIMES_TTL`:
        every process learns the same from the same visits, and issuing does not query them
        each time. Returns when they were read, or None when they came from the cache."""
        cached = self._learned.get(branch_id)
        if cached is not None and now - cached[0] < SERVICE_TIMES_TTL:
            return cached[1], None
        day = local_day(now, self.catalog.branch(branch_id).timezone)
        finished = conn.execute(
            select(tickets.c.service_id, tickets.c.started_at, tickets.c.finished_at)
            .where(
                tickets.c.branch_id == branch_id,
                tickets.c.day == day,
                tickets.c.status == TicketStatus.DONE,
                tickets.c.started_at.is_not(None),
            )
            .order_by(tickets.c.finished_at)
        )
        times = estimate.ServiceTimes(self.catalog.service_seconds)
        for row in finished:
            times.observe(row.service_id, (row.finished_at - row.started_at).total_seconds())
        return times, now
