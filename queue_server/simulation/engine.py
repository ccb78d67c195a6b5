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
from queue_server.domain.estimate import CounterState, ServiceTimes, WaitingLine, estimate_wait
from queue_server.domain.tickets import Priority
from queue_server.simulation.arrivals import Visits
from queue_server.simulation.policies import OneLinePerCounter, Policy, PooledFcfs, RigiDispatch
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
    if name == "per_counter":
        return OneLinePerCounter(len(scenario.counters))
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
    policy = make_policy(policy_name, scenario, visits)
    rigi = policy if isinstance(policy, RigiDispatch) else None
    if estimate and rigi is None:
        raise ValueError("the wait estimator follows Rigi's dispatcher: estimate needs 'rigi'")
    services = scenario.services
    service_ids = [s.id for s in services]
    targets = np.array([s.target_wait_s for s in services])[visits.service]
    priority = visits.is_priority(share)
    arrival = visits.arrival_s.tolist()
    durations = visits.service_s.tolist()
    kinds = visits.service.tolist()
    no_show = visits.no_show.tolist()
    n = len(arrival)
    called = [float("nan")] * n
    estimates = np.full(n, np.nan)
    naive = np.full(n, np.nan)
    times = ServiceTimes(configured_s={s.id: s.mean_service_s for s in services})
    counters = [_Counter(i, c.id, c.profile) for i, c in enumerate(scenario.counters)]
    capable = {sid: _serving(counters, sid) for sid in service_ids}

    events: list[tuple[float, int, int, int]] = []
    for i, plan in enumerate(scenario.counters):
        for j, (start, end) in enumerate(plan.duty):
            events.append((start, _ON, i, 0))
            events.append((end, _OFF, i, int(j == len(plan.duty) - 1)))
    events.extend((t, _ARRIVE, v, 0) for v, t in enumerate(arrival))
    heapq.heapify(events)
    change_s: list[float] = [scenario.open_s]
    change_waiting: list[int] = [0]

    def at(seconds: float) -> datetime:
        return BASE_DATE + timedelta(seconds=seconds)

    def go_off(counter: _Counter, now: float) -> None:
        if counter.on_duty:
            counter.duty_s += now - counter.duty_since
        counter.on_duty = counter.pending_off = False

    def try_call(counter: _Counter, now: float) -> bool:
        visit = policy.next_for(counter, at(now))
        if visit is None:
            if counter.closing:
                go_off(counter, now)
            return False
        called[visit] = now
        counter.busy, counter.visit, counter.busy_since = True, visit, now
        hold = scenario.no_show_timeout_s if no_show[visit] else durations[visit]
        heapq.heappush(events, (now + hold, _DONE, counter.index, 0))
        return True

    views: list = counters  # the policies read counters through their CounterView protocol
    while events:
        now, kind, subject, flag = heapq.heappop(events)
        if kind == _ARRIVE:
            sid = service_ids[kinds[subject]]
            ticket = QueuedTicket(
                id=f"{subject:07d}",
                service_id=sid,
                priority=Priority.PRIORITY if priority[subject] else Priority.NORMAL,
                queued_at=at(now),
                target_wait_s=float(targets[subject]),
            )
            if estimate and rigi is not None:
                estimates[subject], naive[subject] = _estimates(
                    ticket, rigi, counters, capable[sid], times, at(now)
                )
            policy.add(subject, ticket, views)
            for counter in capable[sid]:
                if counter.on_duty and not counter.busy and try_call(counter, now):
                    break
        else:
            counter = counters[subject]
            if kind == _DONE:
                counter.busy = False
                counter.busy_s += now - counter.busy_since
                if not no_show[counter.visit]:
                    times.observe(service_ids[kinds[counter.visit]], durations[counter.visit])
                if counter.pending_off:
                    go_off(counter, now)
                else:
                    try_call(counter, now)
            elif kind == _ON:
                if not counter.on_duty:
                    counter.on_duty, counter.duty_since = True, now
                counter.closing = counter.pending_off = False
                if not counter.busy:
                    try_call(counter, now)
            elif flag:  # the end of the counter's day: serve whoever is still waiting
                counter.closing = True
                if not counter.busy:
                    try_call(counter, now)
            elif counter.busy:
                counter.pending_off = True
            else:
                go_off(counter, now)
        waiting = policy.waiting_count()
        if waiting != change_waiting[-1]:
            change_s.append(now)
            change_waiting.append(waiting)

    called_arr = np.array(called)
    if np.isnan(called_arr).any():
        raise RuntimeError(f"{policy.name}: some visits were never called; check counter hours")
    wait = called_arr - visits.arrival_s
    counted = ~visits.no_show & (visits.arrival_s >= scenario.open_s + scenario.warmup_s)
    grid = np.arange(scenario.open_s, scenario.close_s + SAMPLE_AFTER_CLOSE_S, SAMPLE_STEP_S)
    at_grid = np.searchsorted(np.array(change_s), grid, side="right") - 1
    return DayResult(
        policy=policy_name,
        arrival_s=visits.arrival_s,
        service=visits.service,
        priority=priority,
        target_s=targets,
        wait_s=wait,
        counted=counted,
        estimate_s=estimates,
        naive_s=naive,
        busy_s=sum(c.busy_s for c in counters),
        duty_s=sum(c.duty_s for c in counters),
        sample_s=grid,
        waiting_samples=np.array(change_waiting)[at_grid],
        learned_s={sid: times.mean_s(sid) for sid in service_ids},
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
    states = [CounterState(c.id, c.on_duty, c.profile, c.busy) for c in counters]
    estimate = estimate_wait(ticket, WaitingLine(rigi.waiting()), states, times, now)
    open_counters = sum(1 for c in capable if c.on_duty) or len(capable)
    mean_s = times.configured_s[ticket.service_id]
    return estimate.wait_s, rigi.waiting_in(ticket.service_id) * mean_s / open_counters
