"""The audit trail in a table of its own, kept by age rather than with the replay history.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from queue_server.store.schema import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("branch_id", sa.String(64)),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("person", sa.String(64)),
        sa.Column("device", sa.String(100)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("target", sa.String(100)),
        sa.Column("detail", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
    )
    op.create_index("ix_audit_branch_at", "audit", ["branch_id", "at"])
    op.create_index("ix_audit_at", "audit", ["at"])


def downgrade() -> None:
    op.drop_table("audit")
