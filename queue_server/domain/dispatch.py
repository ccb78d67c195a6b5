"""The dispatcher: which waiting ticket a counter should call next, and why.

Tickets wait in pooled queues (one per service) and are not bound to a counter when issued.
A counter pulls from every queue its work profile names. Each candidate gets an urgency:

    urgency = weight × (waited / target wait) + class head start

so a ticket that has used up more of its service's target comes first, a counter prefers the
services it is weighted for, and priority classes start ahead but do not starve anybody: a
normal ticket that has waited `PRIORITY_HEAD_START` targets longer than a priority one overtakes
it (ageing). Due appointments come before everything else, and the fairness guard puts a
walk-in that has waited `FAIRNESS_GUARD` × its target before every other ticket that has not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from queue_server.domain.tickets import Priority

PRIORITY_HEAD_START = 1.0  # in service targets: a priority ticket counts as one target ahead
APPOINTMENT_HEAD_START = 100.0  # a due appointment is called before any walk-in
# A counter's weight for a service moves its tickets by (weight − 1) × WEIGHT_SPAN targets: a
# side service (weight 0.5) is taken once its ticket is half a target more overdue than the
# counter's main work. Additive rather than multiplicative so that a side service's tickets are
# delayed by a bounded amount and never starve behind a busy main queue.
WEIGHT_SPAN = 1.0
# The fairness guard: a walk-in that has waited `guard` × its target goes before every ticket
# that has not, whatever its class and the counter's weight for it, but for a due appointment
# (a promise of a time: bookings keep it, issue 19); among guarded tickets the one that has used
# more of its target first. On at 1.5 by default (`RIGI_FAIRNESS_GUARD`; None turns it off):
# over 30 simulated hall days at 20% priority traffic it brought a normal ticket's p99.9 wait to
# 2.4 × its target and the longest to 3.0 ×, with the mean wait down (docs/simulation.md,
# "Fairness guard").
FAIRNESS_GUARD = 1.5
GUARD_HEAD_START = APPOINTMENT_HEAD_START / 2  # above any unguarded walk-in, below due bookings
# The forecast's compiled runs (`forecast_engine`) read these head starts when numba compiles
# them, and numba's cache on disk is keyed on that module's file alone: after changing one here,
# delete `queue_server/domain/__pycache__/forecast_engine*.nb*` (a release reinstalls anyway).


@dataclass(frozen=True, slots=True)
class QueuedTicket:
    """What the dispatcher needs to know of a waiting ticket."""

    id: str
    service_id: str
    priority: Priority
    queued_at: datetime  # when the wait started; a transfer keeps the original issue time
    target_wait_s: float
    counter_id: str | None = None  # set when transferred to one particular counter
    appointment_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Pick:
    """A candidate with its urgency and a sentence saying why it ranks where it does."""

    ticket: QueuedTicket
    urgency: float
    reason: str


def head_start(ticket: QueuedTicket, now: datetime) -> float:
    """The class head start of a ticket, in service targets."""
    if ticket.priority is Priority.APPOINTMENT:
        if ticket.appointment_at is None or ticket.appointment_at <= now:
            return APPOINTMENT_HEAD_START
        return 0.0
    if ticket.priority is Priority.PRIORITY:
        return PRIORITY_HEAD_START
    return 0.0


def urgency(
    ticket: QueuedTicket, now: datetime, weight: float = 1.0, guard: float | None = FAIRNESS_GUARD
) -> float:
    """How pressing a ticket is at `now` for a counter that weighs its service by `weight`
    (with the fairness `guard` on, an overdue walk-in outranks all but due appointments)."""
    waited = max((now - ticket.queued_at).total_seconds(), 0.0)
    target = max(ticket.target_wait_s, 1.0)
    used = waited / target
    # `overdue` written out: this runs for every candidate of every call
    guarded = guard is not None and waited >= guard * target
    if guarded and ticket.priority is not Priority.APPOINTMENT:
        return GUARD_HEAD_START + used
    return used + head_start(ticket, now) + (weight - 1.0) * WEIGHT_SPAN


def overdue(ticket: QueuedTicket, now: datetime, guard: float | None = FAIRNESS_GUARD) -> bool:
    """Whether the fairness guard puts this walk-in first: it has waited `guard` × its target
    (compared in seconds, as the forecast's compiled runs compare it: the same rounding)."""
    if guard is None or ticket.priority is Priority.APPOINTMENT:
        return False
    waited = max((now - ticket.queued_at).total_seconds(), 0.0)
    return waited >= guard * max(ticket.target_wait_s, 1.0)


def eligible(ticket: QueuedTicket, counter_id: str, profile: Mapping[str, float]) -> bool:
    """Whether this counter may serve the ticket at all."""
    if ticket.counter_id is not None:
        return ticket.counter_id == counter_id
    return profile.get(ticket.service_id, 0.0) > 0.0


def rank_for_counter(
    waiting: Iterable[QueuedTicket],
    counter_id: str,
    profile: Mapping[str, float],
    now: datetime,
    guard: float | None = FAIRNESS_GUARD,
) -> list[Pick]:
    """Every ticket this counter may serve, most urgent first (ties: earliest queued)."""
    picks = []
    for ticket in waiting:
        if not eligible(ticket, counter_id, profile):
            continue
        weight = profile.get(ticket.service_id, 1.0) or 1.0
        score = urgency(ticket, now, weight, guard)
        picks.append(Pick(ticket, score, _reason(ticket, now, weight, score, guard)))
    picks.sort(key=lambda pick: (-pick.urgency, pick.ticket.queued_at, pick.ticket.id))
    return picks


def call_next(
    waiting: Sequence[QueuedTicket],
    counter_id: str,
    profile: Mapping[str, float],
    now: datetime,
    guard: float | None = FAIRNESS_GUARD,
) -> Pick | None:
    """The ticket a counter should call now, or None when nothing it serves is waiting.

    Same choice as the head of `rank_for_counter`, found in one pass without sorting or
    writing a reason for every candidate: this runs on every "call next" with the whole queue.
    """
    found = most_urgent(waiting, counter_id, profile, now, guard)
    if found is None:
        return None
    best, score, weight = found
    return Pick(best, score, _reason(best, now, weight, score, guard))


def most_urgent(
    waiting: Iterable[QueuedTicket],
    counter_id: str,
    profile: Mapping[str, float],
    now: datetime,
    guard: float | None = FAIRNESS_GUARD,
) -> tuple[QueuedTicket, float, float] | None:
    """`call_next`'s choice with its urgency and the counter's weight for it, without the
    sentence: the wait forecast asks this thousands of times per refresh."""
    best: QueuedTicket | None = None
    best_key: tuple[float, datetime, str] | None = None
    best_weight = 1.0
    for ticket in waiting:
        if not eligible(ticket, counter_id, profile):
            continue
        weight = profile.get(ticket.service_id, 1.0) or 1.0
        key = (-urgency(ticket, now, weight, guard), ticket.queued_at, ticket.id)
        if best_key is None or key < best_key:
            best, best_key, best_weight = ticket, key, weight
    if best is None or best_key is None:
        return None
    return best, -best_key[0], best_weight


def _reason(
    ticket: QueuedTicket, now: datetime, weight: float, score: float, guard: float | None
) -> str:
    waited_min = max((now - ticket.queued_at).total_seconds(), 0.0) / 60
    target_min = ticket.target_wait_s / 60
    parts = []
    start = head_start(ticket, now)
    if overdue(ticket, now, guard):
        parts.append("overdue: waited past the fairness guard")
    elif start >= APPOINTMENT_HEAD_START:
        parts.append("appointment due")
    elif start:
        parts.append(f"{ticket.priority.value} class")
    if ticket.counter_id is not None:
        parts.append("transferred to this counter")
    parts.append(f"waited {waited_min:.0f} of {target_min:.0f} min target")
    if weight != 1.0:
        parts.append(f"service weight {weight:g}")
    return f"{', '.join(parts)} (urgency {score:.2f})"
