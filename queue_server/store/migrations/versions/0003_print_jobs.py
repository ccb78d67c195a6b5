"""Ticket printing: print jobs, printers and which kiosk prints where.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from queue_server.store import schema_printing  # noqa: F401  (puts the tables on metadata)
from queue_server.store.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "print_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("branch_id", sa.String(64), nullable=False),
        sa.Column("kiosk_id", sa.String(64), nullable=False),
        sa.Column("printer_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reprint", sa.Boolean, nullable=False),
        sa.Column("prints", sa.Integer, nullable=False),
        sa.Column("error_code", sa.String(32)),
        sa.Column("error_message", sa.String(500)),
        sa.Column("ticket", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime),
    )
    op.create_index("ix_print_jobs_branch_status", "print_jobs", ["branch_id", "status"])
    op.create_table(
        "printers",
        sa.Column("branch_id", sa.String(64), primary_key=True),
        sa.Column("printer_id", sa.String(64), primary_key=True),
        sa.Column("kiosks", sa.Text, nullable=False),
        sa.Column("width", sa.Integer),
        sa.Column("connected", sa.Boolean, nullable=False),
        sa.Column("online", sa.Boolean),
        sa.Column("paper", sa.String(16), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "printer_kiosks",
        sa.Column("branch_id", sa.String(64), primary_key=True),
        sa.Column("kiosk_id", sa.String(64), primary_key=True),
        sa.Column("printer_id", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    for table in ("printer_kiosks", "printers", "print_jobs"):
        op.drop_table(table)
