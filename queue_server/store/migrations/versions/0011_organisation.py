"""The organisation as versioned documents: every edit, import or new seed is one more row.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

from queue_server.store.schema import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organisation_versions",
        sa.Column("version", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(100)),
        sa.Column("summary", sa.String(200), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_organisation_versions"),
    )


def downgrade() -> None:
    op.drop_table("organisation_versions")
