"""How a free counter finds its next visitor: the policies the simulator compares.

- `RoundRobinBinding`: a kiosk binds each ticket to the next staffed counter serving its
  service in turn, whatever the lines' lengths; priority visitors go to the front of that line.
- `OneLinePerCounter`: a ticket is bound to a counter when it is issued (the visitor joins the
  shortest line among the counters that serve the service, like a bank, and never switches);
  priority visitors go to the front of that line.
- `ShortestLineSwitching`: the same, but when a counter falls idle with nobody in its own line,
  the visitor waiting longest in another line that it can serve walks over to it.
- `PooledFcfs`: one line per service; a free counter takes the visitor who came first among the
  services it serves, priority visitors first.
- `RigiDispatch`: one pool of waiting tickets; a free counter asks the real dispatcher
  (`queue_server.domain.dispatch.call_next`) whom to call, with the fairness guard on at 1.5
  targets as the server's "call next" by default.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Protocol

from queue_server.domain.dispatch import FAIRNESS_GUARD, QueuedTicket, call_next
from queue_server.domain.tickets import Priority


class CounterView(Protocol):
    index: int
    id: str
    profile: dict[str, float]
    on_duty: bool
    busy: bool


class Policy(Protocol):
    name: str

    def add(self, visit: int, ticket: QueuedTicket, counters: list[CounterView]) -> None: ...

    def next_for(self, counter: CounterView, now: datetime) -> int | None: ...

    def waiting_count(self) -> int: ...


class OneLinePerCounter:
    name = "one line per counter"

    def __init__(self, counters: int) -> None:
        self._lines = [(deque[int](), deque[int]()) for _ in range(counters)]
        self._waiting = 0

    def bound_counter(self, service_id: str, counters: list[CounterView]) -> CounterView:
        capable = [c for c in counters if c.profile.get(service_id, 0.0) > 0.0]
        staffed = [c for c in capable if c.on_duty] or capable
        return min(staffed, key=lambda c: (self._length(c.index) + c.busy, c.index))

    def add(self, visit: int, ticket: QueuedTicket, counters: list[CounterView]) -> None:
        counter = self.bound_counter(ticket.service_id, counters)
        urgent, normal = self._lines[counter.index]
        (urgent if ticket.priority is Priority.PRIORITY else normal).append(visit)
        self._waiting += 1

    def next_for(self, counter: CounterView, now: datetime) -> int | None:
        for line in self._lines[counter.index]:
            if line:
                self._waiting -= 1
                return line.popleft()
        return None

    def waiting_count(self) -> int:
        return self._waiting

    def _length(self, index: int) -> int:
        urgent, normal = self._lines[index]
        return len(urgent) + len(normal)


class RoundRobinBinding(OneLinePerCounter):
    name = "round-robin binding"

    def __init__(self, counters: int) -> None:
        super().__init__(counters)
        self._turn: dict[str, int] = {}

    def bound_counter(self, service_id: str, counters: list[CounterView]) -> CounterView:
        capable = [c for c in counters if c.profile.get(service_id, 0.0) > 0.0]
        staffed = [c for c in capable if c.on_duty] or capable
        turn = self._turn.get(service_id, 0)
        self._turn[service_id] = turn + 1
        return staffed[turn % len(staffed)]


class ShortestLineSwitching(OneLinePerCounter):
    name = "shortest line, switching"

    def __init__(self, counters: int, arrival_s: list[float]) -> None:
        super().__init__(counters)
        self._arrival_s = arrival_s
        self._service: dict[int, str] = {}

    def add(self, visit: int, ticket: QueuedTicket, counters: list[CounterView]) -> None:
        self._service[visit] = ticket.service_id
        super().add(visit, ticket, counters)

    def next_for(self, counter: CounterView, now: datetime) -> int | None:
        own = super().next_for(counter, now)
        if own is not None:
            return own
        for klass in (0, 1):  # priority visitors first, then the one waiting longest
            best: deque[int] | None = None
            for lines in self._lines:
                line = lines[klass]
                if not line or counter.profile.get(self._service[line[0]], 0.0) <= 0.0:
                    continue
                if best is None or self._arrival_s[line[0]] < self._arrival_s[best[0]]:
                    best = line
            if best is not None:
                self._waiting -= 1
                return best.popleft()
        return None


class PooledFcfs:
    name = "pooled FCFS"

    def __init__(self, arrival_s: list[float]) -> None:
        self._arrival_s = arrival_s
        self._lines: dict[str, tuple[deque[int], deque[int]]] = {}
        self._waiting = 0

    def add(self, visit: int, ticket: QueuedTicket, counters: list[CounterView]) -> None:
        urgent, normal = self._lines.setdefault(ticket.service_id, (deque(), deque()))
        (urgent if ticket.priority is Priority.PRIORITY else normal).append(visit)
        self._waiting += 1

    def next_for(self, counter: CounterView, now: datetime) -> int | None:
        for klass in (0, 1):
            best: deque[int] | None = None
            for service_id, weight in counter.profile.items():
                lines = self._lines.get(service_id)
                if weight <= 0.0 or lines is None or not lines[klass]:
                    continue
                line = lines[klass]
                if best is None or self._arrival_s[line[0]] < self._arrival_s[best[0]]:
                    best = line
            if best is not None:
                self._waiting -= 1
                return best.popleft()
        return None

    def waiting_count(self) -> int:
        return self._waiting


class RigiDispatch:
    name = "Rigi dispatcher"

    def __init__(self, guard: float | None = FAIRNESS_GUARD) -> None:
        self.guard = guard  # the dispatcher's fairness guard (on by default, as in the server)
        self._pools: dict[str, dict[int, QueuedTicket]] = {}
        self._visit_of: dict[str, int] = {}

    def add(self, visit: int, ticket: QueuedTicket, counters: list[CounterView]) -> None:
        self._pools.setdefault(ticket.service_id, {})[visit] = ticket
        self._visit_of[ticket.id] = visit

    def next_for(self, counter: CounterView, now: datetime) -> int | None:
        candidates: list[QueuedTicket] = []
        for service_id, weight in counter.profile.items():
            pool = self._pools.get(service_id)
            if weight > 0.0 and pool:
                candidates.extend(pool.values())
        pick = call_next(candidates, counter.id, counter.profile, now, self.guard)
        if pick is None:
            return None
        visit = self._visit_of.pop(pick.ticket.id)
        del self._pools[pick.ticket.service_id][visit]
        return visit

    def waiting(self) -> list[QueuedTicket]:
        return [ticket for pool in self._pools.values() for ticket in pool.values()]

    def waiting_in(self, service_id: str) -> int:
        return len(self._pools.get(service_id, ()))

    def waiting_count(self) -> int:
        return len(self._visit_of)


POLICY_NAMES = ("round_robin", "per_counter", "switching", "pooled", "rigi")
