"""Each branch's daily and monthly sums per service over its priority classes and channels
(`service_days` and its twins by week and month) and per priority class and channel over its
services (`class_days` and its twins), moved by a batch's daily deltas in the facts'
transaction.

A region's report by service, and a report over every branch of one service or of one class by
branch, read these: a row per branch, group and month, not one per service × class × channel
× month too (the year of a region or of the class slice read ~8× fewer histogram texts). Like
`branch_days`, a branch's rows are written only by the projector holding its cursor lock: read,
added to and written back: one read of a family's three tables and a write of each per batch.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection

from queue_server.domain import kpis
from queue_server.store.reports.rollups import BranchDeltas, move_in_periods
from queue_server.store.schema_reports import (
    class_days,
    class_months,
    class_weeks,
    service_days,
    service_months,
    service_weeks,
)

# Where each group column is in a `BranchKey` (branch, service, priority class, channel, day).
_AT = {"service_id": 1, "priority": 2, "channel": 3}
GROUPS: tuple[tuple[tuple[Any, Any, Any], tuple[str, ...]], ...] = (
    ((service_days, service_weeks, service_months), ("service_id",)),
    ((class_days, class_weeks, class_months), ("priority", "channel")),
)


def move_group_days(conn: Connection, daily: BranchDeltas, agencies: dict[str, str]) -> None:
    """Add a batch's daily deltas (per branch, service, class, channel and day) to the
    branches' rows per service and per class, by day, week and month."""
    if not daily:
        return
    for family, columns in GROUPS:
        _move(conn, family, columns, daily, agencies)


def _move(
    conn: Connection,
    family: tuple[Any, Any, Any],
    columns: tuple[str, ...],
    deltas: BranchDeltas,
    agencies: dict[str, str],
) -> None:
    grouped: dict[tuple[Any, ...], kpis.Sums] = {}
    for key, delta in deltas.items():
        at = (key[0], *(key[_AT[name]] for name in columns), key[4])
        grouped.setdefault(at, kpis.Sums()).add(delta)
    branches = sorted({at[0] for at in grouped})
    names = ("branch_id", *columns, "local_date")

    def fields(at: tuple[Any, ...]) -> dict[str, Any]:
        keys = dict(zip(names, at, strict=True))
        if "service_id" in keys:
            keys["agency_id"] = agencies[keys["service_id"]]
        return keys

    def kept(table: Any, dates: list[date]) -> Any:
        return table.c.branch_id.in_(branches) & table.c.local_date.in_(dates)

    move_in_periods(
        conn, family, grouped, lambda row: tuple(getattr(row, n) for n in names), fields, kept
    )
