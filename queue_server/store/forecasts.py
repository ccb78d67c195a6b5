"""Each branch's wait forecast, computed off the event loop and cached.

A forecast runs the dispatcher forward many times (`queue_server.domain.forecast`): too slow
for a request. So a change of a branch only *asks* for a refresh: at most one refresh per branch
is in flight, a request meanwhile marks the branch dirty and the refresh runs once more when it
ends (coalesced), and refreshes of a branch start at least `min_interval_s` apart, so a burst of
issues costs one refresh a second however fast it comes (reading the branch's state is on the
event loop, so it starts `SETTLE_S` after the change, once that change's frames are out). The
forward runs go to `FORECAST_THREADS` threads of their own; reads use the latest forecast, and
`estimate_wait` until a branch's first forecast is ready or for a ticket issued since.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial

from sqlalchemy import Connection, select

from queue_server.catalog.loader import Catalog
from queue_server.domain import forecast
from queue_server.domain.dispatch import FAIRNESS_GUARD, QueuedTicket
from queue_server.domain.estimate import WaitEstimate
from queue_server.domain.forecast_state import runs_for
from queue_server.domain.numbering import local_day
from queue_server.store import forecast_inputs as inputs
from queue_server.store import rows
from queue_server.store.change import Clock
from queue_server.store.database import Database
from queue_server.store.events import StreamHead, current_head
from queue_server.store.schema import tickets

log = logging.getLogger(__name__)

NO_SHOW_TIMEOUT_S = 60.0
MIN_INTERVAL_S = 1.0  # between the starts of two refreshes of a branch
# A refresh starts this long after the change that asked for it, so its read of the branch (on
# the event loop) does not compete with the frames that change sends to the branch's feeds.
SETTLE_S = 0.1
# Forward runs at once, in threads of their own (they release the GIL): refreshes of 211 busy
# branches must not fill the default executor, where a sign-in's password check waited behind
# them for over 30 s (benchmarks/national_view_bench.py), nor take every core from the loop.
FORECAST_THREADS = 2
NEWCOMER_MAX_AGE = timedelta(seconds=60)  # a forecast older is not promised to a newcomer

_UNKNOWN = StreamHead("", -1)  # the head of no forecast

# told (on the loop) of a branch's tickets whose forecast changed materially in a refresh
ChangeListener = Callable[[str, frozenset[str]], None]


@dataclass(frozen=True, slots=True)
class _Past:
    """What a branch's weeks before `day` say of it (`forecast_inputs`)."""

    day: date
    arrivals: inputs.HourlyVisits
    times: dict[str, forecast.ServiceTimeStats]


@dataclass(frozen=True, slots=True)
class NewcomerForecast:
    """A walk-in's forecast wait had it taken a ticket at `made_at`."""

    forecast: forecast.TicketForecast
    made_at: datetime


class Forecasts:
    """The latest forecast of each branch, refreshed on request, one refresh in flight each."""

    def __init__(
        self,
        database: Database,
        catalog: Catalog,
        clock: Clock,
        runs: int = forecast.DEFAULT_RUNS,
        min_interval_s: float = MIN_INTERVAL_S,
        *,
        guard: float | None = FAIRNESS_GUARD,
    ) -> None:
        self.database = database
        self.catalog = catalog
        self.clock = clock
        self.runs = runs
        self.guard = guard  # the dispatcher's fairness guard, as the branch's "call next" uses
        self.min_interval_s = min_interval_s
        self._started: dict[str, float] = {}  # the loop's time of each branch's last refresh
        self._latest: dict[str, dict[str, forecast.TicketForecast]] = {}
        self._latest_at: dict[str, datetime] = {}  # the clock's time of each latest forecast
        self._latest_head: dict[str, StreamHead | None] = {}  # ... and the state it was of
        self._dirty: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._warming: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None  # made at the first refresh
        self.listeners: list[ChangeListener] = []
        self._histories: dict[str, _Past] = {}

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

    @property
    def warmed(self) -> bool:
        """Whether the compiled forward runs are loaded (`warm_up` has ended, or forecasting is
        off): until then a fresh install is compiling them (a minute or more, all of a core),
        and the server says it is not ready, so a load balancer sends it no traffic yet. A
        failed warm-up counts as ended: it is logged, and the queue works without forecasts."""
        return self.runs <= 0 or (self._warming is not None and self._warming.done())

    async def until_warmed(self) -> None:
        """Return once the warm-up has loaded the compiled runs (or failed, which is logged);
        at once when there was none."""
        if self._warming is not None:
            await asyncio.wait([self._warming])

    def of(self, ticket_id: str, branch_id: str) -> forecast.TicketForecast | None:
        """The latest forecast of a waiting ticket, if its branch has one that includes it."""
        return self._latest.get(branch_id, {}).get(ticket_id)

    def newcomer(self, branch_id: str, service_id: str) -> NewcomerForecast | None:
        """The latest forecast for a walk-in of the service issued at the refresh, if any."""
        found = self._latest.get(branch_id, {}).get(forecast.newcomer_id(service_id))
        if found is None:
            return None
        return NewcomerForecast(found, self._latest_at[branch_id])

    def is_current(self, branch_id: str, head: StreamHead | None, now: datetime) -> bool:
        """Whether the branch's latest forecast still describes it: made from the state at
        `head` (the branch's event stream head now: nothing happened since) and within
        `NEWCOMER_MAX_AGE` (the visits in hand move on)."""
        made_at = self._latest_at.get(branch_id)
        return (
            made_at is not None
            and now - made_at <= NEWCOMER_MAX_AGE
            and self._latest_head.get(branch_id, _UNKNOWN) == head
        )

    def apply(
        self,
        guess: WaitEstimate,
        ticket: QueuedTicket,
        branch_id: str,
        *,
        newcomer: bool = False,
        head: StreamHead | None = None,
    ) -> WaitEstimate:
        """`guess` (from `estimate_wait`) with the forecast's median and p90 when there is one.
        A `newcomer` (a walk-in being issued, the first of its service in its batch, with the
        branch at `head`) takes that of a walk-in issued at the refresh, if still current."""
        found = self.of(ticket.id, branch_id)
        if found is None and newcomer and self.is_current(branch_id, head, ticket.queued_at):
            probe = self.newcomer(branch_id, ticket.service_id)
            found = probe.forecast if probe else None
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
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _threads(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(FORECAST_THREADS, thread_name_prefix="forecast")
        return self._executor

    async def _refresh(self, branch_id: str) -> None:
        loop = asyncio.get_running_loop()
        while branch_id in self._dirty:
            since = self._started.get(branch_id, -math.inf) + self.min_interval_s - loop.time()
            await asyncio.sleep(max(since, SETTLE_S))
            self._started[branch_id] = loop.time()
            self._dirty.discard(branch_id)
            now = self.clock()
            try:
                head, state = await self.database.reading(
                    partial(self._head_and_state, branch_id=branch_id, now=now)
                )
                run = partial(
                    forecast.forecast_branch,
                    state,
                    runs_for(state, self.runs),
                    _seed(now),
                    self.guard,
                )
                result = await loop.run_in_executor(self._threads(), run)
            except Exception:  # a failed refresh keeps the last forecast; the next change retries
                log.exception("forecast of branch %s failed", branch_id)
                return
            previous = self._latest.get(branch_id, {})
            self._latest[branch_id] = result
            self._latest_at[branch_id] = now
            self._latest_head[branch_id] = head
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
            if not ticket_id.startswith(forecast.NEWCOMER_PREFIX)
            and forecast.changed_materially(previous.get(ticket_id), latest)
        )
        for listener in self.listeners if changed else ():
            try:
                listener(branch_id, changed)
            except Exception:
                log.exception("a forecast listener failed")

    def _head_and_state(
        self, conn: Connection, branch_id: str, now: datetime
    ) -> tuple[StreamHead | None, forecast.BranchState]:
        """The branch's event stream head, then its state (at least as new as the head)."""
        return current_head(conn, branch_id), self._state(conn, branch_id, now)

    def _history(self, conn: Connection, branch_id: str, day: date) -> _Past:
        """The branch's weeks before: its arrivals by the hour on this weekday and its service
        times (read once a day)."""
        known = self._histories.get(branch_id)
        if known is None or known.day != day:
            known = self._histories[branch_id] = _Past(
                day,
                inputs.hourly_history(conn, branch_id, day),
                inputs.past_service_times(conn, branch_id, day),
            )
        return known

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
        branch = self.catalog.branch(branch_id)
        day = local_day(now, branch.timezone)
        past = self._history(conn, branch_id, day)
        for counter in branch.counters:
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
                    duty=inputs.rota(counter, day, branch.timezone),
                )
            )
        return forecast.BranchState(
            now=now,
            waiting=waiting,
            counters=counters,
            service_times=inputs.service_times(conn, self.catalog, branch_id, day, past.times),
            arrivals=inputs.arrivals(conn, self.catalog, branch_id, now, past.arrivals),
            no_show_share=inputs.no_show_share(conn, branch_id, day),
            no_show_timeout_s=NO_SHOW_TIMEOUT_S,
            newcomers={
                service.id: service.target_wait_min * 60.0
                for service in self.catalog.branch_services(branch_id)
            },
        )


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the wait forecast could not be compiled", exc_info=task.exception())


def _seed(now: datetime) -> int:
    """A seed from the minute: the same state within a minute gives the same forecast."""
    return int(now.timestamp() // 60)
