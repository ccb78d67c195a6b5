"""How far reports have read a branch's event log: the log keeps every event after it."""

from __future__ import annotations

from sqlalchemy import Connection, select

from queue_server.store.schema import branch_streams
from queue_server.store.schema_reports import report_cursors


def reports_applied_seq(conn: Connection, branch_id: str) -> int:
    """The last event of the branch's current stream that reports have applied (0: none): the
    event log must keep every event after it."""
    row = conn.execute(
        select(report_cursors.c.seq)
        .join(
            branch_streams,
            (branch_streams.c.branch_id == report_cursors.c.branch_id)
            & (branch_streams.c.epoch == report_cursors.c.epoch),
        )
        .where(report_cursors.c.branch_id == branch_id)
    ).scalar_one_or_none()
    return int(row or 0)
