"""Bookings: appointments confirmed by a one-time code and checked in once.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from queue_server.store.schema import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bookings",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("branch_id", sa.String(64), nullable=False),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("slot_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("short_code", sa.String(12), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("contact_hash", sa.String(64), nullable=False),
        sa.Column("contact_secret", sa.Text, nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("code_expires_at", UTCDateTime, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("reschedules", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("confirmed_at", UTCDateTime),
        sa.Column("checked_in_at", UTCDateTime),
        sa.Column("ticket_id", sa.String(32)),
        sa.Column("expires_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_bookings"),
        sa.UniqueConstraint("short_code", name="uq_bookings_short_code"),
    )
    op.create_index("ix_bookings_contact", "bookings", ["contact_hash", "created_at"])
    op.create_index("ix_bookings_slot", "bookings", ["branch_id", "service_id", "slot_at"])


def downgrade() -> None:
    op.drop_table("bookings")
