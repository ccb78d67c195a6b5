"""People and devices, managed: a password that must be changed at next sign-in, the counters an
operator may take, and when a device was last seen.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

from queue_server.store.schema import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as users:
        users.add_column(
            sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.false())
        )
        users.add_column(sa.Column("allowed_counters", sa.Text))
    with op.batch_alter_table("devices") as devices:
        devices.add_column(sa.Column("last_seen_at", UTCDateTime))


def downgrade() -> None:
    with op.batch_alter_table("devices") as devices:
        devices.drop_column("last_seen_at")
    with op.batch_alter_table("users") as users:
        users.drop_column("allowed_counters")
        users.drop_column("must_change_password")
