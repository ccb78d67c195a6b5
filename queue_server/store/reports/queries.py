"""Reading reports: rollups when the slice allows it (period, branch, agency, service, priority
class, channel), visit facts when it names a counter or an operator (rollups do not keep them),
counter time for utilisation. Both paths add up the same `kpis.Sums`, so they agree."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Select, cast, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from queue_server.domain import kpis
from queue_server.domain.numbering import DEFAULT_TIMEZONE
from queue_server.store.reports import fact_sums
from queue_server.store.reports.histograms import add_histograms
from queue_server.store.reports.longest import read_longest
from queue_server.store.reports.periods import Slice, filtered, periods
from queue_server.store.reports.report import Report
from queue_server.store.schema_reports import (
    agency_days,
    branch_days,
    branch_hours,
    class_days,
    counter_days,
    country_hours,
    network_days,
    network_hours,
    service_days,
    visit_days,
    visit_facts,
    visit_rollups,
)


async def read_report(
    conn: AsyncConnection, where: Slice, timezones: dict[str, str], *, detail: bool = True
) -> Report:
    """The report of a slice. `timezones`: branch → its zone (for the facts' hour of day).
    Without `detail`, only the totals (for the previous period)."""
    report = Report()
    if where.needs_facts:
        await _from_facts(conn, where, timezones, report, detail)
    else:
        await _from_rollups(conn, where, report, detail)
    if detail:
        await _counter_time(conn, where, report)
        await read_longest(conn, where, report, _branch_table(where))
    return report


async def _from_rollups(conn: AsyncConnection, where: Slice, report: Report, detail: bool) -> None:
    """Sums by SQL from the daily rollups (whole months and weeks from their twins), grouped the
    ways the report shows them; histograms merged from their distinct texts (many rows hold
    the same few buckets), each parsed once; the hourly rollups only for the arrivals heatmap.
    A slice of every branch reads the network's rows for its services (the branches' rows only
    per branch), and each branch's rows over all its groups when it keeps them all. Without
    `detail`, the totals alone, from the fewest rows that hold them (the branches' own when
    the slice keeps every group: a region's previous month is hundreds of rows, not
    thousands), as one group: no branch's histogram is made to be added up again."""
    services = _service_table(where)
    branches = _branch_table(where)
    groups = (where.agencies, where.services, where.priorities, where.channels)
    keeps_all = all(values is None for values in groups)  # every service, class and channel
    if not detail:  # over every branch for some groups: the network's rows of those are fewer
        fewest = branches is visit_days or (where.branches is None and not keeps_all)
        whole = services if fewest else branches
        await _sums_and_histograms(conn, where, whole, None, {None: report.total})
        return
    # The services' groups give the total too (their histograms added up by numpy at once).
    await _sums_and_histograms(conn, where, services, "service_id", report.by_service, report.total)
    await _sums_and_histograms(conn, where, branches, "branch_id", report.by_branch)
    if where.first == where.last:  # one day: its totals
        report.by_day[where.first].add(_without_histograms([report.total]))
    else:  # a report's days carry sums, not histograms
        grouped = branches in (visit_days, service_days, class_days)
        days = network_days if where.branches is None and grouped else branches
        column = days.c.local_date
        query = filtered(select(column, *_sums(days)), days, where).group_by(column)
        for row in await conn.execute(query):
            report.by_day[row[0]].add(_sums_of_totals(row))
    # Every branch: the network's hours (whole months by month), over every group the
    # country's (migration 0025), else the branches' hours.
    if where.branches is None:
        hours = country_hours if keeps_all else network_hours
    else:  # the branches' own hours when the slice keeps every group
        hours = branch_hours if branches is branch_days else visit_rollups
    week = ("weekday", "local_hour")
    parts = _parts_of(hours, where, (*week, "visits"))
    keys = [parts.c[name] for name in week]
    for row in await conn.execute(select(*keys, func.sum(parts.c.visits)).group_by(*keys)):
        report.arrivals[row[0], row[1]] += int(row[2])


def _parts_of(table: Any, where: Slice, names: tuple[str, ...]) -> Any:
    """The rows of every part of the period (`periods`: its months, weeks and days) as one
    subquery (`UNION ALL`), for the database to add up per group: a group is one row read,
    however ragged the period (the country's 4,300 counters over mid-month 30 days were
    13,000 rows of three parts, each made into Python objects and added up there)."""
    queries = [
        filtered(select(*(part_table.c[name] for name in names)), part_table, part)
        for part_table, part in periods(table, where)
    ]
    return (queries[0] if len(queries) == 1 else union_all(*queries)).subquery()


async def _read_parts(
    conn: AsyncConnection, table: Any, where: Slice, query_of: Callable[[Any, Slice], Select[Any]]
) -> Any:
    """The rows of `query_of` over each part of the period (`periods`: its months, weeks and
    days), all read by one statement (`UNION ALL`): one round trip, however ragged the period."""
    queries = [query_of(part_table, part) for part_table, part in periods(table, where)]
    return await conn.execute(queries[0] if len(queries) == 1 else union_all(*queries))


_HISTOGRAMS = ("wait_hist", "service_hist")
_TOTALS = [name for name in kpis.Sums.__dataclass_fields__ if name not in _HISTOGRAMS]
_MAXIMA = frozenset(name for name in _TOTALS if name.endswith("_max_ms"))


def _sums(table: Any) -> list[Any]:
    return [(func.max if name in _MAXIMA else _sum)(table.c[name]).label(name) for name in _TOTALS]


def _sums_of_totals(row: Any) -> kpis.Sums:
    sums = kpis.Sums()
    for name in _TOTALS:
        setattr(sums, name, int(getattr(row, name) or 0))
    return sums


def _branch_table(where: Slice) -> Any:
    """Where a slice's figures per branch are: each branch's days over all its groups when the
    slice keeps every service, priority class and channel (per agency when it keeps some
    agencies); per service when it keeps every class and channel; per class and channel when
    it keeps every service and agency; else its rows per service, class and channel."""
    by_class = where.priorities is not None or where.channels is not None
    if by_class:
        whole = where.services is None and where.agencies is None
        return class_days if whole else visit_days
    if where.services is not None:
        return service_days
    return branch_days if where.agencies is None else agency_days


def _service_table(where: Slice) -> Any:
    """Where a slice's figures per service are: the network's rows when it keeps every branch,
    the branches' rows per service when it keeps every class and channel, else their rows per
    service, class and channel."""
    if where.branches is None:
        return network_days
    by_class = where.priorities is not None or where.channels is not None
    return visit_days if by_class else service_days


async def _sums_and_histograms(
    conn: AsyncConnection,
    where: Slice,
    daily: Any,
    name: str | None,
    target: dict[Any, kpis.Sums],
    total: kpis.Sums | None = None,
) -> None:
    """The sums and histograms of each group (the column `name`; None: one group, keyed None)
    added into its sums, and into `total` when given: the sums by SQL over all the period's
    parts, then the distinct pairs of histogram texts per group, read once with how many rows
    hold them (many rows hold the same few buckets). Every group's texts are merged at once
    (`histograms.add_histograms`, numpy). (The sums grouped with the texts too were tried: a
    row per distinct pair with its sums, ~6× slower over a country's mid-month 30 days; the
    two texts alone read by two statements were ~20 % slower over the year's long periods.)"""
    if where.first == where.last:  # a day's few rows, read whole by one statement
        await _day_rows(conn, where, daily, name, target, total)
        return
    columns = () if name is None else (name,)
    parts = _parts_of(daily, where, (*columns, *_TOTALS))
    keys = [parts.c[column] for column in columns]
    for row in await conn.execute(select(*keys, *_sums(parts)).group_by(*keys)):
        sums = _sums_of_totals(row)
        target[row[0] if name else None].add(sums)
        if total is not None:
            total.add(sums)

    def texts(table: Any, part: Slice) -> Select[Any]:
        keys = (*(table.c[column] for column in columns), *(table.c[h] for h in _HISTOGRAMS))
        return filtered(select(*keys, func.count()), table, part).group_by(*keys)

    # Both histograms' texts by one statement: a row per distinct pair (over the network's or
    # the branches' rows nearly every row's texts are its own, so as many rows as either alone),
    # fetched at once and taken apart column by column (a region's 340 days: ~33,000 rows).
    rows = (await _read_parts(conn, daily, where, texts)).all()
    if not rows:
        return
    values: list[Any] = list(zip(*rows, strict=True))  # column by column
    place: dict[Any, int] = {}  # each group's place in `merged`
    group_keys = values[0] if name else [None] * len(rows)
    group_of = [place.setdefault(key, len(place)) for key in group_keys]
    _add_texts(target, list(place), group_of, values[-3:-1], values[-1], total)


async def _day_rows(
    conn: AsyncConnection,
    where: Slice,
    daily: Any,
    name: str | None,
    target: dict[Any, kpis.Sums],
    total: kpis.Sums | None,
) -> None:
    """One day's rows (the country's: a few hundred), each group's added up column by column
    (and every row into `total`): one statement where the sums and each histogram's texts took
    three (the country's day is read ~20× quicker than from the event table only when it is a
    handful of statements). A `Sums` made and added per row was half the country day's CPU."""
    keys = [] if name is None else [daily.c[name]]
    columns = [*keys, *(daily.c[n] for n in _TOTALS), daily.c.wait_hist, daily.c.service_hist]
    rows = (await conn.execute(filtered(select(*columns), daily, where))).all()
    groups: dict[Any, list[Any]] = {}
    for row in rows:
        groups.setdefault(row[0] if name else None, []).append(row)
    first = len(keys)
    for key, held in groups.items():
        target[key].add(_sums_of_rows(held, first))  # Sums.add knows a maximum from a sum
    if total is not None and rows:
        total.add(_sums_of_rows(rows, first))
    place = {key: at for at, key in enumerate(groups)}
    group_of = [place[row[0] if name else None] for row in rows]
    texts = [[row[at] for row in rows] for at in (-2, -1)]
    _add_texts(target, list(groups), group_of, texts, [1] * len(rows), total)


def _add_texts(
    target: dict[Any, kpis.Sums],
    keys: list[Any],
    group_of: list[int],
    texts: Sequence[Sequence[str]],
    rows_of: Sequence[int],
    total: kpis.Sums | None,
) -> None:
    """Both histograms' texts (`texts`: the wait's, the service's), each held by `rows_of`
    rows, added into the group at `keys[group_of[i]]` (and every one into `total`)."""
    for histogram, found in zip(_HISTOGRAMS, texts, strict=True):
        merged = [getattr(target[key], histogram) for key in keys]
        whole = None if total is None else getattr(total, histogram)
        add_histograms(merged, group_of, found, rows_of, whole)


def _sums_of_rows(rows: list[Any], first: int) -> kpis.Sums:
    """The totals of rows (from column `first` on, in `_TOTALS` order) added up column by
    column: sums, and the largest of each maximum."""
    columns = list(zip(*rows, strict=True))[first : first + len(_TOTALS)]
    return kpis.Sums(
        **{
            name: (max if name in _MAXIMA else sum)(column)
            for name, column in zip(_TOTALS, columns, strict=True)
        }
    )


def _without_histograms(parts: Any) -> kpis.Sums:
    total = kpis.merged(parts)
    total.wait_hist, total.service_hist = {}, {}
    return total


async def _from_facts(
    conn: AsyncConnection,
    where: Slice,
    timezones: dict[str, str],
    report: Report,
    detail: bool,
) -> None:
    """The sums added up by the database (`fact_sums`): per service and branch (with their
    histograms) and per day, in one statement; the report's total and its branches are added up
    from the services'. The arrivals come from the visits per hour, each hour placed in its
    branch's zone (as the hourly rollups place theirs)."""
    facts = visit_facts.c
    sqlite = conn.dialect.name == "sqlite"
    kept = filtered(select(visit_facts), visit_facts, where)
    rows = await conn.execute(fact_sums.sums_query(kept, detail, sqlite))
    groups = fact_sums.added_up(rows)
    report.total.add(groups[fact_sums.TOTAL].get(None) or kpis.Sums())
    if not detail:
        return
    report.by_service.update(groups[fact_sums.SERVICE])
    report.by_branch.update(groups[fact_sums.BRANCH])
    report.by_day.update(groups[fact_sums.DAY])  # a report's days carry sums, not histograms
    hours = filtered(select(facts.branch_id, facts.hour, func.count()), visit_facts, where)
    zones: dict[str, ZoneInfo] = {}
    for branch, hour, visits in await conn.execute(hours.group_by(facts.branch_id, facts.hour)):
        zone = zones.get(branch)
        if zone is None:
            zone = zones[branch] = ZoneInfo(timezones.get(branch) or DEFAULT_TIMEZONE)
        local = hour.astimezone(zone)
        report.arrivals[local.weekday(), local.hour] += visits


async def _counter_time(conn: AsyncConnection, where: Slice, report: Report) -> None:
    """Each counter's and operator's time: its days, whole weeks and months, added up by the
    database (one row per counter and operator: the country's ~4,300, so each is made once)."""
    keys = ("branch_id", "counter_id", "operator")
    parts = _parts_of(counter_days, where, (*keys, *_SPENT_MS))
    grouped = [parts.c[name] for name in keys]
    spent = [_sum(parts.c[name]) for name in _SPENT_MS]
    rows = (await conn.execute(select(*grouped, *spent).group_by(*grouped))).all()
    for branch, counter, operator, serving, idle, paused, closed in rows:
        time = kpis.CounterTime(serving / 1000, idle / 1000, paused / 1000, closed / 1000)
        report.counters[branch, counter, operator] = time  # grouped: each key once


def _sum(column: Any) -> Any:
    """A column's sum as a whole number: PostgreSQL sums a bigint column as a numeric, which
    asyncpg hands over as a Decimal (made from its text, thousands of them in a report)."""
    return cast(func.sum(column), BigInteger)


_SPENT_MS = ("serving_ms", "idle_ms", "paused_ms", "closed_ms")
