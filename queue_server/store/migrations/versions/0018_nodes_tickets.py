"""Central keeps `tickets` rows of a node-owned branch (store/replica_tickets.py): the rows of
the events central already holds are made once here, from its event table, so a centre's
tickets shipped before this version show at central too. No schema change.

Revision ID: 0018
Revises: 0017
"""

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from queue_server.domain.numbering import DEFAULT_TIMEZONE
from queue_server.store.events import Event
from queue_server.store.replica_tickets import TICKET_KEYS, mirror_tickets

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

CHUNK_EVENTS = 5000


def upgrade() -> None:
    conn = op.get_bind()
    owned = conn.execute(sa.text("SELECT branch_id FROM branch_streams WHERE node_owned")).scalars()
    for branch_id in list(owned):
        after = 0
        while True:
            rows = conn.execute(
                sa.text(
                    "SELECT epoch, seq, kind, at, data FROM events WHERE branch_id = :b "
                    "AND seq > :after AND kind LIKE 'ticket.%' ORDER BY seq LIMIT :n"
                ),
                {"b": branch_id, "after": after, "n": CHUNK_EVENTS},
            ).all()
            if not rows:
                break
            chunk = [
                Event(branch_id, r.epoch, r.seq, r.kind, _aware(r.at), json.loads(r.data))
                for r in rows
            ]
            # a batch applied before its tickets were checked may hold a partial one: skipped
            chunk = [e for e in chunk if set(e.data.get("ticket") or {}) >= TICKET_KEYS]
            mirror_tickets(conn, branch_id, chunk, DEFAULT_TIMEZONE)
            after = rows[-1].seq


def _aware(value: Any) -> datetime:
    """A stored time, aware (SQLite's raw text forgets the zone; it is UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def downgrade() -> None:
    """The rows stay: they are what central's views of the branch read."""
