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
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from queue_server.domain.dispatch import (
    APPOINTMENT_HEAD_START,
    PRIORITY_HEAD_START,
    WEIGHT_SPAN,
    QueuedTicket,
    eligible,
)
from queue_server.domain.forecast_state import (
    DEFAULT_CV,
    ArrivalRate,
    BranchState,
    ForecastCounter,
    ServiceTimeLearner,
    ServiceTimeStats,
    TicketForecast,
)
from queue_server.domain.tickets import Priority

__all__ = [
    "DEFAULT_CV",
    "DEFAULT_RUNS",
    "ArrivalRate",
    "BranchState",
    "ForecastCounter",
    "ServiceTimeLearner",
    "ServiceTimeStats",
    "TicketForecast",
    "forecast_branch",
]

DEFAULT_RUNS = 32
HORIZON_S = 10 * 3600.0  # a ticket not called within this in a run counts as not called
MEDIAN, UPPER = 0.5, 0.9

# Event kinds, handled in this order when they fall on the same instant (as the simulator does).
_DONE, _OFF, _ON, _WAKE = range(4)


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
        waits = _play(plan, rng)
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


# One queue of walk-ins: a service, its target and a class. Within it tickets keep the
# dispatcher's order for as long as they wait (the same head start and target for all), so a
# counter only compares the heads of its queues.
_SlotKey = tuple[str, float, bool]
# An entry of a queue: when its wait started (seconds from now) and who it is: the index of a
# waiting ticket, or minus the number of a ticket expected to arrive in the run.
_Entry = tuple[float, int]


def _is_special(ticket: QueuedTicket) -> bool:
    """Appointments (they change class when due) and transferred tickets are offered to every
    call rather than kept in a queue's order."""
    return ticket.priority is Priority.APPOINTMENT or ticket.counter_id is not None


@dataclass(frozen=True, slots=True)
class _Special:
    """An appointment or a transferred ticket, in seconds from now."""

    index: int
    queued_s: float
    per_target: float  # 1 / target, in 1/s
    class_head_start: float  # a priority walk-in's head start; appointments: see `due_s`
    is_appointment: bool
    due_s: float | None  # an appointment's time (None: due already)
    slot: int  # the queue whose service times and log-normal parameters it takes


class _Plan:
    """What every run starts from, prepared once per refresh: times in seconds from now, the
    queues, and for each counter the queues it serves with its weight already folded in, so
    that a run does plain float arithmetic in the dispatcher's order.

    The urgency is `dispatch.urgency` written out: waited / target + class head start +
    (weight - 1) x WEIGHT_SPAN (no fairness guard, as the server's "call next").
    `tests/test_forecast_speed.py` checks the choice against `dispatch.call_next`."""

    def __init__(self, state: BranchState) -> None:
        self.state = state
        self.now = state.now
        self.counters = list(state.counters)
        self.ids = [ticket.id for ticket in state.waiting]
        self.slot_of: dict[_SlotKey, int] = {}
        self.slot_service: list[str] = []
        self.slot_per_target: list[float] = []
        self.slot_head_start: list[float] = []
        self.entries: list[list[_Entry]] = []
        self.specials: list[_Special] = []
        walk_ins: list[tuple[int, float, str, int]] = []
        for index, ticket in enumerate(state.waiting):
            queued_s = self.seconds(ticket.queued_at)
            is_priority = ticket.priority is Priority.PRIORITY
            slot = self._slot(ticket.service_id, ticket.target_wait_s, is_priority)
            if _is_special(ticket):
                appointment = ticket.priority is Priority.APPOINTMENT
                self.specials.append(
                    _Special(
                        index=index,
                        queued_s=queued_s,
                        per_target=self.slot_per_target[slot],
                        class_head_start=PRIORITY_HEAD_START if is_priority else 0.0,
                        is_appointment=appointment,
                        due_s=(
                            None
                            if not appointment or ticket.appointment_at is None
                            else self.seconds(ticket.appointment_at)
                        ),
                        slot=slot,
                    )
                )
            else:
                walk_ins.append((slot, queued_s, ticket.id, index))
        walk_ins.sort()
        for slot, queued_s, _, index in walk_ins:
            self.entries[slot].append((queued_s, index))
        self.streams = []
        for rate in state.arrivals:
            normal = self._slot(rate.service_id, rate.target_wait_s, False)
            urgent = (
                self._slot(rate.service_id, rate.target_wait_s, True)
                if rate.priority_share > 0.0
                else normal
            )
            self.streams.append(
                _Stream(
                    start_s=self.seconds(rate.start),
                    stop_s=min(self.seconds(rate.end), HORIZON_S),
                    per_s=rate.per_hour / 3600.0,
                    priority_share=rate.priority_share,
                    normal_slot=normal,
                    priority_slot=urgent,
                    capable=self._capable(rate.service_id),
                )
            )
        self.counter_slots = [self._counter_slots(counter) for counter in self.counters]
        self.counter_specials = [self._counter_specials(counter) for counter in self.counters]
        self.counter_streams = [
            tuple(
                number
                for number, rate in enumerate(state.arrivals)
                if rate.per_hour > 0.0 and counter.profile.get(rate.service_id, 0.0) > 0.0
            )
            for counter in self.counters
        ]
        self.fallback_times = ServiceTimeStats(300.0)
        self.slot_log_params = [self.times(sid).log_params() for sid in self.slot_service]
        self.rota_events = self._rota_events()

    def _slot(self, service_id: str, target_wait_s: float, is_priority: bool) -> int:
        key = (service_id, target_wait_s, is_priority)
        slot = self.slot_of.get(key)
        if slot is None:
            slot = self.slot_of[key] = len(self.slot_service)
            self.slot_service.append(service_id)
            self.slot_per_target.append(1.0 / max(target_wait_s, 1.0))
            self.slot_head_start.append(PRIORITY_HEAD_START if is_priority else 0.0)
            self.entries.append([])
        return slot

    def _capable(self, service_id: str) -> tuple[int, ...]:
        """The counters that serve a service, the ones weighing it most first."""
        serving = [i for i, c in enumerate(self.counters) if c.profile.get(service_id, 0) > 0]
        serving.sort(key=lambda i: (-self.counters[i].profile[service_id], i))
        return tuple(serving)

    def _counter_slots(self, counter: ForecastCounter) -> tuple[tuple[int, float, float], ...]:
        """(queue, 1 / target, class head start + weight offset) of every queue it serves."""
        found = []
        for slot, service_id in enumerate(self.slot_service):
            weight = counter.profile.get(service_id, 0.0)
            if weight > 0.0:
                offset = self.slot_head_start[slot] + (weight - 1.0) * WEIGHT_SPAN
                found.append((slot, self.slot_per_target[slot], offset))
        return tuple(found)

    def _counter_specials(self, counter: ForecastCounter) -> tuple[tuple[int, float], ...]:
        """(special, weight offset) of every special ticket this counter may call."""
        found = []
        for number, special in enumerate(self.specials):
            ticket = self.state.waiting[special.index]
            if eligible(ticket, counter.id, counter.profile):
                weight = counter.profile.get(ticket.service_id, 1.0) or 1.0
                found.append((number, (weight - 1.0) * WEIGHT_SPAN))
        return tuple(found)

    def seconds(self, moment: datetime) -> float:
        return (moment - self.now).total_seconds()

    def ticket_id(self, reference: int) -> str:
        """The id the dispatcher breaks exact ties on (`~n` for the n-th expected arrival)."""
        return self.ids[reference] if reference >= 0 else f"~{-reference}"

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


@dataclass(frozen=True, slots=True)
class _Stream:
    """One arrival rate, in seconds from now."""

    start_s: float
    stop_s: float
    per_s: float
    priority_share: float
    normal_slot: int
    priority_slot: int
    capable: tuple[int, ...]


def _play(plan: _Plan, rng: random.Random) -> list[float]:
    """One forward run: each waiting ticket's wait in seconds (inf: not called in the horizon).

    Written as one function over local lists: it runs `runs` times per refresh and its loop
    is the whole cost of a forecast. Expected arrivals are not events: each stream keeps its
    next arrival time and a counter takes the arrivals before now into its queues when it
    calls (half the cost went into arrivals nobody looked at). A counter with nothing to call
    sets a wake-up at its streams' next arrival instead."""
    state = plan.state
    counters = plan.counters
    streams = plan.streams
    queues = [deque(entries) for entries in plan.entries]
    counter_slots = plan.counter_slots
    counter_specials = plan.counter_specials
    counter_streams = plan.counter_streams
    specials = plan.specials
    taken = [False] * len(specials)
    slot_log_params = plan.slot_log_params
    no_show_share = state.no_show_share
    no_show_timeout_s = state.no_show_timeout_s
    waits = [math.inf] * len(plan.ids)
    left = len(waits)
    count = len(counters)
    on_duty = [c.is_open for c in counters]
    busy = [False] * count
    pending_off = [False] * count
    wake_at = [math.inf] * count
    events: list[tuple[float, int, int, int]] = []
    push, pop = heapq.heappush, heapq.heappop
    random_, lognormvariate, expovariate = rng.random, rng.lognormvariate, rng.expovariate
    sequence = 0
    arrived = 0
    next_at = [math.inf] * len(streams)
    for number, stream in enumerate(streams):
        if stream.per_s > 0.0:
            at_s = max(0.0, stream.start_s) + expovariate(stream.per_s)
            if at_s < stream.stop_s:
                next_at[number] = at_s

    def arrive(number: int) -> None:
        """The stream's next ticket joins its queue; the one after is drawn."""
        nonlocal arrived
        stream = streams[number]
        at_s = next_at[number]
        arrived += 1
        urgent = random_() < stream.priority_share
        entries = queues[stream.priority_slot if urgent else stream.normal_slot]
        if entries and entries[-1][0] > at_s:  # two streams of one queue, taken late
            position = len(entries)
            while position and entries[position - 1][0] > at_s:
                position -= 1
            entries.insert(position, (at_s, -arrived))
        else:
            entries.append((at_s, -arrived))
        following = at_s + expovariate(stream.per_s)
        next_at[number] = following if following < stream.stop_s else math.inf

    def idle(counter: int) -> None:
        """Nothing to call: wake up at the next arrival of a service it serves."""
        nonlocal sequence
        wake = min((next_at[number] for number in counter_streams[counter]), default=math.inf)
        wake_at[counter] = wake
        if wake < math.inf:
            sequence += 1
            push(events, (wake, _WAKE, sequence, counter))

    def call(counter: int, at_s: float) -> bool:
        """The counter calls whom the dispatcher picks; False when nobody it serves waits."""
        nonlocal left, sequence
        for number in counter_streams[counter]:
            while next_at[number] < at_s:
                arrive(number)
        best_u = -math.inf
        best_slot = best_special = -1
        best_queued = 0.0
        best_ref = 0
        for slot, per_target, offset in counter_slots[counter]:
            entries = queues[slot]
            if entries:
                queued_s, reference = entries[0]
                u = (at_s - queued_s) * per_target + offset
                if u > best_u or (
                    u == best_u and _goes_first(plan, queued_s, reference, best_queued, best_ref)
                ):
                    best_u, best_slot, best_queued, best_ref = u, slot, queued_s, reference
        for number, offset in counter_specials[counter]:
            if taken[number]:
                continue
            special = specials[number]
            waited = at_s - special.queued_s
            u = (waited if waited > 0.0 else 0.0) * special.per_target + offset
            if special.is_appointment:
                if special.due_s is None or special.due_s <= at_s:
                    u += APPOINTMENT_HEAD_START
            else:
                u += special.class_head_start
            if u > best_u or (
                u == best_u
                and _goes_first(plan, special.queued_s, special.index, best_queued, best_ref)
            ):
                best_u, best_queued, best_ref = u, special.queued_s, special.index
                best_slot, best_special = special.slot, number
        if best_slot < 0:
            return False
        if best_special >= 0:
            taken[best_special] = True
        else:
            queues[best_slot].popleft()
        if best_ref >= 0:
            waits[best_ref] = at_s
            left -= 1
        if random_() < no_show_share:
            hold = no_show_timeout_s
        else:
            hold = lognormvariate(*slot_log_params[best_slot])
        busy[counter] = True
        sequence += 1
        push(events, (at_s + hold, _DONE, sequence, counter))
        return True

    for index, counter in enumerate(counters):
        if counter.is_open and counter.serving_service_id is not None:
            busy[index] = True
            pending_off[index] = plan.on_break_now(counter)
            times = plan.times(counter.serving_service_id)
            sequence += 1
            push(events, (times.draw_remaining(rng, counter.serving_for_s), _DONE, sequence, index))
    for at_s, kind, index in plan.rota_events:
        sequence += 1
        push(events, (at_s, kind, sequence, index))
    for index, counter in enumerate(counters):
        if counter.is_open and not busy[index]:
            if plan.on_break_now(counter):
                on_duty[index] = False
            elif not call(index, 0.0):
                idle(index)
    while events and left:
        at_s, kind, _, subject = pop(events)
        if at_s > HORIZON_S:
            break
        if kind == _DONE:
            busy[subject] = False
            if pending_off[subject]:
                on_duty[subject] = pending_off[subject] = False
            elif not call(subject, at_s):
                idle(subject)
        elif kind == _WAKE:
            if wake_at[subject] != at_s or busy[subject] or not on_duty[subject]:
                continue  # stale: it has called or left since
            # the arrivals now go to the idle counters that weigh their service most
            arriving = [n for n in counter_streams[subject] if next_at[n] <= at_s]
            for number in arriving:
                while next_at[number] <= at_s:
                    arrive(number)
            for number in arriving:
                for index in streams[number].capable:
                    if on_duty[index] and not busy[index] and call(index, at_s):
                        break
            if not busy[subject]:
                idle(subject)
        elif kind == _ON:
            on_duty[subject] = True
            pending_off[subject] = False
            if not busy[subject] and not call(subject, at_s):
                idle(subject)
        elif busy[subject]:
            pending_off[subject] = True
        else:
            on_duty[subject] = False
    return waits


def _goes_first(
    plan: _Plan, queued_s: float, reference: int, other_queued_s: float, other_reference: int
) -> bool:
    """The dispatcher's tie-break between equally urgent tickets: earlier queued, then id."""
    if queued_s != other_queued_s:
        return queued_s < other_queued_s
    return plan.ticket_id(reference) < plan.ticket_id(other_reference)
