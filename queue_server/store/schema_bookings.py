"""The bookings table: an appointment at a branch for a service and a slot, confirmed by a
one-time code, checked in once at the kiosk.

The person is known by the keyed hash of their contact (`contact_hash`): one active booking per
person and service, the limit over N days and the no-show count all read it. The contact itself
is kept encrypted only to send the code and is blanked after the visit's retention.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from queue_server.store.schema import ID, NAME, UTCDateTime, metadata

bookings = Table(
    "bookings",
    metadata,
    Column("id", ID, primary_key=True),
    Column("branch_id", NAME, nullable=False),
    Column("service_id", NAME, nullable=False),
    Column("slot_at", UTCDateTime, nullable=False),
    # pending | confirmed | cancelled | checked_in | no_show
    Column("status", String(12), nullable=False),
    Column("short_code", String(12), nullable=False, unique=True),
    Column("channel", String(8), nullable=False),
    Column("contact_hash", String(64), nullable=False),
    Column("contact_secret", Text, nullable=False),  # "" once the retention has passed
    Column("language", String(2), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("code_expires_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("reschedules", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime),
    Column("checked_in_at", UTCDateTime),
    Column("ticket_id", ID),
    Column("expires_at", UTCDateTime),  # the contact is blanked after this
    # slot: an appointment at `slot_at`; remote: a place in the queue taken at `slot_at` from
    # home, to be activated on arrival within the branch's remote window
    Column("kind", String(8), nullable=False, server_default="slot"),
    Index("ix_bookings_contact", "contact_hash", "created_at"),
    Index("ix_bookings_slot", "branch_id", "service_id", "slot_at"),
)
