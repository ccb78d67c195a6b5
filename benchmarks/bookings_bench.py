"""The fairness ledger's cost for a national-scale hall day: 15,000 visits (the Tbilisi hall's
design figure), 30% booked, remote or priority, called by 33 counters. It runs on every live
view refresh of a manager, so it must stay far below the 10 s refresh. And the simulation of
issue 19's measure (a pair of Tbilisi days). `python -m benchmarks.bookings_bench`."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from queue_server.domain.fairness import Kind, LedgerVisit, ledger
from queue_server.simulation.bookings import measure_bookings
from queue_server.simulation.scenario import load_scenario

VISITS = 15_000
COUNTERS = 33
SERVICES = 59
OPEN_S = 11 * 3600
REPEATS = 5
START = datetime(2025, 6, 2, 5, 0, tzinfo=UTC)


def _day(rng: random.Random) -> tuple[list[LedgerVisit], dict[str, frozenset[str]]]:
    services = [f"s{i:02d}" for i in range(SERVICES)]
    serves = {f"c{i:02d}": frozenset(rng.sample(services, 12)) for i in range(COUNTERS)}
    kinds = [Kind.WALK_IN] * 70 + [Kind.APPOINTMENT] * 20 + [Kind.REMOTE] * 5 + [Kind.PRIORITY] * 5
    visits = []
    for index in range(VISITS):
        arrived = START + timedelta(seconds=rng.uniform(0, OPEN_S))
        called = arrived + timedelta(seconds=rng.expovariate(1 / 600))
        visits.append(
            LedgerVisit(
                f"{index:032d}", rng.choice(services), rng.choice(kinds), arrived, called, None,
                rng.choice(list(serves)), 1200.0,
            )
        )  # fmt: skip
    return visits, serves


def main() -> None:
    visits, serves = _day(random.Random(1))
    costs = []
    for _ in range(REPEATS):
        started = time.process_time()
        hours = ledger(visits, serves, "Asia/Tbilisi")
        costs.append(time.process_time() - started)
    ahead = sum(sum(hour.ahead.values()) for hour in hours)
    print(
        f"fairness ledger, {VISITS:,} visits, {COUNTERS} counters: median "
        f"{sorted(costs)[REPEATS // 2] * 1000:.0f} ms of CPU ({ahead:,} calls ahead counted)"
    )
    started = time.perf_counter()
    measure = measure_bookings(load_scenario("tbilisi-hall"), 1, 1)
    print(
        f"bookings simulation, one pair of Tbilisi days ({measure.visits:,} visitors): "
        f"{time.perf_counter() - started:.2f} s"
    )


if __name__ == "__main__":
    main()
