"""Remote tickets: a booking row of kind `remote` is a place in today's queue taken from home,
activated at the kiosk; `slot` rows are the appointments of 0008.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "bookings", sa.Column("kind", sa.String(8), nullable=False, server_default="slot")
    )


def downgrade() -> None:
    with op.batch_alter_table("bookings") as batch:
        batch.drop_column("kind")
