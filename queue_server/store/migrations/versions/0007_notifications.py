"""Notifications: subscriptions (encrypted contacts), the message outbox, late moves, cursors.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from queue_server.store.schema import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("ticket_id", sa.String(32), nullable=False),
        sa.Column("branch_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("contact_hash", sa.String(64), nullable=False),
        sa.Column("contact_secret", sa.Text, nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_subscriptions"),
        sa.UniqueConstraint("ticket_id", "channel", name="uq_subscriptions_ticket_channel"),
    )
    op.create_index("ix_subscriptions_contact_hash", "subscriptions", ["contact_hash"])
    op.create_index("ix_subscriptions_branch", "subscriptions", ["branch_id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(32), nullable=False),
        sa.Column("branch_id", sa.String(64), nullable=False),
        sa.Column("subscription_id", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime),
        sa.Column("last_error", sa.String(200)),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.UniqueConstraint("ticket_id", "channel", "kind", name="uq_messages_dedup"),
    )
    op.create_index("ix_messages_due", "messages", ["state", "next_attempt_at"])
    op.create_table(
        "late_moves",
        sa.Column("ticket_id", sa.String(32), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("minutes", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", name="pk_late_moves"),
    )
    op.create_table(
        "notify_cursors",
        sa.Column("branch_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("branch_id", name="pk_notify_cursors"),
    )


def downgrade() -> None:
    op.drop_table("notify_cursors")
    op.drop_table("late_moves")
    op.drop_table("messages")
    op.drop_table("subscriptions")
