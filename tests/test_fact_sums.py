"""A counter's or an operator's report sums its visit facts in the database
(store/reports/fact_sums.py); the figures must be those Python counts one visit at a time
(`kpis.Sums.add_visit`) to the millisecond, even where the two round differently: a duration of
a whole and a half millisecond (SQLite's `round` takes halves away from zero, Python's to even),
the edges of a histogram's buckets and the bucket every longer duration falls in. On SQLite and
PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select

from queue_server.domain import kpis
from queue_server.store.database import Database
from queue_server.store.reports import fact_sums
from queue_server.store.reports.projector import visit_of
from queue_server.store.schema_reports import visit_facts

DAY = date(2026, 3, 2)
HOUR = datetime(2026, 3, 2, 9, tzinfo=UTC)
# (outcome, wait, service, recalls, estimate, promised upper end) of each visit.
VISITS: list[tuple[Any, ...]] = [
    ("served", 0.0025, 0.0035, 0, 0.0045, 0.0025),  # halves: 2.5 → 2, 3.5 → 4, 4.5 → 4 ms
    ("served", 29.999999, 30.0, 1, 12.0, 40.0),  # either side of a bucket's edge
    ("not_served", 60.0005, 1.0015, 0, None, None),
    ("no_show", 9000.0, None, 2, 8999.9995, 100.0),  # beyond the last bucket
    ("transferred", 0.0, None, 0, 0.0, None),
    ("cancelled", None, None, 0, 300.0, 600.0),  # never called
    (None, None, None, 0, None, None),  # still waiting
    ("referred", 12.5, 7.25, 1, 0.5, 12.5),
]


def _fact(number: int, visit: tuple[Any, ...]) -> dict[str, Any]:
    outcome, wait, service, recalls, estimate, promised = visit
    return {
        "ticket_id": f"t{number:02d}",
        "branch_id": "hall",
        "service_id": "id_card" if number % 2 else "passport",
        "agency_id": "psda",
        "priority": "standard",
        "channel": "kiosk",
        "label": f"A{number:03d}",
        "issued_at": HOUR,
        "hour": HOUR,
        "local_date": DAY,
        "counter_id": "c01",
        "operator": "operator:nino",
        "outcome": outcome,
        "wait_s": wait,
        "service_s": service,
        "recalls": recalls,
        "target_wait_s": 30.0,
        "wait_estimate_s": estimate,
        "wait_p90_s": promised,
    }


async def test_a_counters_sums_by_the_database_are_those_counted_one_visit_at_a_time(
    database_url: str,
) -> None:
    database = Database(database_url)
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(visit_facts.create)
            await conn.execute(
                visit_facts.insert(), [_fact(n, visit) for n, visit in enumerate(VISITS)]
            )
        sqlite = database.engine.dialect.name == "sqlite"
        kept = select(visit_facts).where(visit_facts.c.counter_id == "c01")
        async with database.read() as conn:
            facts = list(await conn.execute(kept))
            rows = await conn.execute(fact_sums.sums_query(kept, True, sqlite))
            groups = fact_sums.added_up(rows)
        expected: dict[str, kpis.Sums] = {}
        for fact in facts:
            expected.setdefault(fact.service_id, kpis.Sums()).add_visit(visit_of(fact))
        summed = groups[fact_sums.SERVICE]
        assert summed == expected
        total = kpis.merged(expected.values())
        assert groups[fact_sums.BRANCH] == {"hall": total}
        assert groups[fact_sums.TOTAL] == {None: total}
        assert groups[fact_sums.DAY] == {DAY: replace(total, wait_hist={}, service_hist={})}
        assert 0.0025 * 1000 == 2.5  # the data holds a tie (rounded to even: 2)
        assert expected["passport"].wait_sum_ms == 2 + round(60.0005 * 1000)
        assert expected["id_card"].wait_hist == {0: 2, kpis.BUCKETS: 1}
        assert expected["passport"].wait_hist == {0: 2, 2: 1}
    finally:
        await database.dispose()
