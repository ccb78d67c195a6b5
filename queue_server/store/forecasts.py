"""Each branch's wait forecast, computed off the event loop and cached.

A forecast runs the dispatcher forward many times (`queue_server.domain.forecast`): too slow
for a request. So a change of a branch only *asks* for a refresh: at most one refresh per branch
is in flight, a request meanwhile marks the branch dirty and the refresh runs once more when it
ends (coalesced), and refreshes of a branch start at least `min_interval_s` apart, so a burst of
issues costs one refresh a second however fast it comes (reading the branch's state is on the
event loop). The forward runs go to a worker thread; reads use the latest forecast, and
`estimate_wait` until a branch's first forecast is ready or for a ticket issued since.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import Connection, func, select

from queue_server.catalog.loader import Catalog
from queue_server.domain import forecast
from queue_server.domain.dispatch import QueuedTicket
from queue_server.domain.estimate import WaitEstimate
from queue_server.domain.numbering import local_day
from queue_server.domain.tickets import Priority, TicketStatus
from queue_server.store import rows
from queue_server.store.change import Clock
from queue_server.store.database import Database
from queue_server.store.schema import tickets

log = logging.getLogger(__name__)

RATE_WINDOW = timedelta(hours=1)  # arrival rates: the issues of the last hour
NO_SHOW_TIMEOUT_S = 60.0
MIN_INTERVAL_S = 1.0  # between the starts of two refreshes of a branch

# told (on the loop) of a branch's tickets whose forecast changed materially in a refresh
ChangeListener = Callable[[str, frozenset[str]], None]


class Forecasts:
    """The latest forecast of each branch, refreshed on request, one refresh in flight each."""

    def __init__(
        self,
        database: Database,
        catalog: Catalog,
        clock: Clock,
        runs: int = forecast.DEFAULT_RUNS,
        min_interval_s: float = MIN_INTERVAL_S,
    ) -> None:
        self.database = database
        self.catalog = catalog
        self.clock = clock
        self.runs = runs
        self.min_interval_s = min_interval_s
        self._started: dict[str, float] = {}  # the loop's time of each branch's last refresh
        self._latest: dict[str, dict[str, forecast.TicketForecast]] = {}
        self._dirty: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._warming: asyncio.Task[None] | None = None
        self.listeners: list[ChangeListener] = []

    def request(self, branch_id: str) -> None:
        """The branch changed: refresh its forecast soon (no-op outside an event loop, and when
        forecasting is off: `runs` 0)."""
        if self.runs <= 0:
            return
        self._dirty.add(branch_id)
        if branch_id in self._tasks:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._refresh(branch_id), name=f"forecast {branch_id}")
        self._tasks[branch_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(branch_id, None))

    def warm_up(self) -> None:
        """Load the compiled forward runs in a worker thread now (a fresh install compiles
        them once: seconds), not at the first refresh; no-op when forecasting is off."""
        if self.runs <= 0:
            return
        self._warming = asyncio.get_running_loop().create_task(
            asyncio.to_thread(forecast.warm_up), name="forecast warm-up"
        )
        self._warming.add_done_callback(_log_failure)

    def of(self, ticket_id: str, branch_id: str) -> forecast.TicketForecast | None:
        """The latest forecast of a waiting ticket, if its branch has one that includes it."""
        return self._latest.get(branch_id, {}).get(ticket_id)

    def apply(self, guess: WaitEstimate, ticket: QueuedTicket, branch_id: str) -> WaitEstimate:
        """`guess` (from `estimate_wait`) with the forecast's median and p90 when there is one."""
        found = self.of(ticket.id, branch_id)
        if found is None:
            return guess
        return WaitEstimate(
            people_ahead=guess.people_ahead,
            wait_s=found.median_s if found.median_s is not None else guess.wait_s,
            served_now=found.served_now,
            p90_s=found.p90_s,
            next_open_at=found.next_open_at,
        )

    async def refreshed(self, branch_id: str) -> None:
        """Wait for the branch's refresh in flight, if any (tests, shutdown)."""
        task = self._tasks.get(branch_id)
        if task is not None:
            await asyncio.shield(task)

    async def close(self) -> None:
        """Cancel the refreshes in flight."""
        tasks = list(self._tasks.values()) + ([self._warming] if self._warming else [])
        for task in tasks:
            task.cancel("the store is closing")
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _refresh(self, branch_id: str) -> None:
        loop = asyncio.get_running_loop()
        while branch_id in self._dirty:
            wait_s = self._started.get(branch_id, -math.inf) + self.min_interval_s - loop.time()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            self._started[branch_id] = loop.time()
            self._dirty.discard(branch_id)
            now = self.clock()
            try:
                state = await self.database.reading(
                    partial(self._state, branch_id=branch_id, now=now)
                )
                result = await asyncio.to_thread(
                    forecast.forecast_branch, state, self.runs, _seed(now)
                )
            except Exception:  # a failed refresh keeps the last forecast; the next change retries
                log.exception("forecast of branch %s failed", branch_id)
                return
            previous = self._latest.get(branch_id, {})
            self._latest[branch_id] = result
            self._announce(branch_id, result, previous)

    def _announce(
        self,
        branch_id: str,
        result: dict[str, forecast.TicketForecast],
        previous: Mapping[str, forecast.TicketForecast],
    ) -> None:
        """Tell the listeners which tickets' forecasts moved materially in this refresh. (Not
        from the last one announced: a refresh follows a change of the branch, whose event
        already sent every phone its view with the forecast of then.)"""
        changed = frozenset(
            ticket_id
            for ticket_id, latest in result.items()
            if forecast.changed_materially(previous.get(ticket_id), latest)
        )
        for listener in self.listeners if changed else ():
            try:
                listener(branch_id, changed)
            except Exception:
                log.exception("a forecast listener failed")

    def _state(self, conn: Connection, branch_id: str, now: datetime) -> forecast.BranchState:
        """What the server knows of the branch now, as the forecast reads it."""
        waiting = rows.waiting(conn, branch_id, self.catalog)
        states = rows.counter_rows(conn, branch_id)
        current = [s.current_ticket_id for s in states.values() if s.current_ticket_id]
        serving = {}
        if current:
            for row in conn.execute(
                select(tickets.c.id, tickets.c.service_id, tickets.c.called_at).where(
                    tickets.c.id.in_(current)
                )
            ):
                since = row.called_at or now
                serving[row.id] = (row.service_id, max((now - since).total_seconds(), 0.0))
        counters = []
        for counter in self.catalog.branch(branch_id).counters:
            state = states.get(counter.id)
            is_open = bool(state and state.state == rows.CounterMode.OPEN)
            service_id, serving_for_s = serving.get(
                state.current_ticket_id if state else None, (None, 0.0)
            )
            counters.append(
                forecast.ForecastCounter(
                    id=counter.id,
                    profile=self.catalog.profile(branch_id, counter.id),
                    is_open=is_open,
                    serving_service_id=service_id if is_open else None,
                    serving_for_s=serving_for_s,
                )
            )
        return forecast.BranchState(
            now=now,
            waiting=waiting,
            counters=counters,
            service_times=self._service_times(conn, branch_id, now),
            arrivals=self._arrivals(conn, branch_id, now),
            no_show_timeout_s=NO_SHOW_TIMEOUT_S,
        )

    def _service_times(
        self, conn: Connection, branch_id: str, now: datetime
    ) -> dict[str, forecast.ServiceTimeStats]:
        """The day's service-time distributions: mean and variability of every visit today."""
        day = local_day(now, self.catalog.branch(branch_id).timezone)
        learner = forecast.ServiceTimeLearner(self.catalog.service_seconds)
        finished = conn.execute(
            select(tickets.c.service_id, tickets.c.started_at, tickets.c.finished_at).where(
                tickets.c.branch_id == branch_id,
                tickets.c.day == day,
                tickets.c.status == TicketStatus.DONE,
                tickets.c.started_at.is_not(None),
            )
        )
        for row in finished:
            learner.observe(row.service_id, (row.finished_at - row.started_at).total_seconds())
        return learner.all_stats()

    def _arrivals(
        self, conn: Connection, branch_id: str, now: datetime
    ) -> list[forecast.ArrivalRate]:
        """Each service's tickets of the last hour, expected to go on for another hour."""
        since = now - RATE_WINDOW
        counts = conn.execute(
            select(tickets.c.service_id, tickets.c.priority, func.count())
            .where(tickets.c.branch_id == branch_id, tickets.c.issued_at >= since)
            .group_by(tickets.c.service_id, tickets.c.priority)
        ).all()
        total: dict[str, int] = {}
        urgent: dict[str, int] = {}
        for service_id, priority, count in counts:
            total[service_id] = total.get(service_id, 0) + count
            if priority == Priority.PRIORITY:
                urgent[service_id] = urgent.get(service_id, 0) + count
        hours = RATE_WINDOW.total_seconds() / 3600
        return [
            forecast.ArrivalRate(
                service_id=service_id,
                start=now,
                end=now + RATE_WINDOW,
                per_hour=count / hours,
                target_wait_s=self.catalog.service(service_id).target_wait_min * 60,
                priority_share=urgent.get(service_id, 0) / count,
            )
            for service_id, count in total.items()
        ]


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the wait forecast could not be compiled", exc_info=task.exception())


def _seed(now: datetime) -> int:
    """A seed from the minute: the same state within a minute gives the same forecast."""
    return int(now.timestamp() // 60)
