"""Feedback: one rating (1-5, optional comment) per finished visit.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from queue_server.store.schema import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("ticket_id", sa.String(32), nullable=False),
        sa.Column("branch_id", sa.String(64), nullable=False),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("rating", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("local_date", sa.Date, nullable=False),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name="ck_feedback_rating"),
        sa.PrimaryKeyConstraint("ticket_id", name="pk_feedback"),
    )
    op.create_index("ix_feedback_branch_date", "feedback", ["branch_id", "local_date"])


def downgrade() -> None:
    op.drop_table("feedback")
