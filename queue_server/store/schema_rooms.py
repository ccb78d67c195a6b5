"""Conference room requests (Community Centres lend their room to institutions): a time, the
institution and purpose, the requester's e-mail kept sealed only to answer, and the manager's
decision. The public calendar shows only busy times, never who asked."""

from __future__ import annotations

from sqlalchemy import Column, Index, String, Table, Text

from queue_server.store.schema import ID, NAME, UTCDateTime, metadata

room_requests = Table(
    "room_requests",
    metadata,
    Column("id", ID, primary_key=True),
    Column("branch_id", NAME, nullable=False),
    Column("room_id", NAME, nullable=False, server_default="room"),  # the centre's room
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("institution", String(200), nullable=False),
    Column("purpose", String(500), nullable=False),
    Column("contact_hash", String(64), nullable=False),
    Column("contact_secret", Text, nullable=False),  # "" once the retention has passed
    Column("language", String(2), nullable=False),
    Column("status", String(10), nullable=False),  # pending | approved | declined
    Column("created_at", UTCDateTime, nullable=False),
    Column("decided_at", UTCDateTime),
    Column("decided_by", NAME),
    Column("reason", String(300)),
    Index("ix_room_requests_branch_time", "branch_id", "starts_at"),
)
