"""One simulated day of a hall under one policy: a discrete-event loop on a heap.

Counters come on duty, go on breaks (after finishing the visit in hand) and, at closing time,
keep serving until nobody they serve is waiting. A called no-show holds the counter for the
no-show timeout. The Rigi policy calls the real dispatcher; with `estimate=True` every issued
ticket also gets the real wait estimator's figure, next to the naive one, and the estimator
learns service times from finished visits as the server does.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np

from queue_server.domain.dispatch import QueuedTicket
from queue_server.domain.estimate import EstimatorCounter, ServiceTimes, WaitingLine, estimate_wait
from queue_server.domain.tickets import Priority
from queue_server.simulation.arrivals import Visits
from queue_server.simulation.policies import (
    CounterView,
    OneLinePerCounter,
    Policy,
    PooledFcfs,
    RigiDispatch,
    RoundRobinBinding,
    ShortestLineSwitching,
)
from queue_server.simulation.scenario import Scenario

TBILISI = timezone(timedelta(hours=4))
BASE_DATE = datetime(2025, 3, 4, tzinfo=TBILISI)  # a Tuesday; simulated time is seconds after it
SAMPLE_STEP_S = 300.0  # resolution of the "people waiting" curve
SAMPLE_AFTER_CLOSE_S = 3 * 3600.0

# Event kinds, in the order they are handled when they fall on the same instant.
_DONE, _OFF, _ON, _ARRIVE = range(4)


@dataclass(slots=True)
class _Counter:
    index: int
    id: str
    profile: dict[str, float]
    on_duty: bool = False
    busy: bool = False
    closing: bool = False
    pending_off: bool = False
    visit: int = -1
    duty_since: float = 0.0
    busy_since: float = 0.0
    duty_s: float = 0.0
    busy_s: float = 0.0


@dataclass(slots=True)
class DayResult:
    """What happened to each visit of one day under one policy."""

    policy: str
    arrival_s: np.ndarray
    service: np.ndarray
    priority: np.ndarray
    target_s: np.ndarray
    wait_s: np.ndarray  # from issue to call; no-shows included here, left out by `counted`
    counted: np.ndarray  # served visits issued after the warm-up
    estimate_s: np.ndarray  # the real estimator at issue (NaN when not estimated)
    naive_s: np.ndarray
    busy_s: float
    duty_s: float
    sample_s: np.ndarray
    waiting_samples: np.ndarray
    learned_s: dict[str, float] = field(default_factory=dict)


def make_policy(name: str, scenario: Scenario, visits: Visits) -> Policy:
    if name == "round_robin":
        return RoundRobinBinding(len(scenario.counters))
    if name == "per_counter":
        return OneLinePerCounter(len(scenario.counters))
    if name == "switching":
        return ShortestLineSwitching(len(scenario.counters), visits.arrival_s.tolist())
    if name == "pooled":
        return PooledFcfs(visits.arrival_s.tolist())
    if name == "rigi":
        return RigiDispatch()
    raise ValueError(f"unknown policy {name!r}")


def simulate_day(
    scenario: Scenario,
    visits: Visits,
    policy_name: str,
    *,
    priority_share: float | None = None,
    estimate: bool = False,
) -> DayResult:
    """Run one day of `visits` through the hall under one policy."""
    share = scenario.priority_share if priority_share is None else priority_share
    day = _Day(scenario, visits, make_policy(policy_name, scenario, visits), share, estimate)
    day.run()
    return day.result(policy_name)


def _at(seconds: float) -> datetime:
    """The datetime of `seconds` of simulated time."""
    return BASE_DATE + timedelta(seconds=seconds)


def _first_events(scenario: Scenario, arrival: list[float]) -> list[tuple[float, int, int, int]]:
    """The heap of the day's known events: every duty period's start and end (flagged when it
    is the counter's last), and every arrival. Visits finishing are pushed as they start."""
    events: list[tuple[float, int, int, int]] = []
    for i, plan in enumerate(scenario.counters):
        for j, (start, end) in enumerate(plan.duty):
            events.append((start, _ON, i, 0))
            events.append((end, _OFF, i, int(j == len(plan.duty) - 1)))
    events.extend((t, _ARRIVE, v, 0) for v, t in enumerate(arrival))
    heapq.heapify(events)
    return events


class _Day:
    """The state of one simulated day: the counters, the event heap, when each visit was
    called, the estimator's figures and the curve of people waiting."""

    def __init__(
        self, scenario: Scenario, visits: Visits, policy: Policy, share: float, estimate: bool
    ) -> None:
        self.rigi = policy if isinstance(policy, RigiDispatch) else None
        if estimate and self.rigi is None:
            raise ValueError("the wait estimator follows Rigi's dispatcher: estimate needs 'rigi'")
        self.scenario = scenario
        self.visits = visits
        self.policy = policy
        self.estimate = estimate
        services = scenario.services
        self.service_ids = [s.id for s in services]
        self.targets = np.array([s.target_wait_s for s in services])[visits.service]
        self.priority = visits.is_priority(share)
        arrival = visits.arrival_s.tolist()
        self.durations = visits.service_s.tolist()
        self.kinds = visits.service.tolist()
        self.no_show = visits.no_show.tolist()
        self.called = [float("nan")] * len(arrival)
        self.estimates = np.full(len(arrival), np.nan)
        self.naive = np.full(len(arrival), np.nan)
        self.times = ServiceTimes(configured_s={s.id: s.mean_service_s for s in services})
        self.counters = [_Counter(i, c.id, c.profile) for i, c in enumerate(scenario.counters)]
        # The policies read counters through their CounterView protocol.
        self.views: list[CounterView] = list(self.counters)
        self.capable = {sid: _serving(self.counters, sid) for sid in self.service_ids}
        self.events = _first_events(scenario, arrival)
        self.change_s: list[float] = [scenario.open_s]
        self.change_waiting: list[int] = [0]

    def run(self) -> None:
        """Handle every event in time order until none is left."""
        while self.events:
            now, kind, subject, flag = heapq.heappop(self.events)
            if kind == _ARRIVE:
                self._arrive(subject, now)
            elif kind == _DONE:
                self._finish_visit(self.counters[subject], now)
            elif kind == _ON:
                self._come_on_duty(self.counters[subject], now)
            else:
                self._end_duty(self.counters[subject], now, last_of_day=bool(flag))
            self._note_waiting(now)

    def _arrive(self, visit: int, now: float) -> None:
        """Issue the visit's ticket and let the first free counter that serves it call."""
        sid = self.service_ids[self.kinds[visit]]
        ticket = QueuedTicket(
            id=f"{visit:07d}",
            service_id=sid,
            priority=Priority.PRIORITY if self.priority[visit] else Priority.NORMAL,
            queued_at=_at(now),
            target_wait_s=float(self.targets[visit]),
        )
        if self.estimate and self.rigi is not None:
            self.estimates[visit], self.naive[visit] = _estimates(
                ticket, self.rigi, self.counters, self.capable[sid], self.times, _at(now)
            )
        self.policy.add(visit, ticket, self.views)
        for counter in self.capable[sid]:
            if counter.on_duty and not counter.busy and self._try_call(counter, now):
                break

    def _finish_visit(self, counter: _Counter, now: float) -> None:
        """The counter is free: the estimator learns the service time of a visit that showed
        up, and the counter goes on its break if one is due, or calls the next visitor."""
        counter.busy = False
        counter.busy_s += now - counter.busy_since
        if not self.no_show[counter.visit]:
            self.times.observe(
                self.service_ids[self.kinds[counter.visit]], self.durations[counter.visit]
            )
        if counter.pending_off:
            self._go_off(counter, now)
        else:
            self._try_call(counter, now)

    def _come_on_duty(self, counter: _Counter, now: float) -> None:
        if not counter.on_duty:
            counter.on_duty, counter.duty_since = True, now
        counter.closing = counter.pending_off = False
        if not counter.busy:
            self._try_call(counter, now)

    def _end_duty(self, counter: _Counter, now: float, *, last_of_day: bool) -> None:
        """A break starts after the visit in hand; at the end of the counter's day it serves
        whoever is still waiting before it goes."""
        if last_of_day:
            counter.closing = True
            if not counter.busy:
                self._try_call(counter, now)
        elif counter.busy:
            counter.pending_off = True
        else:
            self._go_off(counter, now)

    def _try_call(self, counter: _Counter, now: float) -> bool:
        """Call the policy's next visitor to `counter`; False when nobody is waiting for it."""
        visit = self.policy.next_for(counter, _at(now))
        if visit is None:
            if counter.closing:
                self._go_off(counter, now)
            return False
        self.called[visit] = now
        counter.busy, counter.visit, counter.busy_since = True, visit, now
        no_show = self.no_show[visit]
        hold = self.scenario.no_show_timeout_s if no_show else self.durations[visit]
        heapq.heappush(self.events, (now + hold, _DONE, counter.index, 0))
        return True

    @staticmethod
    def _go_off(counter: _Counter, now: float) -> None:
        if counter.on_duty:
            counter.duty_s += now - counter.duty_since
        counter.on_duty = counter.pending_off = False

    def _note_waiting(self, now: float) -> None:
        """Record a point of the waiting curve whenever the number of people waiting changes."""
        waiting = self.policy.waiting_count()
        if waiting != self.change_waiting[-1]:
            self.change_s.append(now)
            self.change_waiting.append(waiting)

    def result(self, policy_name: str) -> DayResult:
        called = np.array(self.called)
        if np.isnan(called).any():
            raise RuntimeError(
                f"{self.policy.name}: some visits were never called; check counter hours"
            )
        scenario, visits = self.scenario, self.visits
        counted = ~visits.no_show & (visits.arrival_s >= scenario.open_s + scenario.warmup_s)
        grid = np.arange(scenario.open_s, scenario.close_s + SAMPLE_AFTER_CLOSE_S, SAMPLE_STEP_S)
        at_grid = np.searchsorted(np.array(self.change_s), grid, side="right") - 1
        return DayResult(
            policy=policy_name,
            arrival_s=visits.arrival_s,
            service=visits.service,
            priority=self.priority,
            target_s=self.targets,
            wait_s=called - visits.arrival_s,
            counted=counted,
            estimate_s=self.estimates,
            naive_s=self.naive,
            busy_s=sum(c.busy_s for c in self.counters),
            duty_s=sum(c.duty_s for c in self.counters),
            sample_s=grid,
            waiting_samples=np.array(self.change_waiting)[at_grid],
            learned_s={sid: self.times.mean_s(sid) for sid in self.service_ids},
        )


def _serving(counters: list[_Counter], service_id: str) -> list[_Counter]:
    """The counters that serve `service_id`, the heaviest weight first (then the lowest index)."""

    def order(counter: _Counter) -> tuple[float, int]:
        return (-counter.profile[service_id], counter.index)

    return sorted((c for c in counters if c.profile.get(service_id, 0.0) > 0.0), key=order)


def _estimates(
    ticket: QueuedTicket,
    rigi: RigiDispatch,
    counters: list[_Counter],
    capable: list[_Counter],
    times: ServiceTimes,
    now: datetime,
) -> tuple[float, float]:
    """The real estimator's wait, and the naive one: people ahead in the ticket's own line ×
    the configured mean service time ÷ the open counters that serve it."""
    states = [EstimatorCounter(c.id, c.on_duty, c.profile, c.busy) for c in counters]
    estimate = estimate_wait(ticket, WaitingLine(rigi.waiting()), states, times, now)
    open_counters = sum(1 for c in capable if c.on_duty) or len(capable)
    mean_s = times.configured_s[ticket.service_id]
    return estimate.wait_s, rigi.waiting_in(ticket.service_id) * mean_s / open_counters
