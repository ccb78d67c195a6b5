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

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from queue_server.domain.dispatch import (
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

if TYPE_CHECKING:  # the engine imports numba (half a second): only a process that forecasts
    from queue_server.domain.forecast_engine import Floats, Ints, Plan

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


def forecast_branch(
    state: BranchState, runs: int = DEFAULT_RUNS, seed: int = 0
) -> dict[str, TicketForecast]:
    """Every waiting ticket's forecast (by ticket id), from `runs` forward runs."""
    if not state.waiting:
        return {}
    from queue_server.domain import forecast_engine

    plan = _Plan(state)
    waits = forecast_engine.forward_runs(plan.arrays(), runs, seed)
    medians = _quantiles(waits, MEDIAN)
    uppers = _quantiles(waits, UPPER)
    result = {}
    for index, ticket in enumerate(state.waiting):
        served_now, next_open = plan.service_status(ticket)
        result[ticket.id] = TicketForecast(
            ticket_id=ticket.id,
            median_s=medians[index],
            p90_s=uppers[index],
            served_now=served_now,
            next_open_at=next_open,
        )
    return result


MATERIAL_CHANGE_S = 60.0  # a forecast moving less than this (and ...
MATERIAL_SHARE = 0.15  # ... than this share of what was shown) is not pushed to phones


def changed_materially(shown: TicketForecast | None, new: TicketForecast) -> bool:
    """Whether a phone showing `shown` should be told `new`: whether a counter serves it now
    or when the next one opens changed, or the median or the p90 moved by a minute and 15%
    of what was shown. Not every refresh: a range that wobbles by seconds is noise."""
    if shown is None:
        return True
    if shown.served_now != new.served_now or shown.next_open_at != new.next_open_at:
        return True
    return _moved(shown.median_s, new.median_s) or _moved(shown.p90_s, new.p90_s)


def _moved(shown_s: float | None, new_s: float | None) -> bool:
    if shown_s is None or new_s is None:
        return shown_s is not new_s
    return abs(new_s - shown_s) >= max(MATERIAL_CHANGE_S, MATERIAL_SHARE * shown_s)


def warm_up() -> None:
    """Compile the forward runs (or load them from numba's cache on disk) with a one-ticket
    forecast, so the first real refresh does not pay for it."""
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    ticket = QueuedTicket("warm-up", "service", Priority.NORMAL, moment, 600.0)
    counter = ForecastCounter("counter", {"service": 1.0}, True)
    forecast_branch(BranchState(moment, [ticket], [counter], {}), runs=1)


def _quantiles(waits: Floats, q: float) -> list[float | None]:
    """Each column's q-quantile (linear between neighbours); None when infinite."""
    return [_quantile(values, q) for values in np.sort(waits, axis=0).T.tolist()]


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


class _Plan:
    """What every run starts from, prepared once per refresh: times in seconds from now, the
    queues, and for each counter the queues it serves with its weight already folded in, so
    that a run does plain float arithmetic in the dispatcher's order (`forecast_engine`).

    The urgency is `dispatch.urgency` written out: waited / target + class head start +
    (weight - 1) x WEIGHT_SPAN (no fairness guard, as the server's "call next").
    `tests/test_forecast_speed.py` checks the choice against `dispatch.call_next`."""

    def __init__(self, state: BranchState) -> None:
        self.state = state
        self.now = state.now
        self.counters = list(state.counters)
        self.slot_of: dict[_SlotKey, int] = {}
        self.slot_service: list[str] = []
        self.slot_per_target: list[float] = []
        self.slot_head_start: list[float] = []
        self.fallback_times = ServiceTimeStats(300.0)
        self._status: dict[tuple[str, str | None], tuple[bool, datetime | None]] = {}

    def arrays(self) -> Plan:
        """The branch as the compiled runs read it."""
        from queue_server.domain import forecast_engine

        state = self.state
        entries: dict[int, list[tuple[float, str, int]]] = {}
        specials: list[tuple[int, QueuedTicket, int]] = []
        for index, ticket in enumerate(state.waiting):
            is_priority = ticket.priority is Priority.PRIORITY
            slot = self._slot(ticket.service_id, ticket.target_wait_s, is_priority)
            if _is_special(ticket):
                specials.append((index, ticket, slot))
            else:
                queued_s = self.seconds(ticket.queued_at)
                entries.setdefault(slot, []).append((queued_s, ticket.id, index))
        streams = [self._stream(rate) for rate in state.arrivals]
        slots = len(self.slot_service)
        for line in entries.values():
            line.sort()
        entry_ptr, entry_ref, entry_queued = _rows(
            [[(index, at) for at, _, index in entries.get(slot, [])] for slot in range(slots)]
        )
        log_params = [self.times(service_id).log_params() for service_id in self.slot_service]
        counter_slot_ptr, counter_slot, counter_slot_offset = _rows(
            [self._counter_slots(counter) for counter in self.counters]
        )
        counter_special_ptr, counter_special, counter_special_offset = _rows(
            [self._counter_specials(counter, specials) for counter in self.counters]
        )
        counter_stream_ptr, counter_stream, _ = _rows(
            [
                [
                    (number, 0.0)
                    for number, rate in enumerate(state.arrivals)
                    if rate.per_hour > 0.0 and counter.profile.get(rate.service_id, 0.0) > 0.0
                ]
                for counter in self.counters
            ]
        )
        capable_ptr, capable, _ = _rows([[(i, 0.0) for i in s[6]] for s in streams])
        in_hand = [self._in_hand(counter) for counter in self.counters]
        rota = self._rota_events()
        ids = sorted(ticket.id for ticket in state.waiting)
        rank = {ticket_id: place for place, ticket_id in enumerate(ids)}
        return forecast_engine.Plan(
            waiting=len(state.waiting),
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
            counter_open=np.array([c.is_open for c in self.counters], np.bool_),
            counter_busy_for_s=np.array([h[0] for h in in_hand], np.float64),
            counter_mu=np.array([h[1] for h in in_hand], np.float64),
            counter_sigma=np.array([h[2] for h in in_hand], np.float64),
            counter_mean_s=np.array([h[3] for h in in_hand], np.float64),
            counter_cv=np.array([h[4] for h in in_hand], np.float64),
            counter_on_break=np.array([self.on_break_now(c) for c in self.counters], np.bool_),
            counter_slot_ptr=counter_slot_ptr,
            counter_slot=counter_slot,
            counter_slot_per_target=np.array(
                [self.slot_per_target[slot] for slot in counter_slot], np.float64
            ),
            counter_slot_offset=counter_slot_offset,
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
            id_rank=np.array([rank[t.id] for t in state.waiting], np.int64),
            id_before_arrivals=np.array([t.id < "~" for t in state.waiting], np.bool_),
        )

    def _slot(self, service_id: str, target_wait_s: float, is_priority: bool) -> int:
        key = (service_id, target_wait_s, is_priority)
        slot = self.slot_of.get(key)
        if slot is None:
            slot = self.slot_of[key] = len(self.slot_service)
            self.slot_service.append(service_id)
            self.slot_per_target.append(1.0 / max(target_wait_s, 1.0))
            self.slot_head_start.append(PRIORITY_HEAD_START if is_priority else 0.0)
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
        """The counters that serve a service, the ones weighing it most first."""
        serving = [i for i, c in enumerate(self.counters) if c.profile.get(service_id, 0) > 0]
        serving.sort(key=lambda i: (-self.counters[i].profile[service_id], i))
        return tuple(serving)

    def _counter_slots(self, counter: ForecastCounter) -> list[tuple[int, float]]:
        """(queue, class head start + weight offset) of every queue it serves."""
        found = []
        for slot, service_id in enumerate(self.slot_service):
            weight = counter.profile.get(service_id, 0.0)
            if weight > 0.0:
                found.append((slot, self.slot_head_start[slot] + (weight - 1.0) * WEIGHT_SPAN))
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
