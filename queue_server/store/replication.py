"""A branch node's event stream, mirrored into the central database (docs/offline.md).

The node is the one authority for its branch; central only applies what the node sends, at
least once and in any order, so applying must be idempotent:

- an event of the node's current epoch at or below the applied seq is a duplicate: skipped;
- an event past the next seq is a gap: applying stops there, the answer says where to resume;
- an event of an epoch applied before and since left behind (a late retry) is skipped;
- an event of a new epoch (a fresh node, or one restored from an older backup) starts it at the
  seq the node says that epoch starts with, and is numbered after central's last event of the
  branch: events central already holds are kept, and nothing is numbered twice.

Central numbers the branch as `node seq + offset`; the offset is 0 until the node's database is
restored from a backup, so central normally holds the node's very seqs.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from queue_server.domain.numbering import DEFAULT_TIMEZONE
from queue_server.errors import Conflict
from queue_server.store.audit import EventFacts, event_rows
from queue_server.store.database import PENDING_EVENTS
from queue_server.store.events import Event
from queue_server.store.replica_floor import mirror_floor
from queue_server.store.replica_tickets import cancel_lost_tickets, mirror_tickets
from queue_server.store.schema import audit, branch_streams, events
from queue_server.store.schema_replication import node_acks, node_epochs, node_links
from queue_server.store.statements import upsert_insert
from rigi_protocol.wire import compact_json


@dataclass(frozen=True, slots=True)
class NodeEvent:
    """One event of the node's log as it travels: its data is a JSON object, its actor is kept
    for the central audit trail."""

    epoch: str
    seq: int
    kind: str
    at: datetime
    data: dict[str, Any]
    actor: str | None


@dataclass(frozen=True, slots=True)
class Cursor:
    """How far central holds a node's stream: the node's epoch and seq, and the epochs it has
    left behind (whose events central holds as far as the node ever sent them)."""

    epoch: str | None
    seq: int
    past_epochs: tuple[str, ...] = ()
    applied: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "seq": self.seq,
            "past_epochs": list(self.past_epochs),
            "applied": self.applied,
        }


LIVE_TAIL_EVENTS = 50  # of a batch, published to the feeds as they are


class NotNodeOwned(Conflict):
    code = "branch_not_node_owned"


# ---- central ---------------------------------------------------------------------------------


def claim_branch(conn: Connection, branch_id: str, now: datetime) -> None:
    """Make a branch node-owned: central stops writing its queue and mirrors its node."""
    insert = upsert_insert(conn.dialect.name)
    conn.execute(
        insert(branch_streams)
        .values(branch_id=branch_id, epoch=uuid.uuid4().hex, last_seq=0, node_owned=True)
        .on_conflict_do_update(
            index_elements=[branch_streams.c.branch_id], set_={"node_owned": True}
        )
    )
    conn.execute(
        insert(node_links)
        .values(branch_id=branch_id, node_seq=0, seq_offset=0, created_at=now)
        .on_conflict_do_nothing(index_elements=[node_links.c.branch_id])
    )


def apply_node_events(
    conn: Connection,
    branch_id: str,
    batch: Sequence[NodeEvent],
    starts: Mapping[str, int],
    head: tuple[int, datetime | None],
    now: datetime,
    timezone: str = DEFAULT_TIMEZONE,
) -> Cursor:
    """Apply a node's events in one transaction (see the module's rules); `starts` gives the
    first seq of each epoch the batch holds, `head` the node's newest seq and its time. The
    branch's `tickets` rows follow (`store.replica_tickets`, days in the branch's `timezone`)."""
    link = conn.execute(
        select(node_links).where(node_links.c.branch_id == branch_id).with_for_update()
    ).one_or_none()
    if link is None:
        raise NotNodeOwned("This branch has no node: an administrator creates its node token.")
    stream = conn.execute(
        select(branch_streams).where(branch_streams.c.branch_id == branch_id).with_for_update()
    ).one()
    known = set(
        conn.execute(select(node_epochs.c.epoch).where(node_epochs.c.branch_id == branch_id))
        .scalars()
        .all()
    )
    node_epoch, node_seq, offset = link.node_epoch, link.node_seq, link.seq_offset
    central_epoch, central_seq = stream.epoch, stream.last_seq
    last_at = link.last_event_at
    stored: list[Event] = []
    rows: list[dict[str, Any]] = []
    audited: list[EventFacts] = []
    lost: list[tuple[int, int]] = []  # central seqs a restored node no longer holds
    for item in sorted(batch, key=lambda e: e.seq):
        if item.epoch == node_epoch:
            if item.seq <= node_seq:
                continue
            if item.seq != node_seq + 1:
                break
        elif item.epoch in known:
            continue
        else:
            if starts.get(item.epoch) != item.seq:
                break  # not this epoch's first event: wait for it
            if central_seq == 0:
                central_epoch = item.epoch  # a fresh mirror keeps the node's epoch too
            if node_epoch is not None:  # restored from a backup of the epoch it leaves
                lost.append((item.seq - 1 + offset, central_seq))
            offset = central_seq - (item.seq - 1)
            conn.execute(
                node_epochs.insert().values(
                    branch_id=branch_id, epoch=item.epoch, seq_offset=offset, first_seq=item.seq
                )
            )
            known.add(item.epoch)
            node_epoch = item.epoch
        node_seq, central_seq, last_at = item.seq, item.seq + offset, item.at
        stored.append(Event(branch_id, central_epoch, central_seq, item.kind, item.at, item.data))
        rows.append(
            {
                "branch_id": branch_id,
                "epoch": central_epoch,
                "seq": central_seq,
                "kind": item.kind,
                "at": item.at,
                "data": compact_json(item.data),
                "actor": item.actor,
            }
        )
        audited.append((item.kind, item.at, item.data, item.actor))
    if rows:
        insert_many(conn, events, rows)
        insert_many(conn, audit, event_rows(branch_id, audited))
        mirror_floor(conn, branch_id, stored)
        mirror_tickets(conn, branch_id, stored, timezone)
        for after_seq, until_seq in lost:
            cancel_lost_tickets(conn, branch_id, after_seq, until_seq)
        conn.execute(
            update(branch_streams)
            .where(branch_streams.c.branch_id == branch_id)
            .values(epoch=central_epoch, last_seq=central_seq)
        )
        pending = conn.info.get(PENDING_EVENTS)
        if pending is not None:
            # Told after the commit: a catch-up's tail only. A hub that follows the branch
            # reads the rest back from the event table as the gap it sees (realtime.hub), and
            # the bus is spared thousands of old events, one publish each.
            pending.extend(stored[-LIVE_TAIL_EVENTS:])
    head_seq, head_at = head
    conn.execute(
        update(node_links)
        .where(node_links.c.branch_id == branch_id)
        .values(
            node_epoch=node_epoch,
            node_seq=node_seq,
            seq_offset=offset,
            last_event_at=last_at,
            node_head_seq=max(head_seq, node_seq),
            node_head_at=head_at,
            last_contact_at=now,
        )
    )
    return Cursor(node_epoch, node_seq, tuple(sorted(known - {node_epoch})), len(rows))


def insert_many(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows. On PostgreSQL through the driver's prepared `executemany`: SQLAlchemy
    prepares each row's parameters in Python (measured 80 µs a row here, 5,000 events and
    their audit rows 0.8 s; through asyncpg 40 ms). The values are what the columns take
    as they are (UTC datetimes are aware, JSON is text)."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), list(rows))
        return
    columns = list(rows[0])
    values = ", ".join(f"${number}" for number in range(1, len(columns) + 1))
    statement = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({values})"
    conn.exec_driver_sql(statement, [tuple(row[c] for c in columns) for row in rows])


def node_cursor(conn: Connection, branch_id: str) -> Cursor:
    link = conn.execute(select(node_links).where(node_links.c.branch_id == branch_id)).one_or_none()
    if link is None:
        raise NotNodeOwned("This branch has no node: an administrator creates its node token.")
    known = conn.execute(
        select(node_epochs.c.epoch).where(node_epochs.c.branch_id == branch_id)
    ).scalars()
    return Cursor(link.node_epoch, link.node_seq, tuple(sorted(set(known) - {link.node_epoch})))


def link_rows(conn: Connection, now: datetime, stale_after_s: float) -> dict[str, dict[str, Any]]:
    """Each node's link as central sees it: connected (spoke within `stale_after_s`), the last
    event received (seq and when it happened), and the lag in events and seconds."""
    links: dict[str, dict[str, Any]] = {}
    for row in conn.execute(select(node_links).order_by(node_links.c.branch_id)):
        silent = (now - row.last_contact_at).total_seconds() if row.last_contact_at else None
        lag_events = max(0, (row.node_head_seq or 0) - row.node_seq)
        lag_s = 0.0
        if lag_events and row.node_head_at and row.last_event_at:
            lag_s = max(0.0, (row.node_head_at - row.last_event_at).total_seconds())
        links[row.branch_id] = {
            "branch": row.branch_id,
            "connected": silent is not None and silent <= stale_after_s,
            "last_contact_at": _iso(row.last_contact_at),
            "silent_s": None if silent is None else round(silent, 1),
            "last_event": {"epoch": row.node_epoch, "seq": row.node_seq,
                           "at": _iso(row.last_event_at)},
            "node_head_seq": row.node_head_seq,
            "lag_events": lag_events,
            "lag_s": round(lag_s, 1),
        }  # fmt: skip
    return links


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# ---- the node --------------------------------------------------------------------------------


def ensure_ack_row(conn: Connection, branch_id: str, now: datetime) -> int:
    """The node's acknowledged seq, made 0 on the first start: from then on pruning keeps
    every event central has not acknowledged."""
    insert = upsert_insert(conn.dialect.name)
    conn.execute(
        insert(node_acks)
        .values(branch_id=branch_id, seq=0, acked_at=now)
        .on_conflict_do_nothing(index_elements=[node_acks.c.branch_id])
    )
    return int(
        conn.execute(select(node_acks.c.seq).where(node_acks.c.branch_id == branch_id)).scalar_one()
    )


def record_ack(conn: Connection, branch_id: str, seq: int, now: datetime) -> None:
    conn.execute(
        update(node_acks).where(node_acks.c.branch_id == branch_id).values(seq=seq, acked_at=now)
    )


def resume_after(conn: Connection, branch_id: str, cursor: Cursor) -> int:
    """The node's last seq that central holds: its newest event of central's current epoch at
    or below central's seq, or of an epoch central has left behind; 0 when none is."""
    held = []
    if cursor.epoch is not None:
        held.append(and_(events.c.epoch == cursor.epoch, events.c.seq <= cursor.seq))
    if cursor.past_epochs:
        held.append(events.c.epoch.in_(cursor.past_epochs))
    if not held:
        return 0
    found = conn.execute(
        select(func.max(events.c.seq)).where(events.c.branch_id == branch_id, or_(*held))
    ).scalar()
    return int(found or 0)


def unshipped(
    conn: Connection, branch_id: str, after_seq: int, limit: int
) -> list[tuple[str, int, str, datetime, str, str | None]]:
    """Up to `limit` of the node's events after `after_seq`, in order, data as stored."""
    rows = conn.execute(
        select(events.c.epoch, events.c.seq, events.c.kind, events.c.at, events.c.data,
               events.c.actor)
        .where(events.c.branch_id == branch_id, events.c.seq > after_seq)
        .order_by(events.c.seq)
        .limit(limit)
    ).all()  # fmt: skip
    return [(r.epoch, r.seq, r.kind, r.at, r.data, r.actor) for r in rows]


def epoch_starts(conn: Connection, branch_id: str, epochs: Sequence[str]) -> dict[str, int]:
    """The first seq the node's log holds of each of these epochs."""
    if not epochs:
        return {}
    rows = conn.execute(
        select(events.c.epoch, func.min(events.c.seq))
        .where(events.c.branch_id == branch_id, events.c.epoch.in_(epochs))
        .group_by(events.c.epoch)
    ).all()
    return {epoch: int(first) for epoch, first in rows}


def node_head(conn: Connection, branch_id: str) -> tuple[int, datetime | None]:
    """The node's newest event: its seq and when it happened."""
    row = conn.execute(
        select(events.c.seq, events.c.at)
        .where(events.c.branch_id == branch_id)
        .order_by(events.c.seq.desc())
        .limit(1)
    ).one_or_none()
    return (int(row.seq), row.at) if row else (0, None)


async def link_status(conn: AsyncConnection, now: datetime, stale_after_s: float) -> Any:
    """`link_rows` on an async read connection (for the national view)."""
    return await conn.run_sync(link_rows, now, stale_after_s)
