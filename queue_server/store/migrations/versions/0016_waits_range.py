"""The range promised at issue: a ticket keeps the p90 of its forecast next to the median, the
visit facts carry it, and the rollups count the visits promised a range and those called
within it (the reports' coverage of the range, issue 16).

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

RANGE_SUMS = ["ranged", "within_range"]
DAY_SUMS_COVERED = [
    "service_id",
    "agency_id",
    "priority",
    "channel",
    "visits",
    "served",
    "not_served",
    "referred",
    "no_show",
    "cancelled",
    "transferred",
    "open",
    "waited",
    "wait_sum_ms",
    "wait_max_ms",
    "within_target",
    "serviced",
    "service_sum_ms",
    "service_max_ms",
    "recalls",
    "estimated",
    "estimate_error_sum_ms",
    "estimate_abs_error_sum_ms",
]  # fmt: skip (as 0012 made it)


def upgrade() -> None:
    op.add_column("tickets", sa.Column("wait_p90_s", sa.Integer))
    op.add_column("visit_facts", sa.Column("wait_p90_s", sa.Float))
    for table in ("visit_rollups", "visit_days", "network_days"):
        for name in RANGE_SUMS:
            op.add_column(table, sa.Column(name, sa.Integer, nullable=False, server_default="0"))
    # the daily sums stay read from their index alone
    op.drop_index("ix_visit_days_branch_sums", "visit_days")
    op.create_index(
        "ix_visit_days_branch_sums",
        "visit_days",
        ["branch_id", "local_date", *DAY_SUMS_COVERED, *RANGE_SUMS],
    )


def downgrade() -> None:
    op.drop_index("ix_visit_days_branch_sums", "visit_days")
    op.create_index(
        "ix_visit_days_branch_sums", "visit_days", ["branch_id", "local_date", *DAY_SUMS_COVERED]
    )
    for table in ("visit_rollups", "visit_days", "network_days"):
        for name in RANGE_SUMS:
            with op.batch_alter_table(table) as batch:
                batch.drop_column(name)
    with op.batch_alter_table("visit_facts") as batch:
        batch.drop_column("wait_p90_s")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("wait_p90_s")
