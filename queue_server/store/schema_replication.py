"""Tables of branch-node replication (docs/offline.md).

Central side: `node_links`, one row per node-owned branch: how far its node's stream has been
applied (the node's epoch and seq, and the offset that maps a node seq to this database's seq),
and what the node last said of itself (its head, when it last spoke), for the link status.
`node_epochs` remembers every node epoch ever applied, so an event of an epoch the node has left
behind (a late retry) is recognised as old and never applied again.

Node side: `node_acks`, how far central has acknowledged the node's own stream (the node keeps
every event after it, however long the outage).
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, Table

from queue_server.store.schema import NAME, UTCDateTime, metadata

node_links = Table(
    "node_links",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("node_epoch", NAME),  # None until the first event arrives
    Column("node_seq", Integer, nullable=False),  # the node's last applied seq in node_epoch
    Column("seq_offset", Integer, nullable=False),  # central seq = node seq + offset
    Column("last_event_at", UTCDateTime),  # when the last applied event happened at the node
    Column("node_head_seq", Integer),  # the node's newest seq, as it last reported
    Column("node_head_at", UTCDateTime),  # when that newest event happened
    Column("last_contact_at", UTCDateTime),  # when the node last spoke
    Column("created_at", UTCDateTime, nullable=False),
)

node_epochs = Table(
    "node_epochs",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("epoch", NAME, primary_key=True),
    Column("seq_offset", Integer, nullable=False),
    Column("first_seq", Integer, nullable=False),
)

node_acks = Table(
    "node_acks",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("seq", Integer, nullable=False),  # every event up to here is held by central
    Column("acked_at", UTCDateTime, nullable=False),
)
