"""The fairness ledger: who was called ahead of walk-ins that had waited longer.

Appointments, remote tickets and priority tickets are meant to go ahead; the ledger says, per
branch-local hour, how often that happened (a call of such a ticket while a walk-in that the
same counter could serve had been in the hall longer) and the longest walk-in wait of the hour
against its target. A manager sees whether bookings and remote places crowd out the people who
came in person (as a US licensing office's virtual queue did by 1:30 pm).

Pure: it reads plain visits (from the report facts) and a map of which counter serves what.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo


class Kind(StrEnum):
    WALK_IN = "walk_in"
    APPOINTMENT = "appointment"
    REMOTE = "remote"
    PRIORITY = "priority"


AHEAD_KINDS = (Kind.APPOINTMENT, Kind.REMOTE, Kind.PRIORITY)


@dataclass(frozen=True, slots=True)
class LedgerVisit:
    """One visit as the ledger needs it: when it came into the hall and when it was called."""

    ticket_id: str
    service_id: str
    kind: Kind
    arrived_at: datetime  # issued (for a booking or a remote place: checked in)
    called_at: datetime | None
    left_at: datetime | None  # ended without a call (cancelled), else None
    counter_id: str | None
    target_wait_s: float


@dataclass
class LedgerHour:
    """One branch-local hour: calls ahead of longer-waiting walk-ins, by kind, and the longest
    wait of a walk-in called in the hour."""

    hour: datetime  # the local hour's start, in the branch's time zone
    called: dict[str, int] = field(default_factory=lambda: dict.fromkeys(Kind, 0))
    ahead: dict[str, int] = field(default_factory=lambda: dict.fromkeys(AHEAD_KINDS, 0))
    longest_walk_in_s: float = 0.0
    longest_walk_in_target_s: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "hour": self.hour.isoformat(),
            "called": dict(self.called),
            "ahead_of_walk_ins": dict(self.ahead),
            "longest_walk_in_wait_s": round(self.longest_walk_in_s),
            "longest_walk_in_target_s": round(self.longest_walk_in_target_s),
            "longest_over_target": self.longest_walk_in_s > self.longest_walk_in_target_s > 0,
        }


def ledger(
    visits: Iterable[LedgerVisit], serves: Mapping[str, frozenset[str]], timezone: str
) -> list[LedgerHour]:
    """The ledger by local hour of the calls, oldest first. `serves`: counter → its services
    (a counter not named serves only the called ticket's own service)."""
    zone = ZoneInfo(timezone)
    visits = list(visits)
    # Walk-ins enter the waiting set when they arrive and leave when called or gone; at each
    # call, the earliest arrival still waiting per service answers "was someone here longer?"
    moments: list[tuple[datetime, int, int]] = []  # (time, order, index): leave before enter
    for index, visit in enumerate(visits):
        if visit.kind is Kind.WALK_IN:
            moments.append((visit.arrived_at, 2, index))
            end = visit.called_at or visit.left_at
            if end is not None:
                moments.append((end, 0, index))
        if visit.called_at is not None:
            moments.append((visit.called_at, 1, index))
    moments.sort(key=lambda m: (m[0], m[1]))
    waiting: dict[str, list[tuple[datetime, int]]] = {}
    gone: set[int] = set()
    hours: dict[datetime, LedgerHour] = {}
    for at, order, index in moments:
        visit = visits[index]
        if order == 2:
            heapq.heappush(waiting.setdefault(visit.service_id, []), (visit.arrived_at, index))
            continue
        if order == 0:
            gone.add(index)
            continue
        local = at.astimezone(zone).replace(minute=0, second=0, microsecond=0)
        row = hours.get(local) or hours.setdefault(local, LedgerHour(local))
        row.called[visit.kind] += 1
        if visit.kind is Kind.WALK_IN:
            waited = (at - visit.arrived_at).total_seconds()
            if waited > row.longest_walk_in_s:
                row.longest_walk_in_s, row.longest_walk_in_target_s = waited, visit.target_wait_s
            continue
        services = serves.get(visit.counter_id or "", frozenset({visit.service_id}))
        if _earliest_waiting(waiting, gone, services, visit.arrived_at):
            row.ahead[visit.kind] += 1
    return [hours[hour] for hour in sorted(hours)]


def _earliest_waiting(
    waiting: dict[str, list[tuple[datetime, int]]],
    gone: set[int],
    services: Iterable[str],
    before: datetime,
) -> bool:
    """Whether a walk-in for one of `services` has waited since before `before`."""
    for service in services:
        heap = waiting.get(service)
        while heap and heap[0][1] in gone:
            heapq.heappop(heap)
        if heap and heap[0][0] < before:
            return True
    return False
