"""Reports: visit facts, rollups per branch × service × hour, counter time, the projector's
cursor (see store/schema_reports.py). Empty at first: the running server fills them from the
kept event log, and `queue-server facts rebuild` can make them again.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from queue_server.store.schema import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

NAME = sa.String(64)


def _ints(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Integer, nullable=False) for name in names]


def _big(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.BigInteger, nullable=False) for name in names]


def _sums() -> list[sa.Column]:
    """The sums of a rollup row (see schema_reports._sum_columns)."""
    return [
        *_ints("visits", "served", "not_served", "referred"),
        *_ints("no_show", "cancelled", "transferred", "open", "waited"),
        *_big("wait_sum_ms", "wait_max_ms"),
        *_ints("within_target", "serviced"),
        *_big("service_sum_ms", "service_max_ms"),
        *_ints("recalls", "estimated"),
        *_big("estimate_error_sum_ms", "estimate_abs_error_sum_ms"),
        sa.Column("wait_hist", sa.Text, nullable=False),
        sa.Column("service_hist", sa.Text, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "visit_facts",
        sa.Column("ticket_id", sa.String(32), primary_key=True),
        sa.Column("branch_id", NAME, nullable=False),
        sa.Column("service_id", NAME, nullable=False),
        sa.Column("agency_id", NAME, nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("label", sa.String(8), nullable=False),
        sa.Column("issued_at", UTCDateTime, nullable=False),
        sa.Column("hour", UTCDateTime, nullable=False),
        sa.Column("local_date", sa.Date, nullable=False),
        sa.Column("called_at", UTCDateTime),
        sa.Column("started_at", UTCDateTime),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("counter_id", NAME),
        sa.Column("operator", NAME),
        sa.Column("outcome", sa.String(16)),
        sa.Column("wait_s", sa.Float),
        sa.Column("service_s", sa.Float),
        sa.Column("recalls", sa.Integer, nullable=False),
        sa.Column("target_wait_s", sa.Float, nullable=False),
        sa.Column("wait_estimate_s", sa.Float),
    )
    op.create_index("ix_visit_facts_branch_date", "visit_facts", ["branch_id", "local_date"])
    op.create_index("ix_visit_facts_branch_hour", "visit_facts", ["branch_id", "hour"])
    op.create_index("ix_visit_facts_branch_wait", "visit_facts", ["branch_id", "wait_s"])
    op.create_table(
        "visit_rollups",
        sa.Column("branch_id", NAME, primary_key=True),
        sa.Column("service_id", NAME, primary_key=True),
        sa.Column("priority", sa.String(16), primary_key=True),
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("hour", UTCDateTime, primary_key=True),
        sa.Column("agency_id", NAME, nullable=False),
        sa.Column("local_date", sa.Date, nullable=False),
        *_ints("local_hour", "weekday"),
        *_sums(),
    )
    op.create_index("ix_visit_rollups_date", "visit_rollups", ["local_date"])
    op.create_table(
        "visit_days",
        sa.Column("branch_id", NAME, primary_key=True),
        sa.Column("service_id", NAME, primary_key=True),
        sa.Column("priority", sa.String(16), primary_key=True),
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("local_date", sa.Date, primary_key=True),
        sa.Column("agency_id", NAME, nullable=False),
        *_sums(),
    )
    op.create_index("ix_visit_days_date", "visit_days", ["local_date"])
    op.create_table(
        "counter_time",
        sa.Column("branch_id", NAME, primary_key=True),
        sa.Column("counter_id", NAME, primary_key=True),
        sa.Column("operator", NAME, primary_key=True),
        sa.Column("hour", UTCDateTime, primary_key=True),
        sa.Column("local_date", sa.Date, nullable=False),
        *_ints("local_hour", "weekday"),
        *_big("serving_ms", "idle_ms", "paused_ms", "closed_ms"),
    )
    op.create_index("ix_counter_time_branch_date", "counter_time", ["branch_id", "local_date"])
    op.create_table(
        "counter_clocks",
        sa.Column("branch_id", NAME, primary_key=True),
        sa.Column("counter_id", NAME, primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("busy", sa.Boolean, nullable=False),
        sa.Column("operator", NAME, nullable=False),
        sa.Column("since", UTCDateTime, nullable=False),
    )
    op.create_table(
        "report_cursors",
        sa.Column("branch_id", NAME, primary_key=True),
        sa.Column("epoch", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "report_cursors",
        "counter_clocks",
        "counter_time",
        "visit_days",
        "visit_rollups",
    ):
        op.drop_table(table)
    op.drop_table("visit_facts")
