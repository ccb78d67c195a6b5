"""Initial schema: tickets, numbering, transitions, counters, event log, idempotency keys.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from queue_server.store.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("branch_id", sa.String(64), nullable=False),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("letter", sa.String(1), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("counter_id", sa.String(64)),
        sa.Column("target_counter_id", sa.String(64)),
        sa.Column("issued_at", UTCDateTime, nullable=False),
        sa.Column("queued_at", UTCDateTime, nullable=False),
        sa.Column("appointment_at", UTCDateTime),
        sa.Column("called_at", UTCDateTime),
        sa.Column("started_at", UTCDateTime),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("outcome", sa.String(16)),
        sa.Column("recalls", sa.Integer, nullable=False),
        sa.Column("transferred_from", sa.String(32)),
        sa.Column("wait_estimate_s", sa.Integer),
        sa.Column("visit", sa.Integer, nullable=False),
        sa.UniqueConstraint(
            "branch_id", "letter", "day", "number", "visit", name="uq_tickets_number"
        ),
    )
    op.create_index("ix_tickets_branch_status", "tickets", ["branch_id", "status"])
    op.create_table(
        "ticket_numbers",
        sa.Column("branch_id", sa.String(64), primary_key=True),
        sa.Column("letter", sa.String(1), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("last_number", sa.Integer, nullable=False),
    )
    op.create_table(
        "ticket_transitions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("counter_id", sa.String(64)),
        sa.Column("outcome", sa.String(16)),
    )
    op.create_index("ix_ticket_transitions_ticket_id", "ticket_transitions", ["ticket_id"])
    op.create_table(
        "counter_states",
        sa.Column("branch_id", sa.String(64), primary_key=True),
        sa.Column("counter_id", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("pause_reason", sa.String(200)),
        sa.Column("operator", sa.String(64)),
        sa.Column("current_ticket_id", sa.String(32)),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "branch_streams",
        sa.Column("branch_id", sa.String(64), primary_key=True),
        sa.Column("epoch", sa.String(32), nullable=False),
        sa.Column("last_seq", sa.Integer, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("branch_id", sa.String(64), nullable=False),
        sa.Column("epoch", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.UniqueConstraint("branch_id", "seq", name="uq_events_branch_seq"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("branch_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("ticket_id", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "idempotency_keys",
        "events",
        "branch_streams",
        "counter_states",
        "ticket_transitions",
        "ticket_numbers",
        "tickets",
    ):
        op.drop_table(table)
