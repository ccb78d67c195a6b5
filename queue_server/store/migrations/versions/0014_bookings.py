"""Remote tickets: a booking row of kind `remote` is a place in today's queue taken from home,
activated at the kiosk; `slot` rows are the appointments of 0008. Conference room requests of
the Community Centres.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

from queue_server.store.schema import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "bookings", sa.Column("kind", sa.String(8), nullable=False, server_default="slot")
    )
    op.create_table(
        "room_requests",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("branch_id", sa.String(64), nullable=False),
        sa.Column("starts_at", UTCDateTime, nullable=False),
        sa.Column("ends_at", UTCDateTime, nullable=False),
        sa.Column("institution", sa.String(200), nullable=False),
        sa.Column("purpose", sa.String(500), nullable=False),
        sa.Column("contact_hash", sa.String(64), nullable=False),
        sa.Column("contact_secret", sa.Text, nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("decided_at", UTCDateTime),
        sa.Column("decided_by", sa.String(64)),
        sa.Column("reason", sa.String(300)),
        sa.PrimaryKeyConstraint("id", name="pk_room_requests"),
    )
    op.create_index("ix_room_requests_branch_time", "room_requests", ["branch_id", "starts_at"])


def downgrade() -> None:
    op.drop_table("room_requests")
    with op.batch_alter_table("bookings") as batch:
        batch.drop_column("kind")
