"""Each branch's daily and monthly sums per service over its priority classes and channels
(`service_days`, `service_months`) and per priority class and channel over its services
(`class_days`, `class_months`), moved by a batch's daily deltas in the facts' transaction.

A region's report by service, and a report over every branch of one service or of one class by
branch, read these: a row per branch, group and month, not one per service × class × channel
× month too (the year of a region or of the class slice read ~8× fewer histogram texts). Like
`branch_days`, a branch's rows are written only by the projector holding its cursor lock: read,
added to and written back, one read and one write per table and batch.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from queue_server.domain import kpis
from queue_server.store.reports.rollups import (
    BranchDeltas,
    by_month,
    chunks,
    rollup_row,
    sums_of_row,
    upsert_rows,
)
from queue_server.store.schema_reports import class_days, class_months, service_days, service_months

# Where each group column is in a `BranchKey` (branch, service, priority class, channel, day).
_AT = {"service_id": 1, "priority": 2, "channel": 3}
GROUPS: tuple[tuple[Any, Any, tuple[str, ...]], ...] = (
    (service_days, service_months, ("service_id",)),
    (class_days, class_months, ("priority", "channel")),
)


def move_group_days(conn: Connection, daily: BranchDeltas, agencies: dict[str, str]) -> None:
    """Add a batch's daily deltas (per branch, service, class, channel and day) to the
    branches' rows per service and per class, by day and by month."""
    if not daily:
        return
    monthly = by_month(daily)
    for days, months, columns in GROUPS:
        for deltas, table in ((daily, days), (monthly, months)):
            _move(conn, table, columns, deltas, agencies)


def _move(
    conn: Connection,
    table: Any,
    columns: tuple[str, ...],
    deltas: BranchDeltas,
    agencies: dict[str, str],
) -> None:
    grouped: dict[tuple[Any, ...], kpis.Sums] = {}
    for key, delta in deltas.items():
        at = (key[0], *(key[_AT[name]] for name in columns), key[4])
        grouped.setdefault(at, kpis.Sums()).add(delta)
    current: dict[tuple[Any, ...], kpis.Sums] = {}
    branches = sorted({at[0] for at in grouped})
    for chunk in chunks(sorted({at[-1] for at in grouped})):
        for row in conn.execute(
            select(table).where(table.c.branch_id.in_(branches), table.c.local_date.in_(chunk))
        ):
            at = (row.branch_id, *(getattr(row, name) for name in columns), row.local_date)
            if at in grouped:
                current[at] = sums_of_row(row)
    rows = []
    for at, delta in sorted(grouped.items()):
        sums = current.get(at) or kpis.Sums()
        sums.add(delta)
        keys = dict(zip(("branch_id", *columns, "local_date"), at, strict=True))
        if "agency_id" in table.c:
            keys["agency_id"] = agencies[keys["service_id"]]
        rows.append(rollup_row(sums) | keys)
    upsert_rows(conn, table, rows)
