"""Wait estimates: people ahead and minutes, from open counters and learned service times."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from queue_server.domain.dispatch import QueuedTicket, urgency

LEARNING_WEIGHT = 0.1  # weight of each new observation in the moving mean of service times
MIN_OBSERVATIONS = 3  # below this many finished visits, trust the configured time instead


@dataclass(frozen=True, slots=True)
class CounterState:
    """What the estimator needs of a counter: is it open, and what does it serve."""

    id: str
    is_open: bool
    profile: Mapping[str, float]
    busy: bool = False


@dataclass(frozen=True, slots=True)
class WaitEstimate:
    people_ahead: int
    wait_s: float

    @property
    def minutes(self) -> int:
        """Rounded up to whole minutes: an honest estimate does not promise too little."""
        return int(-(-self.wait_s // 60))


@dataclass(slots=True)
class ServiceTimes:
    """Service times learned from the day so far, falling back to the configured ones."""

    configured_s: Mapping[str, float]
    learned_s: dict[str, float] = field(default_factory=dict)
    observations: dict[str, int] = field(default_factory=dict)

    def observe(self, service_id: str, duration_s: float) -> None:
        count = self.observations.get(service_id, 0) + 1
        self.observations[service_id] = count
        previous = self.learned_s.get(service_id)
        if previous is None:
            self.learned_s[service_id] = duration_s
        else:
            self.learned_s[service_id] = previous + LEARNING_WEIGHT * (duration_s - previous)

    def mean_s(self, service_id: str) -> float:
        if self.observations.get(service_id, 0) >= MIN_OBSERVATIONS:
            return self.learned_s[service_id]
        return self.configured_s.get(service_id, 300.0)


def tickets_ahead(
    ticket: QueuedTicket,
    waiting: Iterable[QueuedTicket],
    counters: Sequence[CounterState],
    now: datetime,
) -> list[QueuedTicket]:
    """Waiting tickets that the counters serving this ticket's service will take before it."""
    serving = [c for c in counters if c.profile.get(ticket.service_id, 0.0) > 0.0]
    shared = {service for c in serving for service, w in c.profile.items() if w > 0.0}
    mine = urgency(ticket, now)
    ahead = []
    for other in waiting:
        if other.id == ticket.id or other.service_id not in shared:
            continue
        theirs = urgency(other, now)
        if theirs > mine or (theirs == mine and other.queued_at < ticket.queued_at):
            ahead.append(other)
    return ahead


def estimate_wait(
    ticket: QueuedTicket,
    waiting: Iterable[QueuedTicket],
    counters: Sequence[CounterState],
    times: ServiceTimes,
    now: datetime,
) -> WaitEstimate:
    """Estimate how long `ticket` will wait: the work ahead of it that falls to the open counters
    serving its service, spread over those counters, plus the wait for the first of them to
    come free. With no open counter the estimate uses every configured counter that serves it
    (the hall is about to open), so it is never infinite."""
    ahead = tickets_ahead(ticket, waiting, counters, now)
    capable = [c for c in counters if c.profile.get(ticket.service_id, 0.0) > 0.0]
    open_capable = [c for c in capable if c.is_open] or capable
    servers = max(len(open_capable), 1)
    open_counters = [c for c in counters if c.is_open] or list(counters)
    shares: dict[str, float] = {}
    load = 0.0  # people ahead, counted by the part of them that these counters will serve
    work_ahead_s = 0.0
    for other in ahead:
        share = shares.get(other.service_id)
        if share is None:
            share = shares[other.service_id] = _share_served(
                other.service_id, open_capable, open_counters
            )
        load += share
        work_ahead_s += share * times.mean_s(other.service_id)
    free = sum(1 for c in open_capable if not c.busy)
    if load < free:
        return WaitEstimate(people_ahead=len(ahead), wait_s=0.0)
    if free:
        work_ahead_s *= 1 - free / load  # the first `free` of them are called at once
    # All counters are then busy: the first frees up after about one mean service time / servers.
    first_free_s = times.mean_s(ticket.service_id) / servers
    return WaitEstimate(people_ahead=len(ahead), wait_s=(work_ahead_s + first_free_s) / servers)


def _share_served(
    service_id: str, mine: Sequence[CounterState], open_counters: Sequence[CounterState]
) -> float:
    """The part of a service's queue that `mine` take, by their weights among the open counters
    that serve it (a ticket ahead that other counters will most likely take does not delay us)."""
    serving = sum(c.profile.get(service_id, 0.0) for c in open_counters)
    overlap = sum(c.profile.get(service_id, 0.0) for c in mine)
    return min(overlap / serving, 1.0) if serving > 0.0 else 1.0
