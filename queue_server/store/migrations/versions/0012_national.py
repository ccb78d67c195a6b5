"""Reports over a year: covering indexes, so that a year's report reads indexes, not wide rows,
and the longest waits of one service found from the longest down.

The rollup rows carry two histogram texts each; reading a year of them row by row for a few
integers was most of a year's report on SQLite. The arrivals heatmap (weekday × hour), the
counters' time and the daily sums now come from indexes that hold every column they read.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ROLLUP_WEEK = ["local_date", "weekday", "local_hour", "visits"]
ROLLUP_SLICE = ["service_id", "agency_id", "priority", "channel"]
DAY_SUMS_COVERED = [
    "service_id", "agency_id", "priority", "channel",
    "visits", "served", "not_served", "referred", "no_show", "cancelled", "transferred", "open",
    "waited", "wait_sum_ms", "wait_max_ms", "within_target", "serviced", "service_sum_ms",
    "service_max_ms", "recalls", "estimated", "estimate_error_sum_ms",
    "estimate_abs_error_sum_ms",
]  # fmt: skip
COUNTER_TIME = ["counter_id", "operator", "serving_ms", "idle_ms", "paused_ms", "closed_ms"]


def upgrade() -> None:
    op.create_index(
        "ix_visit_facts_branch_service_wait", "visit_facts", ["branch_id", "service_id", "wait_s"]
    )
    op.create_index(
        "ix_visit_rollups_branch_week", "visit_rollups", ["branch_id", *ROLLUP_WEEK, *ROLLUP_SLICE]
    )
    op.drop_index("ix_visit_rollups_date", "visit_rollups")
    op.create_index(
        "ix_visit_rollups_week", "visit_rollups", [*ROLLUP_WEEK, "branch_id", *ROLLUP_SLICE]
    )
    op.drop_index("ix_counter_time_branch_date", "counter_time")
    op.create_index(
        "ix_counter_time_branch_date", "counter_time", ["branch_id", "local_date", *COUNTER_TIME]
    )
    op.create_index(
        "ix_visit_days_branch_sums", "visit_days", ["branch_id", "local_date", *DAY_SUMS_COVERED]
    )


def downgrade() -> None:
    op.drop_index("ix_visit_facts_branch_service_wait", "visit_facts")
    op.drop_index("ix_visit_days_branch_sums", "visit_days")
    op.drop_index("ix_counter_time_branch_date", "counter_time")
    op.create_index("ix_counter_time_branch_date", "counter_time", ["branch_id", "local_date"])
    op.drop_index("ix_visit_rollups_week", "visit_rollups")
    op.create_index("ix_visit_rollups_date", "visit_rollups", ["local_date"])
    op.drop_index("ix_visit_rollups_branch_week", "visit_rollups")
