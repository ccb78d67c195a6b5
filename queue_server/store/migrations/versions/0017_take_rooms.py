"""Conference rooms per Community Centre: a room request names its room. Requests made before
a centre had rooms configured belong to its one default room, `room`.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("room_requests") as batch:
        batch.add_column(sa.Column("room_id", sa.String(64), nullable=False, server_default="room"))


def downgrade() -> None:
    with op.batch_alter_table("room_requests") as batch:
        batch.drop_column("room_id")
