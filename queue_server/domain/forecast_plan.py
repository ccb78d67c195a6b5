"""What every forward run of a forecast starts from: a branch's state as the plain arrays that
`forecast_engine` plays (`BranchPlan`), prepared once per refresh, and the newcomers' probes.

It is prepared in Python at every refresh, so it is built from what each part is made of (a
counter's profile, a service's queues and streams) rather than by scanning every pair of
counter and queue: the demo hall has 33 counters and 59 services, each counter serving ~15."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from queue_server.domain.dispatch import (
    FAIRNESS_GUARD,
    PRIORITY_HEAD_START,
    WEIGHT_SPAN,
    QueuedTicket,
    eligible,
)
from queue_server.domain.forecast_state import (
    FALLBACK_SERVICE_S,
    ArrivalRate,
    BranchState,
    ForecastCounter,
    ServiceTimeStats,
)
from queue_server.domain.tickets import Priority

if TYPE_CHECKING:  # the engine imports numba (half a second): only a process that forecasts
    from queue_server.domain.forecast_engine import Floats, Ints, Plan

HORIZON_S = 10 * 3600.0  # a ticket not called within this in a run counts as not called
NEWCOMER_PREFIX = "new:"  # never a ticket id (those are hex)


def newcomer_id(service_id: str) -> str:
    """The key of the forecast of a walk-in of the service issued at the refresh."""
    return NEWCOMER_PREFIX + service_id


def _probes(state: BranchState) -> list[QueuedTicket]:
    """One probe per wanted service: a normal walk-in queued now, last in its queue but for
    the arrivals to come. Its call takes no time (`forecast_engine`'s `probe_from`), so the
    counter calls again at once as if it were not there: the probe changes no other ticket's
    run, and the moment it is called is exactly when a ticket issued now would be."""
    return [
        QueuedTicket(newcomer_id(service_id), service_id, Priority.NORMAL, state.now, target_s)
        for service_id, target_s in sorted(state.newcomers.items())
    ]


# One queue of walk-ins: a service, its target and a class. Within it tickets keep the
# dispatcher's order for as long as they wait (the same head start and target for all), so a
# counter only compares the heads of its queues.
_SlotKey = tuple[str, float, bool]


def _is_special(ticket: QueuedTicket) -> bool:
    """Appointments (they change class when due) and transferred tickets are offered to every
    call rather than kept in a queue's order."""
    return ticket.priority is Priority.APPOINTMENT or ticket.counter_id is not None


def _rows(rows: list[list[tuple[int, float]]]) -> tuple[Ints, Ints, Floats]:
    """Compressed rows (pointers, values, figures) of per-row lists of (value, figure)."""
    pointers = np.zeros(len(rows) + 1, np.int64)
    pointers[1:] = np.cumsum([len(row) for row in rows])
    flat = [pair for row in rows for pair in row]
    return (
        pointers,
        np.array([value for value, _ in flat], np.int64),
        np.array([figure for _, figure in flat], np.float64),
    )


def _numbers(rows: Iterable[Iterable[int]]) -> tuple[Ints, Ints]:
    """Compressed rows (pointers, values) of per-row numbers."""
    pointers, values, _ = _rows([[(value, 0.0) for value in row] for row in rows])
    return pointers, values


class BranchPlan:
    """What every run starts from, prepared once per refresh: times in seconds from now, the
    queues, and for each counter the queues it serves with its weight already folded in, so
    that a run does plain float arithmetic in the dispatcher's order (`forecast_engine`).

    The urgency is `dispatch.urgency` written out: waited / target + class head start +
    (weight - 1) x WEIGHT_SPAN, and with the fairness `guard` (None: off) a walk-in that has
    waited `guard` targets goes first. `tests/test_forecast_speed.py` checks the choice against
    `dispatch.call_next`, guard on and off."""

    def __init__(self, state: BranchState, guard: float | None = FAIRNESS_GUARD) -> None:
        self.state = state
        self.guard = guard
        self.tickets = [*state.waiting, *_probes(state)]
        self.now = state.now
        self.counters = list(state.counters)
        self.slot_of: dict[_SlotKey, int] = {}
        self.slot_service: list[str] = []
        self.slot_per_target: list[float] = []
        self.slot_head_start: list[float] = []
        self.slot_guard_s: list[float] = []  # the wait from which the guard puts a ticket first
        self.fallback_times = ServiceTimeStats(FALLBACK_SERVICE_S)
        self._status: dict[tuple[str, str | None], tuple[bool, datetime | None]] = {}
        self._capable_of: dict[str, tuple[int, ...]] = {}

    def arrays(self) -> Plan:
        """The branch as the compiled runs read it."""
        from queue_server.domain import forecast_engine

        state = self.state
        entries: dict[int, list[tuple[float, str, int]]] = {}
        specials: list[tuple[int, QueuedTicket, int]] = []
        now, slot_of, priority = self.now, self.slot_of, Priority.PRIORITY
        for index, ticket in enumerate(self.tickets):
            key = (ticket.service_id, ticket.target_wait_s, ticket.priority is priority)
            slot = slot_of.get(key)
            if slot is None:
                slot = self._slot(*key)
            if _is_special(ticket):
                specials.append((index, ticket, slot))
            elif slot in entries:
                entries[slot].append(((ticket.queued_at - now).total_seconds(), ticket.id, index))
            else:
                entries[slot] = [((ticket.queued_at - now).total_seconds(), ticket.id, index)]
        streams = [self._stream(rate) for rate in state.arrivals]
        slots = len(self.slot_service)
        slots_of: dict[str, list[int]] = {}
        for slot, service_id in enumerate(self.slot_service):
            slots_of.setdefault(service_id, []).append(slot)
        streams_of: dict[str, list[int]] = {}
        for number, rate in enumerate(state.arrivals):
            if rate.per_hour > 0.0:
                streams_of.setdefault(rate.service_id, []).append(number)
        lines = [sorted(entries.get(slot, ())) for slot in range(slots)]
        entry_ptr = np.zeros(slots + 1, np.int64)
        entry_ptr[1:] = np.cumsum([len(line) for line in lines])
        entry_queued = np.array([at for line in lines for at, _, _ in line], np.float64)
        entry_ref = np.array([index for line in lines for _, _, index in line], np.int64)
        log_params = [self.times(service_id).log_params() for service_id in self.slot_service]
        counter_slot_ptr, counter_slot, counter_slot_offset = _rows(
            [self._counter_slots(counter, slots_of) for counter in self.counters]
        )
        counter_special_ptr, counter_special, counter_special_offset = _rows(
            [self._counter_specials(counter, specials) for counter in self.counters]
        )
        counter_stream_ptr, counter_stream = _numbers(
            sorted(_served(counter, streams_of)) for counter in self.counters
        )
        capable_ptr, capable = _numbers(s[6] for s in streams)
        in_hand = [self._in_hand(counter) for counter in self.counters]
        rota = self._rota_events()
        ids = sorted(ticket.id for ticket in self.tickets)
        rank = {ticket_id: place for place, ticket_id in enumerate(ids)}
        return forecast_engine.Plan(
            waiting=len(self.tickets),
            probe_from=len(state.waiting),
            horizon_s=HORIZON_S,
            entry_ptr=entry_ptr,
            entry_queued_s=entry_queued,
            entry_ref=entry_ref,
            slot_mu=np.array([mu for mu, _ in log_params], np.float64),
            slot_sigma=np.array([sigma for _, sigma in log_params], np.float64),
            special_queued_s=np.array(
                [self.seconds(t.queued_at) for _, t, _ in specials], np.float64
            ),
            special_ref=np.array([index for index, _, _ in specials], np.int64),
            special_per_target=np.array(
                [self.slot_per_target[slot] for _, _, slot in specials], np.float64
            ),
            special_head_start=np.array(
                [
                    PRIORITY_HEAD_START if t.priority is Priority.PRIORITY else 0.0
                    for _, t, _ in specials
                ],
                np.float64,
            ),
            special_is_appointment=np.array(
                [t.priority is Priority.APPOINTMENT for _, t, _ in specials], np.bool_
            ),
            special_due_s=np.array(
                [
                    -math.inf if t.appointment_at is None else self.seconds(t.appointment_at)
                    for _, t, _ in specials
                ],
                np.float64,
            ),
            special_slot=np.array([slot for _, _, slot in specials], np.int64),
            special_guard_s=np.array(
                [
                    math.inf if t.priority is Priority.APPOINTMENT else self.slot_guard_s[slot]
                    for _, t, slot in specials
                ],
                np.float64,
            ),
            counter_open=np.array([c.is_open for c in self.counters], np.bool_),
            counter_busy_for_s=np.array([h[0] for h in in_hand], np.float64),
            counter_mu=np.array([h[1] for h in in_hand], np.float64),
            counter_sigma=np.array([h[2] for h in in_hand], np.float64),
            counter_mean_s=np.array([h[3] for h in in_hand], np.float64),
            counter_cv=np.array([h[4] for h in in_hand], np.float64),
            counter_on_break=np.array([self.on_break_now(c) for c in self.counters], np.bool_),
            counter_slot_ptr=counter_slot_ptr,
            counter_slot=counter_slot,
            counter_slot_per_target=np.array(self.slot_per_target, np.float64)[counter_slot],
            counter_slot_offset=counter_slot_offset,
            counter_slot_guard_s=np.array(self.slot_guard_s, np.float64)[counter_slot],
            counter_special_ptr=counter_special_ptr,
            counter_special=counter_special,
            counter_special_offset=counter_special_offset,
            counter_stream_ptr=counter_stream_ptr,
            counter_stream=counter_stream,
            stream_start_s=np.array([s[0] for s in streams], np.float64),
            stream_stop_s=np.array([s[1] for s in streams], np.float64),
            stream_per_s=np.array([s[2] for s in streams], np.float64),
            stream_priority_share=np.array([s[3] for s in streams], np.float64),
            stream_normal_slot=np.array([s[4] for s in streams], np.int64),
            stream_priority_slot=np.array([s[5] for s in streams], np.int64),
            stream_capable_ptr=capable_ptr,
            stream_capable=capable,
            rota_at_s=np.array([at for at, _, _ in rota], np.float64),
            rota_kind=np.array([kind for _, kind, _ in rota], np.int64),
            rota_counter=np.array([counter for _, _, counter in rota], np.int64),
            no_show_share=state.no_show_share,
            no_show_timeout_s=state.no_show_timeout_s,
            id_rank=np.array([rank[t.id] for t in self.tickets], np.int64),
            id_before_arrivals=np.array([t.id < "~" for t in self.tickets], np.bool_),
        )

    def _slot(self, service_id: str, target_wait_s: float, is_priority: bool) -> int:
        key = (service_id, target_wait_s, is_priority)
        slot = self.slot_of.get(key)
        if slot is None:
            slot = self.slot_of[key] = len(self.slot_service)
            self.slot_service.append(service_id)
            self.slot_per_target.append(1.0 / max(target_wait_s, 1.0))
            self.slot_head_start.append(PRIORITY_HEAD_START if is_priority else 0.0)
            # as `dispatch.urgency` compares it: waited >= guard × target, in seconds
            target_s = max(target_wait_s, 1.0)
            self.slot_guard_s.append(math.inf if self.guard is None else self.guard * target_s)
        return slot

    def _stream(
        self, rate: ArrivalRate
    ) -> tuple[float, float, float, float, int, int, tuple[int, ...]]:
        """An arrival rate in seconds from now: start, stop, per second, priority share, its
        normal and priority queues, the counters serving it."""
        normal = self._slot(rate.service_id, rate.target_wait_s, False)
        urgent = (
            self._slot(rate.service_id, rate.target_wait_s, True)
            if rate.priority_share > 0.0
            else normal
        )
        return (
            self.seconds(rate.start),
            min(self.seconds(rate.end), HORIZON_S),
            rate.per_hour / 3600.0,
            rate.priority_share,
            normal,
            urgent,
            self._capable(rate.service_id),
        )

    def _capable(self, service_id: str) -> tuple[int, ...]:
        """The counters that serve a service, the ones weighing it most first (the same for
        each stream of a service: worked out once)."""
        known = self._capable_of.get(service_id)
        if known is None:
            weights = [(-c.profile.get(service_id, 0), i) for i, c in enumerate(self.counters)]
            known = tuple(i for weight, i in sorted(weights) if weight < 0)
            self._capable_of[service_id] = known
        return known

    def _counter_slots(
        self, counter: ForecastCounter, slots_of: dict[str, list[int]]
    ) -> list[tuple[int, float]]:
        """(queue, class head start + weight offset) of every queue it serves, in the queues'
        order (`slots_of`: each service's queues)."""
        found = []
        for service_id, weight in counter.profile.items():
            if weight > 0.0:
                offset = (weight - 1.0) * WEIGHT_SPAN
                found += [
                    (s, self.slot_head_start[s] + offset) for s in slots_of.get(service_id, ())
                ]
        found.sort()
        return found

    @staticmethod
    def _counter_specials(
        counter: ForecastCounter, specials: list[tuple[int, QueuedTicket, int]]
    ) -> list[tuple[int, float]]:
        """(special, weight offset) of every special ticket this counter may call."""
        found = []
        for number, (_, ticket, _) in enumerate(specials):
            if eligible(ticket, counter.id, counter.profile):
                weight = counter.profile.get(ticket.service_id, 1.0) or 1.0
                found.append((number, (weight - 1.0) * WEIGHT_SPAN))
        return found

    def _in_hand(self, counter: ForecastCounter) -> tuple[float, float, float, float, float]:
        """The visit in hand: how long it has lasted (-1: none), its log-normal, mean and cv."""
        if not counter.is_open or counter.serving_service_id is None:
            return (-1.0, 0.0, 1.0, 1.0, 0.0)
        times = self.times(counter.serving_service_id)
        mu, sigma = times.log_params()
        return (max(counter.serving_for_s, 0.0), mu, sigma, times.mean_s, times.cv)

    def seconds(self, moment: datetime) -> float:
        return (moment - self.now).total_seconds()

    def _rota_events(self) -> list[tuple[float, int, int]]:
        """Coming on duty and going off (not the last period's end: the counter then serves
        whoever is left), in seconds from now."""
        from queue_server.domain.forecast_engine import OFF, ON

        events = []
        for index, counter in enumerate(self.counters):
            for number, (start, end) in enumerate(counter.duty):
                if start > self.now:
                    events.append((self.seconds(start), ON, index))
                if end > self.now and number < len(counter.duty) - 1:
                    events.append((self.seconds(end), OFF, index))
        return events

    def on_break_now(self, counter: ForecastCounter) -> bool:
        """Open but past the end of a duty period: it leaves after the visit in hand."""
        if not counter.duty or self.now >= counter.duty[-1][1]:
            return False
        return not any(start <= self.now < end for start, end in counter.duty)

    def times(self, service_id: str) -> ServiceTimeStats:
        return self.state.service_times.get(service_id, self.fallback_times)

    def service_status(self, ticket: QueuedTicket) -> tuple[bool, datetime | None]:
        """Whether an open counter serves the ticket now, and when the next capable one opens
        (the same for every ticket of a service, so worked out once per service)."""
        key = (ticket.service_id, ticket.counter_id)
        known = self._status.get(key)
        if known is not None:
            return known
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
            status: tuple[bool, datetime | None] = (True, None)
        else:
            starts = [start for c in capable for start, _ in c.duty if start > self.now]
            status = (False, min(starts) if starts else None)
        self._status[key] = status
        return status


def _served(counter: ForecastCounter, streams_of: dict[str, list[int]]) -> list[int]:
    """The arrival streams (`streams_of`: each service's) of the services a counter serves."""
    return [
        number
        for service_id, weight in counter.profile.items()
        if weight > 0.0
        for number in streams_of.get(service_id, ())
    ]
