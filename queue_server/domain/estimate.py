"""Wait estimates: people ahead and minutes, from open counters and learned service times."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from queue_server.domain.dispatch import QueuedTicket, head_start, urgency
from queue_server.domain.tickets import Priority

LEARNING_WEIGHT = 0.1  # weight of each new observation in the moving mean of service times
MIN_OBSERVATIONS = 3  # below this many finished visits, trust the configured time instead


@dataclass(frozen=True, slots=True)
class EstimatorCounter:
    """What the estimator needs of a counter: is it open, and what does it serve."""

    id: str
    is_open: bool
    profile: Mapping[str, float]
    busy: bool = False


@dataclass(frozen=True, slots=True)
class WaitEstimate:
    people_ahead: int
    wait_s: float
    served_now: bool = True  # False: no open counter serves the service (the wait is a guess)
    p90_s: float | None = None  # the forecast's 90th percentile, when a forecast is known
    next_open_at: datetime | None = None  # when not served now: when a counter serving it opens

    @property
    def p90_minutes(self) -> int | None:
        return None if self.p90_s is None else int(-(-self.p90_s // 60))

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


class WaitingLine:
    """The waiting tickets of a branch, kept in the dispatcher's order without ranking again.

    A walk-in's urgency grows by 1/target a second from its class head start, so it is more
    urgent than another exactly when it effectively started waiting earlier: its *effective
    start* is when it queued, less its head start in targets (a priority ticket counts as
    having queued one target earlier). That order holds for as long as they wait, so each
    service's tickets are sorted by it once, a newcomer is inserted, and counting who is ahead
    of a ticket is one bisection per service. Appointments change class when they fall due, so
    those few are ranked at each question instead. The order is the dispatcher's without the
    fairness guard, which changes it only for tickets already 1.5 targets late: for a ticket
    walk-in just issued (the estimate at issue) the count ahead is the same with it on or off.
    """

    def __init__(self, waiting: Iterable[QueuedTicket] = ()) -> None:
        self._starts: dict[str, list[tuple[float, datetime]]] = {}
        self._targets_us: dict[str, float] = {}
        self._appointments: list[QueuedTicket] = []
        for ticket in waiting:
            if ticket.priority is Priority.APPOINTMENT:
                self._appointments.append(ticket)
            else:
                self._starts_of(ticket).append(_line_key(ticket))
        for starts in self._starts.values():
            starts.sort()

    def copy(self) -> WaitingLine:
        """An independent copy: a writer adds to it while readers keep using the original."""
        line = WaitingLine()
        line._starts = {service: list(starts) for service, starts in self._starts.items()}
        line._targets_us = dict(self._targets_us)
        line._appointments = list(self._appointments)
        return line

    def add(self, ticket: QueuedTicket) -> None:
        """Put a newly queued ticket in the line."""
        if ticket.priority is Priority.APPOINTMENT:
            self._appointments.append(ticket)
        else:
            insort(self._starts_of(ticket), _line_key(ticket))

    def _starts_of(self, ticket: QueuedTicket) -> list[tuple[float, datetime]]:
        self._targets_us[ticket.service_id] = _target_us(ticket)
        return self._starts.setdefault(ticket.service_id, [])

    def ahead(self, ticket: QueuedTicket, services: Iterable[str], now: datetime) -> dict[str, int]:
        """How many tickets of each of `services` the dispatcher ranks before `ticket` at
        `now`: the more urgent, and the as urgent that queued earlier (never itself)."""
        mine = urgency(ticket, now, guard=None)  # the line's order: see `WaitingLine`
        own_start = None
        if ticket.priority is not Priority.APPOINTMENT:
            own_start = _effective_start_us(ticket)
        counts = {}
        for service in services:
            starts = self._starts.get(service, ())
            count = 0
            if starts:
                target_us = self._targets_us[service]
                if own_start is not None and target_us == _target_us(ticket):
                    threshold = own_start  # the same arithmetic as the line's: ties are exact
                else:
                    threshold = _us(now) - mine * target_us
                count = bisect_left(starts, (threshold, ticket.queued_at))
            for other in self._appointments:
                if other.service_id == service and other.id != ticket.id:
                    theirs = urgency(other, now, guard=None)
                    if theirs > mine or (theirs == mine and other.queued_at < ticket.queued_at):
                        count += 1
            counts[service] = count
        return counts


def _us(moment: datetime) -> int:
    epoch = _EPOCH if moment.tzinfo is not None else _EPOCH.replace(tzinfo=None)
    return (moment - epoch) // _MICROSECOND


def _target_us(ticket: QueuedTicket) -> float:
    return max(ticket.target_wait_s, 1.0) * 1e6  # as `urgency` reads the target


def _line_key(ticket: QueuedTicket) -> tuple[float, datetime]:
    return (_effective_start_us(ticket), ticket.queued_at)


def _effective_start_us(ticket: QueuedTicket) -> float:
    """When a walk-in effectively started waiting: urgency(now) = (now − this) / target."""
    return _us(ticket.queued_at) - head_start(ticket, ticket.queued_at) * _target_us(ticket)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def estimate_wait(
    ticket: QueuedTicket,
    line: WaitingLine,
    counters: Sequence[EstimatorCounter],
    times: ServiceTimes,
    now: datetime,
) -> WaitEstimate:
    """Estimate how long `ticket` will wait: the work ahead of it that falls to the open counters
    serving its service, spread over those counters, plus the wait for the first of them to
    come free. Ahead of it are the waiting tickets of every service that a counter serving its
    service also serves, that the dispatcher ranks first. With no open counter the estimate
    uses every configured counter that serves it (the hall is about to open), so it is never
    infinite."""
    capable = [c for c in counters if c.profile.get(ticket.service_id, 0.0) > 0.0]
    ahead = line.ahead(ticket, _shared_services(c.profile for c in capable), now)
    served_now = any(c.is_open for c in capable)
    open_capable = [c for c in capable if c.is_open] or capable
    servers = max(len(open_capable), 1)
    open_counters = [c for c in counters if c.is_open] or list(counters)
    load = 0.0  # people ahead, counted by the part of them that these counters will serve
    work_ahead_s = 0.0
    for service_id, count in ahead.items():
        if not count:
            continue
        share = _share_served(service_id, open_capable, open_counters)
        load += share * count
        work_ahead_s += share * count * times.mean_s(service_id)
    people_ahead = sum(ahead.values())
    free = sum(1 for c in open_capable if not c.busy)
    if load < free:
        return WaitEstimate(people_ahead=people_ahead, wait_s=0.0, served_now=served_now)
    if free:
        work_ahead_s *= 1 - free / load  # the first `free` of them are called at once
    # All counters are then busy: the first frees up after about one mean service time /
    # servers, and the work ahead is shared by the servers (each divided once: m/c, not m/c²).
    first_free_s = times.mean_s(ticket.service_id) / servers
    wait_s = work_ahead_s / servers + first_free_s
    return WaitEstimate(people_ahead=people_ahead, wait_s=wait_s, served_now=served_now)


def people_ahead(
    ticket: QueuedTicket, line: WaitingLine, profiles: Sequence[Mapping[str, float]], now: datetime
) -> int:
    """How many waiting tickets the dispatcher ranks before `ticket`, counted as
    `estimate_wait` counts them: of every service that a counter serving its service also
    serves. `profiles`: the branch's counters' work profiles."""
    capable = [profile for profile in profiles if profile.get(ticket.service_id, 0.0) > 0.0]
    return sum(line.ahead(ticket, _shared_services(capable), now).values())


def _shared_services(profiles: Iterable[Mapping[str, float]]) -> list[str]:
    """The services that any of these work profiles serves, sorted."""
    return sorted({service for profile in profiles for service, w in profile.items() if w > 0.0})


def _share_served(
    service_id: str, mine: Sequence[EstimatorCounter], open_counters: Sequence[EstimatorCounter]
) -> float:
    """The part of a service's queue that `mine` take, by their weights among the open counters
    that serve it (a ticket ahead that other counters will most likely take does not delay us)."""
    serving = sum(c.profile.get(service_id, 0.0) for c in open_counters)
    overlap = sum(c.profile.get(service_id, 0.0) for c in mine)
    return min(overlap / serving, 1.0) if serving > 0.0 else 1.0
