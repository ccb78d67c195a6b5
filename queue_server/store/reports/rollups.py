"""The rollup rows the projector keeps beside the facts: hourly and daily per branch, daily per
branch over all its groups (`branch_days`), and daily across the network (`network_days`), each
moved by the deltas of a batch's changed visits; every daily table also by month (its
`months_of` twin), moved by the same deltas added up per month.

A branch's rows are written only by the projector holding that branch's cursor lock, so they
are read, added to and written back. The network's rows are shared by every branch's projector
(in every process): they are moved under one more lock, the network's cursor row, always taken
after the branch's, so two projectors never wait on each other in opposite orders.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, literal_column, select, union_all

from queue_server.domain import kpis
from queue_server.store.schema_reports import (
    agency_days,
    agency_months,
    agency_weeks,
    branch_days,
    branch_hour_months,
    branch_hours,
    branch_months,
    branch_weeks,
    counter_days,
    counter_months,
    counter_time,
    counter_weeks,
    country_hour_months,
    country_hours,
    network_days,
    network_hour_months,
    network_hours,
    network_months,
    network_weeks,
    report_cursors,
    visit_days,
    visit_months,
    visit_rollups,
)
from queue_server.store.statements import upsert_insert

# The network's rows are moved under this row of `report_cursors` (no branch has this id).
NETWORK_LOCK = "*network"
_HIST_FIELDS = frozenset({"wait_hist", "service_hist"})
K = TypeVar("K", bound=tuple[Any, ...])

Key = tuple[str, str, str, Any]  # service, priority class, channel, hour or day
Deltas = dict[Key, kpis.Sums]
BranchKey = tuple[str, str, str, str, Any]  # the branch, then as `Key`
BranchDeltas = dict[BranchKey, kpis.Sums]
HourKey = tuple[str, str, str, int, int, Any]  # service, class, channel, weekday, hour, day
HOUR_KEY = ("service_id", "priority", "channel", "weekday", "local_hour", "local_date")
COUNTRY_HOUR_KEY = HOUR_KEY[3:]  # over every group: weekday, hour, date


def move_branch_rows(
    conn: Connection,
    table: Any,
    when: str,
    deltas: BranchDeltas,
    agencies: dict[str, str],
    fields_of: Callable[[str, Any], dict[str, Any]],
) -> None:
    """Add `deltas` to the branches' rows of `table` (keyed by branch, service, priority,
    channel and `when`): one read and one write for every branch of a batch."""
    current: BranchDeltas = {}
    branches = sorted({key[0] for key in deltas})
    for chunk in chunks(sorted({key[4] for key in deltas})):
        for row in conn.execute(
            select(table).where(table.c.branch_id.in_(branches), table.c[when].in_(chunk))
        ):
            key = (row.branch_id, row.service_id, row.priority, row.channel, getattr(row, when))
            if key in deltas:
                current[key] = sums_of_row(row)
    rows = [
        row | fields_of(key[0], key[4]) | {"branch_id": key[0]}
        for key, row in _added(deltas, current, agencies)
    ]
    upsert_rows(conn, table, rows)
    if table is visit_days:
        monthly = by_month(deltas)
        move_branch_rows(conn, visit_months, "local_date", monthly, agencies, on_date)
        _move_branch_days(conn, deltas, None)
        _move_branch_days(conn, deltas, agencies)


def on_date(_: str, day: date) -> dict[str, Any]:
    return {"local_date": day}


def _same_day(day: date) -> date:
    return day


def month_of(day: date) -> date:
    """The date a day's row has in a `months_of` table: its month's first day."""
    return day.replace(day=1)


def week_of(day: date) -> date:
    """The date a day's row has in a table by ISO week: its week's Monday."""
    return day - timedelta(days=day.weekday())


def by_month(deltas: dict[K, kpis.Sums]) -> dict[K, kpis.Sums]:
    """Daily deltas (the date last in each key) added up per month."""
    return by_period(deltas, month_of)


def by_period(deltas: dict[K, kpis.Sums], when: Callable[[date], date]) -> dict[K, kpis.Sums]:
    """Daily deltas (the date last in each key) added up per month or week (`when`). A key's
    only day is its period's delta itself, not a copy (a live batch is mostly one day): the
    deltas are not changed afterwards."""
    summed: dict[K, kpis.Sums] = {}
    copied: set[K] = set()
    for key, delta in deltas.items():
        at: Any = (*key[:-1], when(key[-1]))
        found = summed.get(at)
        if found is None:
            summed[at] = delta
            continue
        if at not in copied:
            copied.add(at)
            found = summed[at] = kpis.merged((found,))
        found.add(delta)
    return summed


def move_in_periods(
    conn: Connection,
    family: tuple[Any, Any, Any],
    daily: dict[K, kpis.Sums],
    key_of: Callable[[Any], K],
    fields_of: Callable[[K], dict[str, Any]],
    kept: Callable[[Any, list[Any]], Any],
) -> None:
    """Add daily deltas (the date last in each key) to a daily table and to its twins by week
    and by month (`family`): the current rows of all three read by one statement (`kept`: the
    condition on a table's rows for some dates), each table written by one. So a batch makes
    as many statements for the three as it made for the days and months alone."""
    parts = (daily, by_period(daily, week_of), by_period(daily, month_of))
    reads = [
        select(literal_column(str(place)).label("part"), *table.c).where(kept(table, chunk))
        for place, (table, deltas) in enumerate(zip(family, parts, strict=True))
        for chunk in chunks(sorted({key[-1] for key in deltas}))
    ]
    if not reads:
        return
    current: list[dict[K, kpis.Sums]] = [{} for _ in parts]
    for row in conn.execute(reads[0] if len(reads) == 1 else union_all(*reads)):
        key = key_of(row)
        if key in parts[row.part]:
            current[row.part][key] = sums_of_row(row)
    for table, deltas, found in zip(family, parts, current, strict=True):
        rows = []
        for key, delta in sorted(deltas.items()):
            sums = found.get(key)
            if sums is not None:
                sums.add(delta)
            rows.append(rollup_row(delta if sums is None else sums) | fields_of(key))
        upsert_rows(conn, table, rows)


def _move_branch_days(
    conn: Connection, deltas: BranchDeltas, agencies: dict[str, str] | None
) -> None:
    """Add the branches' daily `deltas`, all groups of a branch's day (with `agencies`: of
    each of its agencies' days) together, to `branch_days` (`agency_days`) and its twins by
    week and month: one read and three writes for every branch of a batch."""
    by_day: dict[tuple[str, str, date], kpis.Sums] = {}
    for key, delta in deltas.items():
        agency = agencies[key[1]] if agencies is not None else ""
        by_day.setdefault((key[0], agency, key[4]), kpis.Sums()).add(delta)
    branches = sorted({key[0] for key in by_day})
    family = (
        (branch_days, branch_weeks, branch_months)
        if agencies is None
        else (agency_days, agency_weeks, agency_months)
    )

    def fields(key: tuple[str, str, date]) -> dict[str, Any]:
        made = {"branch_id": key[0], "local_date": key[2]}
        return made if agencies is None else made | {"agency_id": key[1]}

    move_in_periods(
        conn,
        family,
        by_day,
        lambda row: (row.branch_id, getattr(row, "agency_id", ""), row.local_date),
        fields,
        lambda table, dates: table.c.branch_id.in_(branches) & table.c.local_date.in_(dates),
    )


def move_network_days(
    conn: Connection, deltas: Deltas, agencies: dict[str, str], arrivals: dict[HourKey, int]
) -> None:
    """Add a batch's daily `deltas` to the network's daily and monthly rows, and its
    `arrivals` (visits per branch-local hour) to the network's hours, under the network's
    lock."""
    if not deltas and not arrivals:
        return
    lock_cursor(conn, NETWORK_LOCK)
    services = sorted({key[0] for key in deltas})

    def fields(key: Key) -> dict[str, Any]:
        service, priority, channel, day = key
        agency = agencies[service]
        return {"service_id": service, "agency_id": agency, "priority": priority,
                "channel": channel, "local_date": day}  # fmt: skip

    move_in_periods(
        conn,
        (network_days, network_weeks, network_months),
        deltas,
        lambda row: (row.service_id, row.priority, row.channel, row.local_date),
        fields,
        lambda table, dates: table.c.local_date.in_(dates) & table.c.service_id.in_(services),
    )
    # The network's hours per group, and the country's over all groups (migration 0025).
    for table, names, when in (
        (network_hours, HOUR_KEY, _same_day),
        (network_hour_months, HOUR_KEY, month_of),
        (country_hours, COUNTRY_HOUR_KEY, _same_day),
        (country_hour_months, COUNTRY_HOUR_KEY, month_of),
    ):
        summed: dict[Any, int] = {}
        for key, visits in arrivals.items():
            at: Any = (*key[len(HOUR_KEY) - len(names) : -1], when(key[-1]))
            summed[at] = summed.get(at, 0) + visits
        grouped = "agency_id" in table.c
        rows = [
            dict(zip(names, key, strict=True))
            | ({"agency_id": agencies[key[0]]} if grouped else {})
            | {"visits": n}
            for key, n in sorted(summed.items())
            if n
        ]
        add_up(conn, table, rows, ("visits",))


BRANCH_HOUR_KEY = ("branch_id", "weekday", "local_hour", "local_date")


def move_branch_hours(
    conn: Connection, hourly: BranchDeltas, fields_of: Callable[[str, Any], dict[str, Any]]
) -> None:
    """Add the visits of hourly deltas to the branches' local hours and their months."""
    arrivals: dict[tuple[str, int, int, Any], int] = {}
    for (branch, *_, hour), sums in hourly.items():
        local = fields_of(branch, hour)
        key = (branch, local["weekday"], local["local_hour"], local["local_date"])
        arrivals[key] = arrivals.get(key, 0) + sums.visits
    for table, when in ((branch_hours, lambda day: day), (branch_hour_months, month_of)):
        summed: dict[tuple[str, int, int, Any], int] = {}
        for key, visits in arrivals.items():
            at: Any = (*key[:-1], when(key[-1]))
            summed[at] = summed.get(at, 0) + visits
        rows = [
            dict(zip(BRANCH_HOUR_KEY, key, strict=True)) | {"visits": n}
            for key, n in sorted(summed.items())
            if n
        ]
        add_up(conn, table, rows, ("visits",))


def network_arrivals(
    hourly: BranchDeltas, fields_of: Callable[[str, Any], dict[str, Any]]
) -> dict[HourKey, int]:
    """The visits of hourly deltas per service, class, channel and branch-local hour."""
    arrivals: dict[HourKey, int] = {}
    for (branch, service, priority, channel, hour), sums in hourly.items():
        local = fields_of(branch, hour)
        key = (
            service,
            priority,
            channel,
            local["weekday"],
            local["local_hour"],
            local["local_date"],
        )
        arrivals[key] = arrivals.get(key, 0) + sums.visits
    return arrivals


def take_branch_out_of_network(conn: Connection, branch_id: str) -> None:
    """Before a branch's rows are made again: count its daily rows out of the network's (a
    maximum stays as it was: it is never lowered, and the rebuild brings the same back), and
    forget its own days (and weeks and months) over all groups (`branch_days`) and per agency,
    which the rebuild makes again."""
    deltas: Deltas = {}
    agencies: dict[str, str] = {}
    for row in conn.execute(select(visit_days).where(visit_days.c.branch_id == branch_id)):
        key = (row.service_id, row.priority, row.channel, row.local_date)
        deltas[key] = _negated(sums_of_row(row))
        agencies[row.service_id] = row.agency_id
    arrivals: dict[HourKey, int] = {}
    hours = visit_rollups.c
    for row in conn.execute(
        select(*(hours[name] for name in HOUR_KEY), hours.agency_id, hours.visits).where(
            hours.branch_id == branch_id
        )
    ):
        at: HourKey = tuple(row[: len(HOUR_KEY)])  # type: ignore[assignment]
        arrivals[at] = arrivals.get(at, 0) - row.visits
        agencies[row.service_id] = row.agency_id
    move_network_days(conn, deltas, agencies, arrivals)
    for table in (
        *(branch_days, branch_weeks, branch_months),
        *(agency_days, agency_weeks, agency_months),
    ):
        conn.execute(delete(table).where(table.c.branch_id == branch_id))


def _added(
    deltas: dict[K, kpis.Sums], current: dict[K, kpis.Sums], agencies: dict[str, str]
) -> Iterable[tuple[K, dict[str, Any]]]:
    """Each key's row as it is after its delta (without the key's branch and time columns)."""
    for key, delta in sorted(deltas.items()):
        sums = current.get(key) or kpis.Sums()
        sums.add(delta)
        service, priority, channel, _ = key[-4:]
        yield (
            key,
            rollup_row(sums)
            | {
                "service_id": service,
                "agency_id": agencies[service],
                "priority": priority,
                "channel": channel,
            },
        )


def _negated(sums: kpis.Sums) -> kpis.Sums:
    negated = kpis.Sums()
    for name in kpis.Sums.__dataclass_fields__:
        value = getattr(sums, name)
        if name in _HIST_FIELDS:
            setattr(negated, name, {bucket: -count for bucket, count in value.items()})
        elif not name.endswith("_max_ms"):
            setattr(negated, name, -value)
    return negated


def lock_cursor(conn: Connection, branch_id: str) -> tuple[str, int] | None:
    """Make sure the cursor row exists and lock it (FOR UPDATE on PostgreSQL; on SQLite the
    insert takes the database's one write lock). None: nothing applied yet."""
    insert = upsert_insert(conn.dialect.name)(report_cursors).values(
        branch_id=branch_id, epoch="", seq=0, updated_at=datetime.now(UTC)
    )
    conn.execute(insert.on_conflict_do_nothing(index_elements=[report_cursors.c.branch_id]))
    row = conn.execute(
        select(report_cursors.c.epoch, report_cursors.c.seq)
        .where(report_cursors.c.branch_id == branch_id)
        .with_for_update()
    ).one()
    return (row.epoch, row.seq) if row.epoch else None


def rollup_row(sums: kpis.Sums) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in kpis.Sums.__dataclass_fields__:
        value = getattr(sums, name)
        row[name] = json.dumps(value, sort_keys=True) if name in _HIST_FIELDS else value
    return row


def sums_of_row(row: Any) -> kpis.Sums:
    """A rollup row as sums, ready to add to others."""
    values = {}
    for name in kpis.Sums.__dataclass_fields__:
        value = getattr(row, name)
        if name in _HIST_FIELDS:
            value = {int(bucket): count for bucket, count in json.loads(value).items()}
        values[name] = value
    return kpis.Sums(**values)


SPENT = ("serving_ms", "idle_ms", "paused_ms", "closed_ms")  # counter time, per state


def add_counter_time(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Add the milliseconds of `rows` to the counters' hourly time, and to their daily, monthly
    and weekly time."""
    if not rows:
        return
    add_up(conn, counter_time, rows, SPENT)
    for table, when in (
        (counter_days, lambda day: day),
        (counter_months, month_of),
        (counter_weeks, week_of),  # migration 0021
    ):
        summed: dict[tuple[str, str, str, date], list[int]] = {}
        for row in rows:
            key = (row["branch_id"], row["counter_id"], row["operator"], when(row["local_date"]))
            spent = summed.setdefault(key, [0] * len(SPENT))
            for index, name in enumerate(SPENT):
                spent[index] += row[name]
        keys = ("branch_id", "counter_id", "operator", "local_date")
        add_up(
            conn,
            table,
            [
                dict(zip(keys, key, strict=True)) | dict(zip(SPENT, spent, strict=True))
                for key, spent in sorted(summed.items())
            ],
            SPENT,
        )


def add_up(conn: Connection, table: Any, rows: list[dict[str, Any]], names: Iterable[str]) -> None:
    """Add the `names` of `rows` to those of the rows with the same key (new keys inserted)."""
    if rows:
        conn.execute(_adding(conn.dialect.name, table, tuple(names)), rows)


# The projector's upserts are built once per table (and dialect), not per batch: building one
# (its `excluded` columns, its cache key) was about a tenth of the projector's samples in
# `benchmarks/projector_cost_bench.py`. Executed with a list of rows, each is one SQL text
# whatever the number of rows (asyncpg prepares it once per connection).


@functools.cache
def _adding(dialect: str, table: Any, names: tuple[str, ...]) -> Any:
    insert = upsert_insert(dialect)(table)
    sums = {name: table.c[name] + insert.excluded[name] for name in names}
    return insert.on_conflict_do_update(index_elements=list(table.primary_key), set_=sums)


@functools.cache
def _replacing(dialect: str, table: Any) -> Any:
    insert = upsert_insert(dialect)(table)
    keys = [c.name for c in table.primary_key]
    return insert.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: insert.excluded[c.name] for c in table.columns if c.name not in keys},
    )


def upsert_rows(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert `rows`, replacing every other column of the rows with the same key."""
    if rows:
        conn.execute(_replacing(conn.dialect.name, table), rows)


def chunks(items: list[Any], size: int = 500) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
