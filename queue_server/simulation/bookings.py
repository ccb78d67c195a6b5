"""Do bookings cost the walk-ins? Issue 19's measure, with the real dispatcher and calendar.

Each simulated day draws the hall's visitors once; 30% of them book instead of walking in. A
booker asks for the slot at the time they would have come and gets the first free one from
then on (the real calendar, `domain.calendar.day_slots`, which keeps half of the counter time
for walk-ins). As ASAN saw, 29% of bookers never come, and 43% of those who do arrive up to two
hours early: the kiosk checks them in at most 30 minutes before their slot (earlier ones are
told to come back then); the others arrive between 20 minutes early and 5 minutes late. A
checked-in booker's ticket is an appointment at the slot, which the dispatcher calls before
walk-ins once due.

The comparison day has the same walk-ins and no bookings: the bookers who came arrive as
walk-ins at the time they wanted, and nobody holds a slot. Bookers who did not come are absent
from both days (they would not have come), so both days carry the same work.
Two figures: the walk-ins' mean wait with bookings over without (goal: at most +15%), and the
share of booked visitors called within 5 minutes of their slot (or of their check-in, when they
came late) (goal: 95%).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

import numpy as np

from queue_server.domain.calendar import OpeningHours, day_slots
from queue_server.domain.dispatch import QueuedTicket
from queue_server.domain.tickets import Priority
from queue_server.simulation.arrivals import Visits, draw_visits, replication_rng
from queue_server.simulation.engine import BASE_DATE, DayResult, _at, _Day
from queue_server.simulation.policies import RigiDispatch
from queue_server.simulation.scenario import Scenario

BOOKED_SHARE = 0.30
BOOKED_NO_SHOW = 0.29  # ASAN: 29% of online bookers did not come
EARLY_SHARE = 0.43  # ASAN: 43% of the rest came up to two hours early
EARLY_MAX_S = 2 * 3600.0
CHECK_IN_EARLY_S = 30 * 60.0  # the arrival window's early edge (RIGI_BOOKING_EARLY_MINUTES)
ON_TIME_FROM_S, ON_TIME_TO_S = -20 * 60.0, 5 * 60.0
WALKIN_SHARE = 0.5  # the calendar's default share of counter time kept for walk-ins
CALLED_WITHIN_S = 5 * 60.0
GOAL_WALKIN_RISE = 0.15
GOAL_ON_TIME = 0.95
ALL_DAYS = frozenset(range(7))


@dataclass(frozen=True, slots=True)
class BookingMeasure:
    days: int
    visits: int  # per day, on average
    booked: int  # bookers who came, in all
    unbooked: int  # bookers who found no free slot and walked in
    walkin_mean_without_s: float
    walkin_mean_with_s: float
    booked_on_time: float  # share called within 5 minutes of slot or check-in
    booked_mean_wait_s: float  # from check-in to call

    @property
    def walkin_rise(self) -> float:
        return self.walkin_mean_with_s / self.walkin_mean_without_s - 1.0


@dataclass(frozen=True, slots=True)
class _Plan:
    """One day's visitors as two days: without bookings and with them."""

    without: Visits
    with_bookings: Visits
    booked: np.ndarray  # per visit of `with_bookings`: a checked-in booker
    slot_s: np.ndarray  # per visit of `with_bookings`: the slot (NaN for walk-ins)
    walk_in_without: np.ndarray  # per visit of `without`: a walk-in of both days
    unbooked: int


class _BookedDay(_Day):
    """A simulated day whose booked visitors check in as appointments at their slot."""

    def __init__(self, scenario: Scenario, visits: Visits, slot_s: np.ndarray) -> None:
        super().__init__(scenario, visits, RigiDispatch(), scenario.priority_share, False)
        self.slot_s = slot_s.tolist()

    def _arrive(self, visit: int, now: float) -> None:
        slot = self.slot_s[visit]
        if slot != slot:  # NaN: a walk-in
            super()._arrive(visit, now)
            return
        sid = self.service_ids[self.kinds[visit]]
        ticket = QueuedTicket(
            id=f"{visit:07d}",
            service_id=sid,
            priority=Priority.APPOINTMENT,
            queued_at=_at(now),
            target_wait_s=float(self.targets[visit]),
            appointment_at=_at(slot),
        )
        self.policy.add(visit, ticket, self.views)
        for counter in self.capable[sid]:
            if counter.on_duty and not counter.busy and self._try_call(counter, now):
                break


def _slots(scenario: Scenario) -> dict[str, list[list[float]]]:
    """Service id → [slot start (s), places left] from the real calendar."""
    day = BASE_DATE.date()
    opens = time(int(scenario.open_s // 3600), int(scenario.open_s % 3600 // 60))
    closes = time(min(int(scenario.close_s // 3600), 23), int(scenario.close_s % 3600 // 60))
    hours = OpeningHours(opens, closes, ALL_DAYS)
    found = {}
    for service in scenario.services:
        counters = sum(1 for c in scenario.counters if c.profile.get(service.id, 0.0) > 0.0)
        slots = day_slots(
            day, hours, "Asia/Tbilisi", counters=counters,
            service_time_min=service.mean_service_s / 60, walkin_share=WALKIN_SHARE,
        )  # fmt: skip
        found[service.id] = [[(s.at - BASE_DATE).total_seconds(), s.capacity] for s in slots]
    return found


def _book(places: list[list[float]], wanted_s: float) -> float | None:
    """The first slot with a place at or after `wanted_s`, else the last one before it."""
    later = [p for p in places if p[0] >= wanted_s and p[1] > 0]
    earlier = [p for p in places if p[0] < wanted_s and p[1] > 0]
    chosen = later[0] if later else (earlier[-1] if earlier else None)
    if chosen is None:
        return None
    chosen[1] -= 1
    return float(chosen[0])


def _plan(scenario: Scenario, visits: Visits, rng: np.random.Generator) -> _Plan:
    n = len(visits)
    books = rng.random(n) < BOOKED_SHARE
    stays_away = books & (rng.random(n) < BOOKED_NO_SHOW)
    early = rng.random(n) < EARLY_SHARE
    early_by = rng.uniform(0.0, EARLY_MAX_S, n)
    on_time = rng.uniform(ON_TIME_FROM_S, ON_TIME_TO_S, n)
    places = _slots(scenario)
    slot = np.full(n, np.nan)
    check_in = visits.arrival_s.copy()
    unbooked = 0
    for v in rng.permutation(np.flatnonzero(books)):  # bookings come in no particular order
        sid = scenario.services[int(visits.service[v])].id
        got = _book(places[sid], float(visits.arrival_s[v]))
        if got is None:
            unbooked += 1
            continue
        slot[v] = got
        arrives = got - early_by[v] if early[v] else got + on_time[v]
        check_in[v] = max(arrives, got - CHECK_IN_EARLY_S)
    keep = ~stays_away | np.isnan(slot)  # a booker who found no slot walks in, like anyone
    booked = ~np.isnan(slot) & keep
    without = _subset(visits, keep, visits.arrival_s)
    order_with = np.argsort(check_in[keep], kind="stable")
    with_bookings = _subset(visits, keep, check_in, order_with)
    return _Plan(
        without=without,
        with_bookings=with_bookings,
        booked=booked[keep][order_with],
        slot_s=slot[keep][order_with],
        walk_in_without=~booked[keep][np.argsort(visits.arrival_s[keep], kind="stable")],
        unbooked=unbooked,
    )


def _subset(
    visits: Visits, keep: np.ndarray, arrival: np.ndarray, order: np.ndarray | None = None
) -> Visits:
    """The kept visits with the given arrival times, sorted by arrival."""
    if order is None:
        order = np.argsort(arrival[keep], kind="stable")
    return Visits(
        arrival_s=arrival[keep][order],
        service=visits.service[keep][order],
        service_s=visits.service_s[keep][order],
        priority_draw=visits.priority_draw[keep][order],
        no_show=visits.no_show[keep][order],
    )


def measure_bookings(scenario: Scenario, seed: int, days: int) -> BookingMeasure:
    """Run `days` pairs of days (the same visitors with and without bookings)."""
    without_waits: list[np.ndarray] = []
    with_waits: list[np.ndarray] = []
    lateness: list[np.ndarray] = []
    booked_waits: list[np.ndarray] = []
    visits_total = unbooked = 0
    for replication in range(days):
        rng = replication_rng(seed, replication)
        visits = draw_visits(scenario, rng)
        plan = _plan(scenario, visits, rng)
        visits_total += len(visits)
        unbooked += plan.unbooked
        plain = _run(_Day(scenario, plan.without, RigiDispatch(), scenario.priority_share, False))
        booked = _run(_BookedDay(scenario, plan.with_bookings, plan.slot_s))
        served_plain = ~plan.without.no_show
        served = ~plan.with_bookings.no_show
        without_waits.append(plain.wait_s[plan.walk_in_without & served_plain])
        with_waits.append(booked.wait_s[~plan.booked & served])
        mine = plan.booked & served
        called = booked.arrival_s[mine] + booked.wait_s[mine]
        due = np.maximum(plan.slot_s[mine], booked.arrival_s[mine])
        lateness.append(called - due)
        booked_waits.append(booked.wait_s[mine])
    late = np.concatenate(lateness)
    return BookingMeasure(
        days=days,
        visits=visits_total // max(days, 1),
        booked=len(late),
        unbooked=unbooked,
        walkin_mean_without_s=float(np.concatenate(without_waits).mean()),
        walkin_mean_with_s=float(np.concatenate(with_waits).mean()),
        booked_on_time=float((late <= CALLED_WITHIN_S).mean()) if len(late) else 1.0,
        booked_mean_wait_s=float(np.concatenate(booked_waits).mean()) if len(late) else 0.0,
    )


def _run(day: _Day) -> DayResult:
    day.run()
    return day.result("rigi")


LOADS = (None, 0.9, 0.95)  # the scenario as it is, then busier days


def markdown(scenario: Scenario, measures: list[tuple[str, BookingMeasure]], seconds: float) -> str:
    """The section of docs/simulation.md: one row per load."""
    first = measures[0][1]
    lines = [
        f"## Bookings on a {scenario.name} day (issue 19)",
        "",
        f"`queue-server simulate bookings {scenario.name} {first.days}` "
        "(`queue_server/simulation/bookings.py`, the real dispatcher and calendar): "
        f"{BOOKED_SHARE:.0%} of the visitors book, {BOOKED_NO_SHOW:.0%} of bookers do not come, "
        f"{EARLY_SHARE:.0%} of the rest arrive up to two hours early (checked in at most "
        f"{CHECK_IN_EARLY_S / 60:.0f} minutes before the slot), the others between 20 minutes "
        f"early and 5 late; the calendar keeps {WALKIN_SHARE:.0%} of counter time for walk-ins. "
        "The day without bookings has the same walk-ins, and the bookers who came arrive as "
        "walk-ins when they wanted to come. "
        f"{first.days} pairs of days per load took {seconds:.1f} s in all.",
        "",
        "| Offered load | Booked visits that came | Walk-ins' mean wait without → with (min) "
        "| Rise (goal ≤ +15%) | Booked called within 5 min of slot (goal ≥ 95%) "
        "| Booked mean wait (min) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, m in measures:
        lines.append(
            f"| {label} | {m.booked / m.days:,.0f} a day | {m.walkin_mean_without_s / 60:.2f} → "
            f"{m.walkin_mean_with_s / 60:.2f} | {m.walkin_rise:+.1%} "
            f"{'✓' if m.walkin_rise <= GOAL_WALKIN_RISE else '✗'} | {m.booked_on_time:.1%} "
            f"{'✓' if m.booked_on_time >= GOAL_ON_TIME else '✗'} | "
            f"{m.booked_mean_wait_s / 60:.2f} |"
        )
    return "\n".join([*lines, ""])


def main(argv: list[str]) -> int:
    """`queue-server simulate bookings [SCENARIO] [DAYS]`: the measure's table, printed."""
    import time as clock

    from queue_server.simulation.scenario import load_scenario

    scenario = load_scenario(argv[0] if argv else "tbilisi-hall")
    days = int(argv[1]) if len(argv) > 1 else 10
    started = clock.perf_counter()
    measures = []
    for load in LOADS:
        busy = scenario if load is None else scenario.with_utilisation(load)
        label = f"{busy.offered_load():.2f}" + (" (as configured)" if load is None else "")
        measures.append((label, measure_bookings(busy, 1, days)))
    print(markdown(scenario, measures, clock.perf_counter() - started))
    return 0
