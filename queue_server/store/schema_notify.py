"""Tables of notifications: who asked to be told (a contact kept only to message them) and the
durable outbox of messages a worker sends.

A contact is stored encrypted (`contact_secret`) and identified elsewhere by a keyed hash
(`contact_hash`, an HMAC with the server's secret), so rate limits and SMS replies find it
without the number or address ever being readable in the database, a log or a public surface.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text, UniqueConstraint

from queue_server.store.schema import ID, NAME, UTCDateTime, metadata

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("ticket_id", ID, nullable=False),
    Column("branch_id", NAME, nullable=False),
    Column("channel", String(8), nullable=False),  # sms | email
    Column("contact_hash", String(64), nullable=False),
    Column("contact_secret", Text, nullable=False),
    Column("language", String(2), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # Set when the visit ends: the contact is deleted after it (`RIGI_NOTIFY_RETENTION_MINUTES`).
    Column("expires_at", UTCDateTime),
    UniqueConstraint("ticket_id", "channel", name="uq_subscriptions_ticket_channel"),
    Index("ix_subscriptions_contact_hash", "contact_hash"),
    Index("ix_subscriptions_branch", "branch_id"),
)

# One row per message. UNIQUE (ticket, channel, kind) is the dedup key: one "near" per ticket
# and channel, however many processes saw the event and however often they restarted.
messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", ID, nullable=False),
    Column("branch_id", NAME, nullable=False),
    Column("subscription_id", ID, nullable=False),
    Column("channel", String(8), nullable=False),
    Column("kind", String(16), nullable=False),  # near | called | transferred | finished
    Column("language", String(2), nullable=False),
    Column("params", Text, nullable=False),  # JSON: label, counter number, service name
    Column("state", String(8), nullable=False),  # queued | sending | sent | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("last_error", String(200)),
    UniqueConstraint("ticket_id", "channel", "kind", name="uq_messages_dedup"),
    Index("ix_messages_due", "state", "next_attempt_at"),
)

# A ticket's one "late" move (the primary key makes it once, across processes).
late_moves = Table(
    "late_moves",
    metadata,
    Column("ticket_id", ID, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("minutes", Integer, nullable=False),
)

# How far the notifier has read each branch's event log: restarts resume, nothing is lost.
notify_cursors = Table(
    "notify_cursors",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("seq", Integer, nullable=False),
)
