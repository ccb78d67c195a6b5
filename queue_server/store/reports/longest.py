"""The ten longest waits of a report's slice, found without reading its every visit: the days
(or months, weeks) whose longest wait can hold one of the ten come first, from the rollups or
the report's own days, then those days' visits that waited that long."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Date, Select, and_, literal_column, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from queue_server.domain import kpis
from queue_server.store.reports.periods import Slice, filtered, last_day, periods
from queue_server.store.reports.report import Report
from queue_server.store.schema_reports import class_days, service_days, visit_days, visit_facts

LONG_PERIOD_DAYS = 60  # from here on the longest waits are found through the wait index


async def read_longest(conn: AsyncConnection, where: Slice, report: Report, days: Any) -> None:
    """The ten longest waits of the slice. The days that can hold them are found first, from
    the rollups or (a slice by counter or operator) from the report's own days (below); the
    facts of those few days give them. Fewer than ten days, or a day whose maximum did not
    find its visit: the facts are read as a whole. `days`: the slice's daily rollups per
    branch (`queries._branch_table`)."""
    if where.needs_facts:
        found = await _on_fact_days(conn, where, report)
    else:
        found = await _on_top_days(conn, where, report, days)
    if found is not None and len(found) < min(kpis.LONGEST_WAITS, report.total.waited):
        found = None
    if found is None:
        # A short period: the date index finds its few visits, then they are sorted (`+ 0`
        # keeps the planner off the wait index, which would walk every visit ever). A long
        # one: walking the wait index from the longest finds ten in the period soonest.
        short = (where.last - where.first).days < LONG_PERIOD_DAYS
        wait = visit_facts.c.wait_s + 0 if short else visit_facts.c.wait_s
        # SQLite keeps no statistics: without `+` it takes the date index for a year as well.
        dates = None if short or conn.dialect.name != "sqlite" else SQLITE_UNINDEXED_DATE
        found = list(await conn.execute(longest_query(where, wait, dates)))
    report.longest = [
        {
            "branch_id": row.branch_id,
            "label": row.label,
            "service_id": row.service_id,
            "issued_at": row.issued_at.isoformat(),
            "wait_s": round(row.wait_s, 1),
            "target_wait_s": row.target_wait_s,
            "counter_id": row.counter_id,
            "outcome": row.outcome,
        }
        for row in found
    ]


WAIT_MS_SLACK_S = 0.001  # a rollup's maximum is the fact's wait in whole milliseconds


async def _on_fact_days(conn: AsyncConnection, where: Slice, report: Report) -> list[Any] | None:
    """A slice read from the facts: its days' sums hold each day's longest wait, so (as on the
    top days, below) the ten longest lie on the days whose maximum is at least the tenth largest
    day's, among their visits that waited that long: read through the slice's (branch, counter
    or operator, date) index. Walking the branch's wait index from the longest instead read a
    counter's year through the visits of every other counter (~1.5 s on SQLite). None when
    fewer than ten days waited (the period's visits are then few)."""
    maxima = sorted((s.wait_max_ms for s in report.by_day.values() if s.waited), reverse=True)
    if len(maxima) < kpis.LONGEST_WAITS:
        return None
    floor_ms = maxima[kpis.LONGEST_WAITS - 1]
    days = sorted(d for d, s in report.by_day.items() if s.waited and s.wait_max_ms >= floor_ms)
    facts = visit_facts.c
    # `+ 0`: SQLite keeps no statistics; it might walk the branch's wait index instead.
    query = longest_query(where, facts.wait_s + 0).where(
        facts.local_date.in_(days), facts.wait_s >= floor_ms / 1000 - WAIT_MS_SLACK_S
    )
    return list(await conn.execute(query))


async def _on_top_days(
    conn: AsyncConnection, where: Slice, report: Report, days: Any
) -> list[Any] | None:
    """The ten longest waits hold waits of at least T, the tenth largest of the rollup rows'
    maxima (daily rows, and monthly ones for whole months: each of the ten rows with a maximum
    ≥ T holds a visit that waited that long), and every one of them lies in a row whose maximum
    is ≥ T. So: those rows' days or months, then their visits that waited ≥ T: a few days'
    facts instead of a year's."""
    table = days  # each branch's rows when whole; per group when not
    # The rows per service or per class hold a month of every class or service at once: their
    # maxima bound the ten far more loosely (a hall's year of one service read ~4× longer).
    table = visit_days if table in (service_days, class_days) else table
    # Each part's rows with the largest maxima, all parts by one statement: the ten rows of
    # the largest maxima are among them, and so is every row tied with the tenth unless a part
    # filled its limit at or above it (then many rows tie: the wait index is quicker).
    parts = list(periods(table, where))
    found = await _top_rows(conn, parts)
    if len(found) < kpis.LONGEST_WAITS and any(part is not table for part, _ in parts):
        # Too few month or week rows to bound the tenth (a hall's month is one row, and its
        # ten longest were then looked for among its 37,000 visits: 11,500 pages, 0.3 s cold).
        parts = [(table, where)]
        found = await _top_rows(conn, parts)
    if not found:
        return []
    floor_ms = sorted((row.wait_max_ms for row in found), reverse=True)[: kpis.LONGEST_WAITS][-1]
    filled: dict[int, list[int]] = defaultdict(list)
    for row in found:
        filled[row.part].append(row.wait_max_ms)
    if any(len(maxima) > MAX_TOP_DAYS and min(maxima) >= floor_ms for maxima in filled.values()):
        return None
    spans = {
        (row.branch_id, row.local_date, last_day(parts[row.part][0], row.local_date))
        for row in found
        if row.wait_max_ms >= floor_ms
    }
    if len(spans) > MAX_TOP_DAYS:  # many days tie at the top: walking the wait index is quicker
        return None
    facts = visit_facts.c
    # SQLite keeps no statistics: with the dates indexable it read every visit of the spans (a
    # year's, when the top waits lie in every month: 7 s for a hall's year); through the
    # (branch, wait) index it reads only the visits that waited at least the floor.
    sqlite = conn.dialect.name == "sqlite"
    dates = SQLITE_UNINDEXED_DATE if sqlite else facts.local_date
    on_days = or_(
        *(
            and_(facts.branch_id == branch, dates >= first, dates <= last)
            for branch, first, last in sorted(spans)
        )
    )
    # An agency's: through the (branch, service, wait) index, its services (those its report
    # counted) each from the floor up, sorted after (`+ 0`): the branch's wait index read every
    # agency's long waits (227,000 visits of a hall's year for the psda's ten longest: 0.9 s).
    by_agency = where.agencies is not None and where.services is None
    wait = facts.wait_s + 0 if by_agency else facts.wait_s
    query = longest_query(where, wait, dates if sqlite else None).where(
        on_days, facts.wait_s >= floor_ms / 1000 - WAIT_MS_SLACK_S
    )
    if by_agency:
        query = query.where(facts.service_id.in_(sorted(report.by_service)))
    return list(await conn.execute(query))


async def _top_rows(conn: AsyncConnection, parts: list[tuple[Any, Slice]]) -> list[Any]:
    """Each part's rows with the largest maxima (their part's place in `parts`, branch, date,
    maximum), all parts by one statement."""
    tops = [
        select(
            literal_column(str(at)).label("part"),
            top.c.branch_id,
            top.c.local_date,
            top.c.wait_max_ms,
        ).select_from(top)
        for at, top in enumerate(
            filtered(
                select(part_table.c.branch_id, part_table.c.local_date, part_table.c.wait_max_ms),
                part_table,
                part,
            )
            .where(part_table.c.waited > 0)
            .order_by(part_table.c.wait_max_ms.desc())
            .limit(MAX_TOP_DAYS + 1)
            .subquery()
            for part_table, part in parts
        )
    ]
    query = tops[0] if len(tops) == 1 else union_all(*tops)
    return list(await conn.execute(query))


MAX_TOP_DAYS = 2 * kpis.LONGEST_WAITS


SQLITE_UNINDEXED_DATE = literal_column("+visit_facts.local_date", Date)


def longest_query(where: Slice, wait: Any, dates: Any = None) -> Select[Any]:
    """The slice's ten longest waits. With SQLite's unindexed dates (a long period), its
    counters and operators are unindexed too: SQLite took their (branch, counter, date) index
    and sorted a counter's every visit of the year (1.8 s) instead of walking the wait index
    from the longest."""
    unindexed = dates is SQLITE_UNINDEXED_DATE
    return (
        filtered(select(visit_facts), visit_facts, where, dates, unindexed=unindexed)
        .where(wait.is_not(None))
        .order_by(wait.desc(), visit_facts.c.ticket_id)
        .limit(kpis.LONGEST_WAITS)
    )
