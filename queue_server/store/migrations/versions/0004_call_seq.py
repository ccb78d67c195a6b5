"""Order a board's calls by the sequence of their call events, not by clocks.

Across processes the wall-clock time of a call can disagree with the order its event got in
the branch's sequence; displays apply events by sequence, so the snapshot must too.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("call_seq", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("call_seq")
