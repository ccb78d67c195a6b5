"""Wait forecasts by simulation: run the real dispatcher forward from a branch's state.

A formula for the wait misses what decides it in a busy hall: priority and short-target tickets
that arrive later and overtake, counters coming back from lunch, side-service weights, and the
spread of the service times ahead. So the branch's day is played forward `runs` times from its
current state, with service times drawn from the distributions learned today and arrivals drawn
from the known rates, each free counter asking `dispatch.call_next` whom to call. One run gives
every waiting ticket of the branch a wait; over the runs each gets a median and a 90th
percentile. The random generator is seeded, so the same state gives the same forecast.

Speed: within one queue (a service and its target) walk-ins keep the dispatcher's order for as
long as they wait (see `estimate.WaitingLine`), so a counter only needs to offer `call_next` the
head of each of its queues, plus the few appointments and transferred tickets.
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import insort
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from queue_server.domain.dispatch import QueuedTicket, head_start, most_urgent
from queue_server.domain.tickets import Priority

DEFAULT_RUNS = 32
DEFAULT_CV = 0.6  # service-time variability assumed before a service has enough finished visits
MIN_OBSERVATIONS = 5  # finished visits of a service before its learned distribution is used
HORIZON_S = 10 * 3600.0  # a ticket not called within this in a run counts as not called
MAX_RESIDUAL_DRAWS = 8  # attempts to draw a service time longer than what already elapsed
MEDIAN, UPPER = 0.5, 0.9

# Event kinds, handled in this order when they fall on the same instant (as the simulator does).
_DONE, _OFF, _ON, _ARRIVE = range(4)


@dataclass(frozen=True, slots=True)
class ServiceTimeStats:
    """A service-time distribution: log-normal with this mean and coefficient of variation."""

    mean_s: float
    cv: float = DEFAULT_CV

    def log_params(self) -> tuple[float, float]:
        """The mean and deviation of the log of the service time."""
        sigma2 = math.log1p(self.cv * self.cv)
        return math.log(self.mean_s) - sigma2 / 2, math.sqrt(sigma2)

    def draw(self, rng: random.Random) -> float:
        return rng.lognormvariate(*self.log_params())

    def draw_remaining(self, rng: random.Random, elapsed_s: float) -> float:
        """What is left of a visit that has lasted `elapsed_s` so far (a draw conditioned on
        lasting longer; a visit already far beyond its usual length ends soon)."""
        for _ in range(MAX_RESIDUAL_DRAWS):
            total = self.draw(rng)
            if total > elapsed_s:
                return total - elapsed_s
        return self.mean_s * self.cv * rng.random()


@dataclass(slots=True)
class _Moments:
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations (Welford)


@dataclass(slots=True)
class ServiceTimeLearner:
    """The day's service times per service, as a mean and a variability over every finished
    visit of the day (not a moving mean of the last few), the configured time until a service
    has `MIN_OBSERVATIONS` of them."""

    configured_s: Mapping[str, float]
    default_cv: float = DEFAULT_CV
    _moments: dict[str, _Moments] = field(default_factory=dict)

    def observe(self, service_id: str, duration_s: float) -> None:
        m = self._moments.setdefault(service_id, _Moments())
        m.count += 1
        delta = duration_s - m.mean
        m.mean += delta / m.count
        m.m2 += delta * (duration_s - m.mean)

    def stats(self, service_id: str) -> ServiceTimeStats:
        m = self._moments.get(service_id)
        if m is None or m.count < MIN_OBSERVATIONS or m.mean <= 0.0:
            return ServiceTimeStats(self.configured_s.get(service_id, 300.0), self.default_cv)
        cv = math.sqrt(m.m2 / (m.count - 1)) / m.mean
        return ServiceTimeStats(m.mean, cv)

    def all_stats(self) -> dict[str, ServiceTimeStats]:
        services = set(self.configured_s) | set(self._moments)
        return {service_id: self.stats(service_id) for service_id in services}


@dataclass(frozen=True, slots=True)
class ForecastCounter:
    """A counter as the forecast sees it. `duty` is its staffed periods of the day when the
    rota is known (it goes on a break after the visit in hand and serves whoever is left at
    the end of its last period); without one it stays as it is now."""

    id: str
    profile: Mapping[str, float]
    is_open: bool
    serving_service_id: str | None = None  # the service of the visit in hand, if any
    serving_for_s: float = 0.0
    duty: tuple[tuple[datetime, datetime], ...] = ()


@dataclass(frozen=True, slots=True)
class ArrivalRate:
    """Tickets expected for a service from `start` to `end`, `per_hour` of them, a share of
    them priority tickets: the ones that may overtake the tickets waiting now."""

    service_id: str
    start: datetime
    end: datetime
    per_hour: float
    target_wait_s: float
    priority_share: float = 0.0


@dataclass(frozen=True, slots=True)
class BranchState:
    """Everything the forecast reads of a branch at `now`."""

    now: datetime
    waiting: Sequence[QueuedTicket]
    counters: Sequence[ForecastCounter]
    service_times: Mapping[str, ServiceTimeStats]
    arrivals: Sequence[ArrivalRate] = ()
    no_show_share: float = 0.0
    no_show_timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class TicketForecast:
    """A waiting ticket's forecast from now: the median and the 90th percentile of its wait
    (None when it is not called within the horizon), and whether an open counter serves its
    service now, with when the next one opens when it does not."""

    ticket_id: str
    median_s: float | None
    p90_s: float | None
    served_now: bool = True
    next_open_at: datetime | None = None

    @property
    def median_min(self) -> int | None:
        return None if self.median_s is None else _whole_minutes(self.median_s)

    @property
    def p90_min(self) -> int | None:
        return None if self.p90_s is None else _whole_minutes(self.p90_s)


def _whole_minutes(seconds: float) -> int:
    """Rounded up: an honest forecast does not promise too little."""
    return int(-(-seconds // 60))


def forecast_branch(
    state: BranchState, runs: int = DEFAULT_RUNS, seed: int = 0
) -> dict[str, TicketForecast]:
    """Every waiting ticket's forecast (by ticket id), from `runs` forward runs."""
    if not state.waiting:
        return {}
    plan = _Plan(state)
    rng = random.Random(seed)
    samples: list[list[float]] = [[] for _ in state.waiting]
    for _ in range(runs):
        waits = _Run(plan, rng).play()
        for index, wait in enumerate(waits):
            samples[index].append(wait)
    result = {}
    for index, ticket in enumerate(state.waiting):
        values = sorted(samples[index])
        served_now, next_open = plan.service_status(ticket)
        result[ticket.id] = TicketForecast(
            ticket_id=ticket.id,
            median_s=_quantile(values, MEDIAN),
            p90_s=_quantile(values, UPPER),
            served_now=served_now,
            next_open_at=next_open,
        )
    return result


def _quantile(values: list[float], q: float) -> float | None:
    """The q-quantile of sorted values (linear between neighbours); None when infinite."""
    position = q * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    if math.isinf(values[high]):
        return None if math.isinf(values[low]) or position > low else values[low]
    return values[low] + (values[high] - values[low]) * (position - low)


_QueueKey = tuple[str, float]  # (service, target): one order of walk-ins
_SortKey = tuple[float, datetime, str]


def _sort_key(ticket: QueuedTicket) -> _SortKey:
    """The dispatcher's order within one queue: effective start, then queued, then id."""
    start = ticket.queued_at - timedelta(
        seconds=head_start(ticket, ticket.queued_at) * max(ticket.target_wait_s, 1.0)
    )
    return (start.timestamp(), ticket.queued_at, ticket.id)


def _is_special(ticket: QueuedTicket) -> bool:
    """Appointments (they change class when due) and transferred tickets are offered to every
    call rather than kept in a queue's order."""
    return ticket.priority is Priority.APPOINTMENT or ticket.counter_id is not None


class _Plan:
    """What every run starts from, prepared once."""

    def __init__(self, state: BranchState) -> None:
        self.state = state
        self.now = state.now
        self.index_of = {ticket.id: i for i, ticket in enumerate(state.waiting)}
        self.queues: dict[_QueueKey, list[tuple[_SortKey, QueuedTicket]]] = {}
        self.specials: list[QueuedTicket] = []
        for ticket in state.waiting:
            self._add(self.queues, self.specials, ticket)
        for entries in self.queues.values():
            entries.sort(key=lambda entry: entry[0])
        self.counters = list(state.counters)
        self.capable: dict[str, list[int]] = {}
        for service_id in {t.service_id for t in state.waiting} | {
            a.service_id for a in state.arrivals
        }:
            serving = [i for i, c in enumerate(self.counters) if c.profile.get(service_id, 0) > 0]
            serving.sort(key=lambda i: (-self.counters[i].profile[service_id], i))
            self.capable[service_id] = serving
        self.rota_events = self._rota_events()
        self.fallback_times = ServiceTimeStats(300.0)
        self._log_params: dict[str, tuple[float, float]] = {}

    @staticmethod
    def _add(
        queues: dict[_QueueKey, list[tuple[_SortKey, QueuedTicket]]],
        specials: list[QueuedTicket],
        ticket: QueuedTicket,
    ) -> None:
        if _is_special(ticket):
            specials.append(ticket)
        else:
            queues.setdefault((ticket.service_id, ticket.target_wait_s), []).append(
                (_sort_key(ticket), ticket)
            )

    def seconds(self, moment: datetime) -> float:
        return (moment - self.now).total_seconds()

    def _rota_events(self) -> list[tuple[float, int, int]]:
        """Coming on duty and going off (not the last period's end: the counter then serves
        whoever is left), in seconds from now."""
        events = []
        for index, counter in enumerate(self.counters):
            for number, (start, end) in enumerate(counter.duty):
                if start > self.now:
                    events.append((self.seconds(start), _ON, index))
                if end > self.now and number < len(counter.duty) - 1:
                    events.append((self.seconds(end), _OFF, index))
        return events

    def on_break_now(self, counter: ForecastCounter) -> bool:
        """Open but past the end of a duty period: it leaves after the visit in hand."""
        if not counter.duty or self.now >= counter.duty[-1][1]:
            return False
        return not any(start <= self.now < end for start, end in counter.duty)

    def times(self, service_id: str) -> ServiceTimeStats:
        return self.state.service_times.get(service_id, self.fallback_times)

    def log_params(self, service_id: str) -> tuple[float, float]:
        params = self._log_params.get(service_id)
        if params is None:
            params = self._log_params[service_id] = self.times(service_id).log_params()
        return params

    def service_status(self, ticket: QueuedTicket) -> tuple[bool, datetime | None]:
        """Whether an open counter serves the ticket now, and when the next capable one opens."""
        capable = [
            c
            for c in self.counters
            if (
                c.id == ticket.counter_id
                if ticket.counter_id
                else c.profile.get(ticket.service_id, 0) > 0
            )
        ]
        if any(c.is_open for c in capable):
            return True, None
        starts = [start for c in capable for start, _ in c.duty if start > self.now]
        return False, min(starts) if starts else None


class _Run:
    """One forward run of the branch."""

    def __init__(self, plan: _Plan, rng: random.Random) -> None:
        self.plan = plan
        self.rng = rng
        self.queues = {key: list(entries) for key, entries in plan.queues.items()}
        self.keys_of: dict[str, list[_QueueKey]] = {}
        for key in self.queues:
            self.keys_of.setdefault(key[0], []).append(key)
        self.specials = list(plan.specials)
        self.waits = [math.inf] * len(plan.index_of)
        self.left = len(plan.index_of)
        count = len(plan.counters)
        self.on_duty = [c.is_open for c in plan.counters]
        self.busy = [False] * count
        self.pending_off = [False] * count
        self.events: list[tuple[float, int, int, int]] = []
        self.sequence = 0
        self.arrived = 0

    def push(self, at_s: float, kind: int, subject: int) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (at_s, kind, self.sequence, subject))

    def play(self) -> list[float]:
        plan = self.plan
        for index, counter in enumerate(plan.counters):
            if counter.is_open and counter.serving_service_id is not None:
                self.busy[index] = True
                self.pending_off[index] = plan.on_break_now(counter)
                times = plan.times(counter.serving_service_id)
                self.push(times.draw_remaining(self.rng, counter.serving_for_s), _DONE, index)
        for at_s, kind, index in plan.rota_events:
            self.push(at_s, kind, index)
        for stream, rate in enumerate(plan.state.arrivals):
            if rate.per_hour > 0.0:
                self._next_arrival(stream, 0.0)
        for index, counter in enumerate(plan.counters):
            if counter.is_open and not self.busy[index]:
                if plan.on_break_now(counter):
                    self.on_duty[index] = False
                else:
                    self._try_call(index, 0.0)
        while self.events and self.left:
            at_s, kind, _, subject = heapq.heappop(self.events)
            if at_s > HORIZON_S:
                break
            if kind == _ARRIVE:
                self._arrive(self._new_ticket(subject, at_s), at_s)
                self._next_arrival(subject, at_s)
            elif kind == _DONE:
                self.busy[subject] = False
                if self.pending_off[subject]:
                    self.on_duty[subject] = self.pending_off[subject] = False
                else:
                    self._try_call(subject, at_s)
            elif kind == _ON:
                self.on_duty[subject] = True
                self.pending_off[subject] = False
                if not self.busy[subject]:
                    self._try_call(subject, at_s)
            elif self.busy[subject]:
                self.pending_off[subject] = True
            else:
                self.on_duty[subject] = False
        return self.waits

    def _next_arrival(self, stream: int, after_s: float) -> None:
        """Schedule the next Poisson arrival of one rate (drawn lazily: a run usually ends
        long before the day does)."""
        rate = self.plan.state.arrivals[stream]
        at_s = max(after_s, self.plan.seconds(rate.start)) + self.rng.expovariate(
            rate.per_hour / 3600.0
        )
        if at_s < min(self.plan.seconds(rate.end), HORIZON_S):
            self.push(at_s, _ARRIVE, stream)

    def _new_ticket(self, stream: int, at_s: float) -> QueuedTicket:
        rate = self.plan.state.arrivals[stream]
        self.arrived += 1
        return QueuedTicket(
            id=f"~{self.arrived}",
            service_id=rate.service_id,
            priority=(
                Priority.PRIORITY if self.rng.random() < rate.priority_share else Priority.NORMAL
            ),
            queued_at=self.plan.now + timedelta(seconds=at_s),
            target_wait_s=rate.target_wait_s,
        )

    def _arrive(self, ticket: QueuedTicket, at_s: float) -> None:
        key = (ticket.service_id, ticket.target_wait_s)
        if key not in self.queues:
            self.queues[key] = []
            self.keys_of.setdefault(ticket.service_id, []).append(key)
        insort(self.queues[key], (_sort_key(ticket), ticket), key=lambda entry: entry[0])
        for index in self.plan.capable.get(ticket.service_id, ()):
            if self.on_duty[index] and not self.busy[index] and self._try_call(index, at_s):
                break

    def _try_call(self, index: int, at_s: float) -> bool:
        """The counter calls whom the dispatcher picks; False when nobody it serves waits."""
        counter = self.plan.counters[index]
        candidates = list(self.specials)
        for service_id, weight in counter.profile.items():
            if weight > 0.0:
                for key in self.keys_of.get(service_id, ()):
                    entries = self.queues[key]
                    if entries:
                        candidates.append(entries[0][1])
        if not candidates:
            return False
        found = most_urgent(
            candidates, counter.id, counter.profile, self.plan.now + timedelta(seconds=at_s)
        )
        if found is None:
            return False
        ticket = found[0]
        if _is_special(ticket):
            self.specials.remove(ticket)
        else:
            self.queues[(ticket.service_id, ticket.target_wait_s)].pop(0)
        original = self.plan.index_of.get(ticket.id)
        if original is not None and not ticket.id.startswith("~"):
            self.waits[original] = at_s
            self.left -= 1
        state = self.plan.state
        if self.rng.random() < state.no_show_share:
            hold = state.no_show_timeout_s
        else:
            mu, sigma = self.plan.log_params(ticket.service_id)
            hold = self.rng.lognormvariate(mu, sigma)
        self.busy[index] = True
        self.push(at_s + hold, _DONE, index)
        return True
