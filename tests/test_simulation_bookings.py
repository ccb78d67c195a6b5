"""Issue 19's simulation measure on the Tbilisi hall with the real dispatcher and calendar:
30% of visitors book, 29% of them do not come, 43% of the rest come early. Walk-ins wait at
most 15% longer than on the same day without bookings, and 95% of booked visitors are called
within 5 minutes of their slot. The plan itself keeps the calendar's places and the window."""

from __future__ import annotations

import numpy as np

from queue_server.simulation.arrivals import draw_visits, replication_rng
from queue_server.simulation.bookings import (
    BOOKED_NO_SHOW,
    BOOKED_SHARE,
    CHECK_IN_EARLY_S,
    GOAL_ON_TIME,
    GOAL_WALKIN_RISE,
    _plan,
    _slots,
    measure_bookings,
)
from queue_server.simulation.scenario import load_scenario


def test_bookings_cost_walk_ins_little_and_booked_visitors_are_called_on_time() -> None:
    hall = load_scenario("tbilisi-hall")
    measure = measure_bookings(hall, seed=7, days=2)
    came = BOOKED_SHARE * (1 - BOOKED_NO_SHOW)
    assert abs(measure.booked / measure.days / measure.visits - came) < 0.02
    assert measure.walkin_rise <= GOAL_WALKIN_RISE
    assert measure.booked_on_time >= GOAL_ON_TIME
    busy = measure_bookings(hall.with_utilisation(0.95), seed=7, days=1)
    assert busy.walkin_mean_with_s > measure.walkin_mean_with_s  # the load shows in the waits
    assert busy.walkin_rise <= GOAL_WALKIN_RISE


def test_the_plan_keeps_the_calendars_places_and_the_arrival_window() -> None:
    hall = load_scenario("tbilisi-hall")
    rng = replication_rng(3, 0)
    visits = draw_visits(hall, rng)
    plan = _plan(hall, visits, rng)
    booked = plan.booked
    slots, check_in = plan.slot_s[booked], plan.with_bookings.arrival_s[booked]
    assert (check_in >= slots - CHECK_IN_EARLY_S - 1e-6).all()
    capacity = {(sid, at): places for sid, rows in _slots(hall).items() for at, places in rows}
    services = plan.with_bookings.service[booked]
    used: dict[tuple[str, float], int] = {}
    for service, slot in zip(services, slots, strict=True):
        key = (hall.services[int(service)].id, float(slot))
        used[key] = used.get(key, 0) + 1
    assert all(count <= capacity[key] for key, count in used.items())
    assert len(plan.without) == len(plan.with_bookings)  # the same work on both days
    assert np.isclose(plan.without.service_s.sum(), plan.with_bookings.service_s.sum())
