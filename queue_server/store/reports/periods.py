"""A report's period in parts: its whole months from the daily tables' twins by month, whole
weeks from their twins by week, the days left from the daily tables themselves; so a year is 12
rows per key and a mid-month period a few weeks and days, not every day (`queries` reads each
part and adds them up)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, String, literal_column

from queue_server.store.reports.rollups import month_of
from queue_server.store.schema_reports import (
    agency_days,
    agency_months,
    agency_weeks,
    branch_days,
    branch_hour_months,
    branch_hours,
    branch_months,
    branch_weeks,
    class_days,
    class_months,
    class_weeks,
    counter_days,
    counter_months,
    counter_weeks,
    country_hour_months,
    country_hours,
    network_days,
    network_hour_months,
    network_hours,
    network_months,
    network_weeks,
    service_days,
    service_months,
    service_weeks,
    visit_days,
    visit_months,
)


@dataclass(frozen=True)
class Slice:
    """Which visits a report covers: a period of branch-local dates (inclusive) and, for each
    dimension, the values kept (None: all)."""

    first: date
    last: date
    branches: tuple[str, ...] | None = None
    agencies: tuple[str, ...] | None = None
    services: tuple[str, ...] | None = None
    priorities: tuple[str, ...] | None = None
    channels: tuple[str, ...] | None = None
    counters: tuple[str, ...] | None = None
    operators: tuple[str, ...] | None = None

    @property
    def needs_facts(self) -> bool:
        return self.counters is not None or self.operators is not None


MONTHS = {
    visit_days: visit_months,
    branch_days: branch_months,
    agency_days: agency_months,
    network_days: network_months,
    counter_days: counter_months,
    network_hours: network_hour_months,
    country_hours: country_hour_months,
    branch_hours: branch_hour_months,
    service_days: service_months,
    class_days: class_months,
}


# The daily tables' twins by ISO week (migrations 0021, 0022), `local_date` the week's Monday.
WEEKS = {
    counter_days: counter_weeks,
    network_days: network_weeks,
    branch_days: branch_weeks,
    agency_days: agency_weeks,
    service_days: service_weeks,
    class_days: class_weeks,
}
WEEK = timedelta(days=7)


def periods(table: Any, where: Slice) -> Iterator[tuple[Any, Slice]]:
    """Where a slice's period is: its whole months in `table`'s twin by month (`MONTHS`), the
    days before and after them in `table` (a year is 12 rows per key, not 365), those of
    their whole weeks in its twin by week (`WEEKS`): mid-month 30 days are four weeks and a
    few days, not thirty days."""
    after = where.last + timedelta(days=1)
    start = where.first if where.first.day == 1 else next_month(where.first)
    end = after if after.day == 1 else month_of(where.last)  # whole months are [start, end)
    if table not in MONTHS or start >= end:
        yield from by_week(table, where)
        return
    if where.first < start:
        yield from by_week(table, replace(where, last=start - timedelta(days=1)))
    yield MONTHS[table], replace(where, first=start, last=month_of(end - timedelta(days=1)))
    if end <= where.last:
        yield from by_week(table, replace(where, first=end))


def by_week(table: Any, where: Slice) -> Iterator[tuple[Any, Slice]]:
    """Days of a period in `table`, those of its whole weeks (Monday to Sunday) in its twin by
    week when it has one."""
    after = where.last + timedelta(days=1)
    start = where.first + timedelta(days=-where.first.weekday() % 7)  # a Monday
    end = after - timedelta(days=after.weekday())  # whole weeks are [start, end)
    if table not in WEEKS or start >= end:
        yield table, where
        return
    if where.first < start:
        yield table, replace(where, last=start - timedelta(days=1))
    yield WEEKS[table], replace(where, first=start, last=end - WEEK)
    if end <= where.last:
        yield table, replace(where, first=end)


def next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def last_day(table: Any, day: date) -> date:
    """The last day a row of `table` dated `day` holds: its month's, its week's or its own."""
    if table in MONTHS.values():
        return next_month(day) - timedelta(days=1)
    return day + WEEK - timedelta(days=1) if table in WEEKS.values() else day


# SQLite keeps no statistics: a column it cannot use an index for (`+`), where one misleads it.
SQLITE_UNINDEXED = {
    name: literal_column(f"+visit_facts.{name}", String) for name in ("counter_id", "operator")
}


def filtered(
    query: Select[Any], table: Any, where: Slice, dates: Any = None, *, unindexed: bool = False
) -> Select[Any]:
    """`query` kept to the slice's period (`dates`: a column standing for `table`'s date) and
    values; with `unindexed`, SQLite is kept off the counter's and operator's indexes."""
    dates = table.c.local_date if dates is None else dates
    query = query.where(dates >= where.first, dates <= where.last)
    for column, values in (
        ("branch_id", where.branches),
        ("agency_id", where.agencies),
        ("service_id", where.services),
        ("priority", where.priorities),
        ("channel", where.channels),
        ("counter_id", where.counters),
        ("operator", where.operators),
    ):
        if values is not None and column in table.c:
            kept = table.c[column]
            if unindexed and column in SQLITE_UNINDEXED:
                kept = SQLITE_UNINDEXED[column]
            query = query.where(kept.in_(values))
    return query
