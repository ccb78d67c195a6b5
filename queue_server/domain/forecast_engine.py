"""The wait forecast's forward runs, compiled (numba): the loop that is the whole cost of a
forecast, over plain arrays that `queue_server.domain.forecast` prepares once per refresh.

In Python a refresh of the demo hall (200 waiting, 32 runs, ~18,000 events) cost ~28 ms;
compiled, well under the 5 ms goal. `tests/test_forecast_speed.py` checks the rules call by call
against `dispatch.call_next`:

- A counter's choice is `dispatch.urgency` written out: waited / target + class head start +
  (weight - 1) x WEIGHT_SPAN, or GUARD_HEAD_START + waited / target for a walk-in past the
  fairness guard, over the heads of its walk-in queues (within a queue tickets keep the
  dispatcher's order, guard or not) and the appointments and transferred tickets it may call;
  exact ties go to the earlier queued ticket, then the smaller id.
- Expected arrivals are not events: each stream keeps its next arrival time and a counter takes
  the arrivals before now into their queues when it calls; a counter with nothing to call wakes
  at its streams' next arrival, and the arrivals then go to the idle counters weighing their
  service most.
- A counter finishes the visit in hand before a break, comes back by the rota, and at the end of
  its last period serves whoever is left.
- The random numbers are drawn beforehand from the forecast's seed (`Draws`): the same plan and
  seed give the same waits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

from queue_server.domain.dispatch import APPOINTMENT_HEAD_START, GUARD_HEAD_START

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]

# Event kinds, handled in this order when they fall on the same instant (as the simulator does).
DONE, OFF, ON, WAKE = range(4)
MAX_RESIDUAL_DRAWS = 8  # attempts to draw a service time longer than what already elapsed

_Function = TypeVar("_Function", bound=Callable[..., Any])


def _compiled(function: _Function) -> _Function:
    """numba's `njit` with the function's own type kept for mypy; compiled code is cached on
    disk, so only a new version of this module pays the compile (a few seconds, once)."""
    return cast(_Function, numba.njit(cache=True, nogil=True)(function))


class Plan(NamedTuple):
    """One refresh's branch as arrays, times in seconds from now. Walk-in queues are `slot`s
    (a service, its target and a class); `*_ptr` arrays index compressed rows (row i is
    `values[ptr[i]:ptr[i + 1]]`). Ticket references are a waiting ticket's index, or minus the
    number of a ticket expected to arrive in the run (its id `~n`)."""

    waiting: int  # how many tickets wait now ...
    probe_from: int  # ... the last of them from here newcomers' probes (called, never served)
    horizon_s: float
    # walk-in queues
    entry_ptr: Ints  # per slot: its waiting tickets, in the dispatcher's order
    entry_queued_s: Floats
    entry_ref: Ints
    slot_mu: Floats  # log-normal service time of the slot's service
    slot_sigma: Floats
    # appointments and transferred tickets ("specials")
    special_queued_s: Floats
    special_ref: Ints
    special_per_target: Floats
    special_head_start: Floats  # a priority walk-in's head start
    special_is_appointment: Flags
    special_due_s: Floats  # an appointment's time (-inf: due already)
    special_slot: Ints
    special_guard_s: Floats  # the wait from which the fairness guard puts it first (inf: never)
    # counters
    counter_open: Flags
    counter_busy_for_s: Floats  # how long the visit in hand has lasted (-1: none)
    counter_mu: Floats  # log-normal of the visit in hand
    counter_sigma: Floats
    counter_mean_s: Floats
    counter_cv: Floats
    counter_on_break: Flags  # open but past a duty period: leaves after the visit in hand
    counter_slot_ptr: Ints  # per counter: the queues it serves ...
    counter_slot: Ints
    counter_slot_per_target: Floats
    counter_slot_offset: Floats  # ... with class head start and weight offset folded in
    counter_slot_guard_s: Floats  # ... and the wait from which the guard puts its head first
    counter_special_ptr: Ints  # per counter: the specials it may call ...
    counter_special: Ints
    counter_special_offset: Floats  # ... with its weight offset
    counter_stream_ptr: Ints  # per counter: the arrival streams of services it serves
    counter_stream: Ints
    # arrival streams
    stream_start_s: Floats
    stream_stop_s: Floats
    stream_per_s: Floats
    stream_priority_share: Floats
    stream_normal_slot: Ints
    stream_priority_slot: Ints
    stream_capable_ptr: Ints  # per stream: the counters serving it, heaviest weight first
    stream_capable: Ints
    # the rota: coming on duty and going off
    rota_at_s: Floats
    rota_kind: Ints
    rota_counter: Ints
    no_show_share: float
    no_show_timeout_s: float
    # tie-breaks between equally urgent tickets queued at the same instant
    id_rank: Ints  # a waiting ticket's place among the waiting tickets' ids
    id_before_arrivals: Flags  # its id sorts before every `~n`


class Draws(NamedTuple):
    """The random numbers of a forecast, drawn beforehand in bulk by numpy (one at a time in
    compiled code a log-normal cost ~100 ns, more than the rest of a call), taken in order
    (`forecast_draws.forward_runs`)."""

    uniform: Floats
    normal: Floats
    exponential: Floats
    cursor: Ints  # the next of each kind; `cursor[SPENT]` 1 when a kind ran out


UNIFORM, NORMAL, EXPONENTIAL, SPENT = range(4)


# places of a run's tally
SEQUENCE, ARRIVED, LEFT, EVENTS, OVERFLOW = range(5)
# an event's key: kind << KIND_SHIFT | sequence << SEQUENCE_SHIFT | counter
KIND_SHIFT, SEQUENCE_SHIFT = 58, 16
COUNTER_MASK = (1 << SEQUENCE_SHIFT) - 1
FIRST_ROOM = 64  # places per queue and for events before a run asks for more


@_compiled
def play_runs(plan: Plan, runs: int, draws: Draws) -> Floats:
    """`forecast_draws.forward_runs` with the random numbers given (it stops when they run out)."""
    out = np.full((runs, plan.waiting), np.inf)
    room = FIRST_ROOM
    for slot in range(len(plan.slot_mu)):
        room = max(room, 2 * (plan.entry_ptr[slot + 1] - plan.entry_ptr[slot]))
    room = max(room, 2 * (len(plan.rota_at_s) + len(plan.counter_open)))
    for run in range(runs):
        while not _play(plan, out[run], room, draws):
            if draws.cursor[SPENT]:
                return out
            room *= 2
            out[run, :] = np.inf
    return out


@_compiled
def _play(plan: Plan, waits: Floats, room: int, draws: Draws) -> bool:
    """One forward run, filling `waits`; False when it needed more room or random numbers.

    One function with inner functions that numba inlines into it: they use its arrays
    directly, where helpers taking the arrays as arguments counted each reference in and out
    (atomic operations: ~0.6 µs per event, as slow as Python)."""
    # the plan's arrays as locals
    entry_ptr, entry_queued_s, entry_ref = plan.entry_ptr, plan.entry_queued_s, plan.entry_ref
    slot_mu, slot_sigma = plan.slot_mu, plan.slot_sigma
    special_queued_s, special_ref = plan.special_queued_s, plan.special_ref
    special_per_target, special_head_start = plan.special_per_target, plan.special_head_start
    special_is_appointment, special_due_s = plan.special_is_appointment, plan.special_due_s
    special_slot, special_guard_s = plan.special_slot, plan.special_guard_s
    counter_open, counter_busy_for_s = plan.counter_open, plan.counter_busy_for_s
    counter_slot_ptr, counter_slot = plan.counter_slot_ptr, plan.counter_slot
    counter_slot_per_target = plan.counter_slot_per_target
    counter_slot_offset, counter_slot_guard_s = plan.counter_slot_offset, plan.counter_slot_guard_s
    counter_special_ptr, counter_special = plan.counter_special_ptr, plan.counter_special
    counter_on_break, counter_special_offset = plan.counter_on_break, plan.counter_special_offset
    counter_stream_ptr, counter_stream = plan.counter_stream_ptr, plan.counter_stream
    stream_start_s, stream_stop_s = plan.stream_start_s, plan.stream_stop_s
    stream_per_s, stream_priority_share = plan.stream_per_s, plan.stream_priority_share
    stream_normal_slot, stream_priority_slot = plan.stream_normal_slot, plan.stream_priority_slot
    stream_capable_ptr, stream_capable = plan.stream_capable_ptr, plan.stream_capable
    id_rank, id_before_arrivals = plan.id_rank, plan.id_before_arrivals
    no_show_share, no_show_timeout_s = plan.no_show_share, plan.no_show_timeout_s
    uniforms, normals, exponentials, cursor = draws  # the fields of `Draws`, in order
    slots, counters, streams = len(slot_mu), len(counter_open), len(stream_per_s)

    # the run's state
    queued = np.empty((slots, room))  # per slot, its queue: when each wait started ...
    refs = np.empty((slots, room), np.int64)  # ... and who it is
    head = np.zeros(slots, np.int64)  # the queue is places head..tail-1 of its row
    tail = np.zeros(slots, np.int64)
    for slot in range(slots):
        start, stop = entry_ptr[slot], entry_ptr[slot + 1]
        tail[slot] = stop - start
        queued[slot, : stop - start] = entry_queued_s[start:stop]
        refs[slot, : stop - start] = entry_ref[start:stop]
    taken = np.zeros(len(special_ref), np.bool_)  # specials called
    on_duty = counter_open.copy()
    busy = np.zeros(counters, np.bool_)
    pending_off = np.zeros(counters, np.bool_)  # goes off duty when the visit in hand ends
    wake_at = np.full(counters, np.inf)  # a wake-up event at another time is stale
    next_at = np.full(streams, np.inf)  # each stream's next arrival
    arriving = np.zeros(streams, np.bool_)  # streams with arrivals at a wake-up
    event_at = np.empty(room)  # the events, a binary heap by (time, key)
    event_key = np.empty(room, np.int64)
    tally = np.zeros(5, np.int64)
    tally[LEFT] = plan.waiting

    def draw(numbers: Floats, kind: int) -> float:
        """The next random number of a kind (a fixed one once they ran out: the run is
        void)."""
        place = cursor[kind]
        if place == len(numbers):
            cursor[SPENT] = 1
            return 0.5
        cursor[kind] = place + 1
        return float(numbers[place])

    def push(at_s: float, kind: int, counter: int) -> None:
        """An event joins the heap (ordered by time, then kind, then the order pushed)."""
        size = tally[EVENTS]
        if size == len(event_at):
            tally[OVERFLOW] = 1
            return
        tally[SEQUENCE] += 1
        key = (kind << KIND_SHIFT) | (tally[SEQUENCE] << SEQUENCE_SHIFT) | counter
        place = size
        while place > 0:
            parent = (place - 1) >> 1
            if at_s < event_at[parent] or (at_s == event_at[parent] and key < event_key[parent]):
                event_at[place], event_key[place] = event_at[parent], event_key[parent]
                place = parent
            else:
                break
        event_at[place], event_key[place] = at_s, key
        tally[EVENTS] = size + 1

    def pop() -> tuple[float, int]:
        """The earliest event, out of the heap."""
        first_at, first_key = event_at[0], event_key[0]
        size = tally[EVENTS] - 1
        tally[EVENTS] = size
        last_at, last_key = event_at[size], event_key[size]
        place = 0
        while True:
            child = 2 * place + 1
            if child >= size:
                break
            right = child + 1
            if right < size and (
                event_at[right] < event_at[child]
                or (event_at[right] == event_at[child] and event_key[right] < event_key[child])
            ):
                child = right
            if event_at[child] < last_at or (
                event_at[child] == last_at and event_key[child] < last_key
            ):
                event_at[place], event_key[place] = event_at[child], event_key[child]
                place = child
            else:
                break
        event_at[place], event_key[place] = last_at, last_key
        return first_at, first_key

    def arrive(number: int) -> None:
        """The stream's next ticket joins its queue (in order of arrival: two streams of one
        queue may be taken late); the one after is drawn."""
        at_s = next_at[number]
        urgent = draw(uniforms, UNIFORM) < stream_priority_share[number]
        slot = stream_priority_slot[number] if urgent else stream_normal_slot[number]
        if tail[slot] == room:
            tally[OVERFLOW] = 1
            next_at[number] = np.inf
            return
        tally[ARRIVED] += 1
        position = tail[slot]
        while position > head[slot] and queued[slot, position - 1] > at_s:
            queued[slot, position] = queued[slot, position - 1]
            refs[slot, position] = refs[slot, position - 1]
            position -= 1
        queued[slot, position] = at_s
        refs[slot, position] = -tally[ARRIVED]
        tail[slot] += 1
        following = at_s + draw(exponentials, EXPONENTIAL) / stream_per_s[number]
        next_at[number] = following if following < stream_stop_s[number] else np.inf

    def arrivals(counter: int, at_s: float) -> None:
        """The arrivals before `at_s` of the services the counter serves join their queues."""
        for place in range(counter_stream_ptr[counter], counter_stream_ptr[counter + 1]):
            number = counter_stream[place]
            while next_at[number] < at_s:
                arrive(number)

    def idle(counter: int) -> None:
        """Nothing to call: wake up at the next arrival of a service it serves."""
        wake = np.inf
        for place in range(counter_stream_ptr[counter], counter_stream_ptr[counter + 1]):
            wake = min(wake, next_at[counter_stream[place]])
        wake_at[counter] = wake
        if wake < np.inf:
            push(wake, WAKE, counter)

    def call(counter: int, at_s: float) -> bool:
        """The counter calls whom the dispatcher picks; False when nobody it serves waits."""
        arrivals(counter, at_s)
        best_u = -np.inf
        best_slot = best_special = -1
        best_queued = 0.0
        best_ref = 0
        for place in range(counter_slot_ptr[counter], counter_slot_ptr[counter + 1]):
            slot = counter_slot[place]
            if head[slot] < tail[slot]:
                queued_s = queued[slot, head[slot]]
                ref = refs[slot, head[slot]]
                waited = at_s - queued_s
                u = waited * counter_slot_per_target[place]
                guarded = waited >= counter_slot_guard_s[place]
                u += GUARD_HEAD_START if guarded else counter_slot_offset[place]
                if u > best_u or (
                    u == best_u
                    and _goes_first(
                        id_rank, id_before_arrivals, queued_s, ref, best_queued, best_ref
                    )
                ):
                    best_u, best_slot, best_queued, best_ref = u, slot, queued_s, ref
        for place in range(counter_special_ptr[counter], counter_special_ptr[counter + 1]):
            number = counter_special[place]
            if taken[number]:
                continue
            queued_s = special_queued_s[number]
            waited = max(at_s - queued_s, 0.0)
            u = waited * special_per_target[number]
            if waited >= special_guard_s[number]:
                u += GUARD_HEAD_START
            else:
                u += counter_special_offset[place]
                if special_is_appointment[number]:
                    if special_due_s[number] <= at_s:
                        u += APPOINTMENT_HEAD_START
                else:
                    u += special_head_start[number]
            ref = special_ref[number]
            if u > best_u or (
                u == best_u
                and _goes_first(id_rank, id_before_arrivals, queued_s, ref, best_queued, best_ref)
            ):
                best_u, best_queued, best_ref = u, queued_s, ref
                best_slot, best_special = special_slot[number], number
        if best_slot < 0:
            return False
        if best_special >= 0:
            taken[best_special] = True
        else:
            head[best_slot] += 1
        if best_ref >= 0:
            waits[best_ref] = at_s
            tally[LEFT] -= 1
        if best_ref >= plan.probe_from:
            hold = 0.0  # a newcomer's probe (`forecast.newcomer_id`) takes no counter time
        elif draw(uniforms, UNIFORM) < no_show_share:
            hold = no_show_timeout_s
        else:
            hold = math.exp(slot_mu[best_slot] + slot_sigma[best_slot] * draw(normals, NORMAL))
        busy[counter] = True
        push(at_s + hold, DONE, counter)
        return True

    def remaining(counter: int) -> float:
        """What is left of the visit in hand: a draw conditioned on lasting longer than it
        has (a visit already far beyond its usual length ends soon)."""
        elapsed_s = float(counter_busy_for_s[counter])
        for _ in range(MAX_RESIDUAL_DRAWS):
            normal = draw(normals, NORMAL)
            total = math.exp(plan.counter_mu[counter] + plan.counter_sigma[counter] * normal)
            if total > elapsed_s:
                return total - elapsed_s
        return float(plan.counter_mean_s[counter] * plan.counter_cv[counter]) * draw(
            uniforms, UNIFORM
        )

    for number in range(streams):
        if stream_per_s[number] > 0.0:
            at_s = max(0.0, stream_start_s[number])
            at_s += draw(exponentials, EXPONENTIAL) / stream_per_s[number]
            if at_s < stream_stop_s[number]:
                next_at[number] = at_s
    for counter in range(counters):
        if counter_open[counter] and counter_busy_for_s[counter] >= 0.0:
            busy[counter] = True
            pending_off[counter] = counter_on_break[counter]
            push(remaining(counter), DONE, counter)
    for number in range(len(plan.rota_at_s)):
        push(plan.rota_at_s[number], plan.rota_kind[number], plan.rota_counter[number])
    for counter in range(counters):
        if counter_open[counter] and not busy[counter]:
            if counter_on_break[counter]:
                on_duty[counter] = False
            elif not call(counter, 0.0):
                idle(counter)
    while tally[EVENTS] > 0 and tally[LEFT] > 0 and tally[OVERFLOW] == 0 and cursor[SPENT] == 0:
        at_s, key = pop()
        if at_s > plan.horizon_s:
            break
        kind = key >> KIND_SHIFT
        subject = key & COUNTER_MASK
        if kind == DONE:
            busy[subject] = False
            if pending_off[subject]:
                on_duty[subject] = pending_off[subject] = False
            elif not call(subject, at_s):
                idle(subject)
        elif kind == WAKE:
            if wake_at[subject] != at_s or busy[subject] or not on_duty[subject]:
                continue  # stale: it has called or left since
            # the arrivals now go to the idle counters that weigh their service most
            first, last = counter_stream_ptr[subject], counter_stream_ptr[subject + 1]
            for place in range(first, last):
                number = counter_stream[place]
                arriving[number] = next_at[number] <= at_s
                while next_at[number] <= at_s:
                    arrive(number)
            for place in range(first, last):
                number = counter_stream[place]
                if not arriving[number]:
                    continue
                arriving[number] = False
                for capable in range(stream_capable_ptr[number], stream_capable_ptr[number + 1]):
                    other = stream_capable[capable]
                    if on_duty[other] and not busy[other] and call(other, at_s):
                        break
            if not busy[subject]:
                idle(subject)
        elif kind == ON:
            on_duty[subject] = True
            pending_off[subject] = False
            if not busy[subject] and not call(subject, at_s):
                idle(subject)
        elif busy[subject]:
            pending_off[subject] = True
        else:
            on_duty[subject] = False
    return bool(tally[OVERFLOW] == 0 and cursor[SPENT] == 0)


@_compiled
def _goes_first(
    id_rank: Ints,
    id_before_arrivals: Flags,
    queued_s: float,
    ref: int,
    other_queued_s: float,
    other_ref: int,
) -> bool:
    """The dispatcher's tie-break between equally urgent tickets: earlier queued, then id
    (`id_rank` orders the waiting tickets' ids; an expected arrival's id is `~n`)."""
    if queued_s != other_queued_s:
        return queued_s < other_queued_s
    if ref >= 0 and other_ref >= 0:
        return bool(id_rank[ref] < id_rank[other_ref])
    if ref >= 0:
        return bool(id_before_arrivals[ref])
    if other_ref >= 0:
        return not id_before_arrivals[other_ref]
    return _decimal_before(-ref, -other_ref)


@_compiled
def _decimal_before(number: int, other: int) -> bool:
    """Whether `str(number) < str(other)` (the ids `~n` of two expected arrivals)."""
    digits, other_digits = _digits(number), _digits(other)
    common = min(digits, other_digits)
    prefix = number // 10 ** (digits - common)
    other_prefix = other // 10 ** (other_digits - common)
    if prefix != other_prefix:
        return bool(prefix < other_prefix)
    return digits < other_digits


@_compiled
def _digits(number: int) -> int:
    count = 1
    while number >= 10:
        number //= 10
        count += 1
    return count
