"""Tables. Core, not ORM: the hot paths (issue, call next, append event) stay cheap."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns aware datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


ID = String(32)
NAME = String(64)

tickets = Table(
    "tickets",
    metadata,
    Column("id", ID, primary_key=True),
    Column("branch_id", NAME, nullable=False),
    Column("service_id", NAME, nullable=False),
    Column("letter", String(1), nullable=False),
    Column("number", Integer, nullable=False),
    Column("day", Date, nullable=False),
    Column("priority", String(16), nullable=False),
    Column("language", String(2), nullable=False),
    Column("status", String(16), nullable=False),
    Column("counter_id", NAME),  # the counter that called or serves it
    Column("target_counter_id", NAME),  # transferred to one particular counter
    Column("issued_at", UTCDateTime, nullable=False),
    Column("queued_at", UTCDateTime, nullable=False),  # what its wait counts from
    Column("appointment_at", UTCDateTime),
    Column("called_at", UTCDateTime),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("outcome", String(16)),
    Column("recalls", Integer, nullable=False, default=0),
    Column("transferred_from", ID),
    Column("wait_estimate_s", Integer),
    Column("wait_p90_s", Integer),  # the range's upper end promised at issue (migration 0016)
    # A transfer is a new visit that keeps the citizen's printed number; visits count from 1.
    Column("visit", Integer, nullable=False, default=1),
    # The seq of its latest call or recall event: boards list calls in the order displays saw.
    Column("call_seq", Integer),
    UniqueConstraint("branch_id", "letter", "day", "number", "visit", name="uq_tickets_number"),
    Index("ix_tickets_branch_status", "branch_id", "status"),
)

ticket_numbers = Table(
    "ticket_numbers",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("letter", String(1), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("last_number", Integer, nullable=False),
)

ticket_transitions = Table(
    "ticket_transitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", ID, nullable=False, index=True),
    Column("action", String(16), nullable=False),
    Column("from_status", String(16)),
    Column("to_status", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", NAME, nullable=False),
    Column("counter_id", NAME),
    Column("outcome", String(16)),
)

counter_states = Table(
    "counter_states",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("counter_id", NAME, primary_key=True),
    Column("state", String(16), nullable=False),
    Column("pause_reason", String(200)),
    Column("operator", NAME),
    Column("current_ticket_id", ID),
    Column("updated_at", UTCDateTime, nullable=False),
)

branch_streams = Table(
    "branch_streams",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("epoch", String(32), nullable=False),
    Column("last_seq", Integer, nullable=False),
    # Served by a branch node (docs/offline.md): this database only mirrors the node's stream,
    # and `take_seqs` refuses every write of its own to it.
    Column("node_owned", Boolean, nullable=False, default=False, server_default=false()),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("branch_id", NAME, nullable=False),
    Column("epoch", String(32), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("data", Text, nullable=False),
    # Who caused it (a user or device id); kept out of the feeds, read by the audit log.
    Column("actor", NAME),
    UniqueConstraint("branch_id", "seq", name="uq_events_branch_seq"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("ticket_id", ID, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("username", NAME, nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(16), nullable=False),  # admin | manager | operator
    Column("branch_id", NAME),  # None for admins
    Column("active", Boolean, nullable=False, default=True),
    Column("session_version", Integer, nullable=False, default=1),
    Column("created_at", UTCDateTime, nullable=False),
    # Set by a password reset: the person must choose a new password before doing anything else.
    Column("must_change_password", Boolean, nullable=False, default=False, server_default=false()),
    Column("allowed_counters", Text),  # a JSON list of counter ids; None or [] = any counter
)

devices = Table(
    "devices",
    metadata,
    Column("id", ID, primary_key=True),
    Column("branch_id", NAME, nullable=False),
    Column("role", String(16), nullable=False),  # kiosk | display | printer
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_by", NAME, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("last_seen_at", UTCDateTime),  # written at most once a minute per device
)

# The audit trail: who did what, when. Written in the same transaction as each staff or device
# action and pruned only by age (`RIGI_AUDIT_DAYS`), never with the replay history (`events`).
# It names staff and devices, never citizens: a ticket is its printed label.
audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("branch_id", NAME),  # None for a network-wide action (an admin's)
    Column("actor", String(120), nullable=False),  # as the events name it: `operator:nino`
    Column("role", String(16), nullable=False),
    Column("person", NAME),  # the username, when a person acted
    Column("device", String(100)),  # the device's name, when a device acted
    Column("kind", String(32), nullable=False),  # `counter.opened`, `user.disabled`, …
    Column("target", String(100)),  # a counter, a ticket label, a username, a device
    Column("detail", Text, nullable=False),  # a small JSON object
    Index("ix_audit_branch_at", "branch_id", "at"),
    Index("ix_audit_at", "at"),
)
