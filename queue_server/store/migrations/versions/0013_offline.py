"""Branch nodes: node-owned branch streams, central's replication cursors, the node's acks.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

from queue_server.store.schema import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("branch_streams") as batch:
        batch.add_column(
            sa.Column("node_owned", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.create_table(
        "node_links",
        sa.Column("branch_id", sa.String(64), nullable=False),
        sa.Column("node_epoch", sa.String(64)),
        sa.Column("node_seq", sa.Integer, nullable=False),
        sa.Column("seq_offset", sa.Integer, nullable=False),
        sa.Column("last_event_at", UTCDateTime),
        sa.Column("node_head_seq", sa.Integer),
        sa.Column("node_head_at", UTCDateTime),
        sa.Column("last_contact_at", UTCDateTime),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("branch_id", name="pk_node_links"),
    )
    op.create_table(
        "node_epochs",
        sa.Column("branch_id", sa.String(64), nullable=False),
        sa.Column("epoch", sa.String(64), nullable=False),
        sa.Column("seq_offset", sa.Integer, nullable=False),
        sa.Column("first_seq", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("branch_id", "epoch", name="pk_node_epochs"),
    )
    op.create_table(
        "node_acks",
        sa.Column("branch_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("acked_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("branch_id", name="pk_node_acks"),
    )


def downgrade() -> None:
    op.drop_table("node_acks")
    op.drop_table("node_epochs")
    op.drop_table("node_links")
    with op.batch_alter_table("branch_streams") as batch:
        batch.drop_column("node_owned")
