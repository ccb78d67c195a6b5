"""Tables of ticket printing: print jobs (one per ticket), printers and the kiosks they serve.

Defined on the shared `metadata` so that Alembic and tests see one schema.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text

from queue_server.store.schema import ID, NAME, UTCDateTime, metadata

print_jobs = Table(
    "print_jobs",
    metadata,
    Column("id", ID, primary_key=True),  # the ticket's id: one job per ticket, reprints reuse it
    Column("branch_id", NAME, nullable=False),
    Column("kiosk_id", NAME, nullable=False),
    Column("printer_id", NAME),  # None when the kiosk had no printer
    Column("status", String(16), nullable=False),  # queued | printed | failed | no_printer
    Column("reprint", Boolean, nullable=False, default=False),
    Column("prints", Integer, nullable=False, default=0),  # printed acks counted
    Column("error_code", String(32)),
    Column("error_message", String(500)),
    Column("ticket", Text, nullable=False),  # the ticket as the agent lays it out (JSON)
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),  # last time it went to an agent; None: never
    Index("ix_print_jobs_branch_status", "branch_id", "status"),
)

printers = Table(
    "printers",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("printer_id", NAME, primary_key=True),
    Column("kiosks", Text, nullable=False),  # JSON list, as the agent declared it
    Column("width", Integer),
    Column("connected", Boolean, nullable=False, default=False),  # its agent holds a connection
    Column("online", Boolean),  # None: never reported
    Column("paper", String(16), nullable=False, default="unknown"),
    Column("updated_at", UTCDateTime, nullable=False),
)

printer_kiosks = Table(
    "printer_kiosks",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("kiosk_id", NAME, primary_key=True),
    Column("printer_id", NAME, nullable=False),
)
