"""The event log: every state change appends one event, numbered per branch, in its transaction."""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from queue_server.domain.public import public_ticket
from queue_server.errors import BranchNodeOwned
from queue_server.store.audit import record, record_events
from queue_server.store.database import PENDING_EVENTS
from queue_server.store.reports.cursors import reports_applied_seq
from queue_server.store.schema import branch_streams, events
from queue_server.store.schema_replication import node_acks
from queue_server.store.statements import upsert_insert
from rigi_protocol.wire import compact_json

# Keys of a counter event that a public board never gets: the visit's id and staff names.
_NOT_PUBLIC = frozenset({"current_ticket_id", "operator", "previous_operator"})


@dataclass(frozen=True)
class Event:
    """One change of a branch, as stored and as sent to clients. Its encodings are made once
    and then sent as-is to every connection (no slots: `cached_property` keeps them)."""

    branch: str
    epoch: str
    seq: int
    kind: str
    at: datetime
    data: dict[str, Any]

    def to_message(self) -> dict[str, Any]:
        return {
            "type": "event",
            "branch": self.branch,
            "epoch": self.epoch,
            "seq": self.seq,
            "kind": self.kind,
            "at": self.at.isoformat(),
            "data": self.data,
        }

    def to_json(self) -> str:
        return self.encoded

    @cached_property
    def encoded(self) -> str:
        """The event as a JSON text frame, encoded on first use and then reused."""
        return compact_json(self.to_message())

    @cached_property
    def public_encoded(self) -> str:
        """The frame for public boards, made once for all of them: a ticket's id (the key to its
        status page and to cancelling it) becomes its board key; a counter's current ticket id
        is left out; other events (staff, devices, print jobs) keep their `seq`, so a board sees
        no gap, but travel without their data, so names never reach a public screen."""
        data: dict[str, Any] = {}
        if self.kind.startswith("ticket."):
            data = dict(self.data)
            data["ticket"] = public_ticket(self.data["ticket"])
        elif self.kind.startswith("counter."):
            data = {k: v for k, v in self.data.items() if k not in _NOT_PUBLIC}
        return compact_json(self.to_message() | {"data": data})

    @classmethod
    def from_json(cls, text: str) -> Event:
        message = json.loads(text)
        event = cls(
            branch=message["branch"],
            epoch=message["epoch"],
            seq=message["seq"],
            kind=message["kind"],
            at=datetime.fromisoformat(message["at"]),
            data=message["data"],
        )
        event.__dict__["encoded"] = text  # the publisher's encoding: no need to make it again
        return event


@dataclass(frozen=True, slots=True)
class StreamHead:
    epoch: str
    seq: int


def take_seqs(conn: Connection, branch_id: str, count: int = 1) -> StreamHead:
    """Take the branch's next `count` sequence numbers; returns the last of them. On PostgreSQL
    this row lock also orders the branch's transactions, so take it last, after any ticket row
    locks (no lock cycles). A branch its node serves is refused here, the one door every write
    of a branch passes: its stream is the node's, mirrored (`store.replication`).

    The epoch offered is kept only when the branch's stream is first made. It is 128 bits of the
    interpreter's generator (reseeded in a forked child), not `uuid4`: `os.urandom` is a system
    call that lets go of the interpreter lock on every event (docs/benchmarks.md, issue 18,
    n18day); an epoch tells streams apart, it is no secret."""
    epoch = f"{random.getrandbits(128):032x}"
    params = {"branch_id": branch_id, "epoch": epoch, "count": count, "step": count}
    row = conn.execute(_take_seqs(conn.dialect.name), params).one()
    if row.node_owned:
        raise BranchNodeOwned(
            "This branch is served by its own node at the centre: issue, call and print there.",
            branch=branch_id,
        )
    return StreamHead(row.epoch, row.last_seq)


@functools.cache
def _take_seqs(dialect: str) -> Any:
    """The sequence upsert of a dialect, built once (see store/statements.py for why)."""
    insert = upsert_insert(dialect)(branch_streams)
    return (
        insert.values(
            branch_id=bindparam("branch_id"), epoch=bindparam("epoch"), last_seq=bindparam("count")
        )
        .on_conflict_do_update(
            index_elements=[branch_streams.c.branch_id],
            set_={"last_seq": branch_streams.c.last_seq + bindparam("step")},
        )
        .returning(branch_streams.c.epoch, branch_streams.c.last_seq, branch_streams.c.node_owned)
    )


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append: what happened, when, its data, and who did it (`actor` is stored for
    the audit log and never sent to the feeds)."""

    kind: str
    at: datetime
    data: dict[str, Any]
    actor: str | None = None


def append_events(conn: Connection, branch_id: str, new: Sequence[NewEvent]) -> list[Event]:
    """Store events with the branch's next sequence numbers, in order, inside the caller's
    transaction: one sequence update and one multi-row insert however many there are. Inside
    `Database.transaction` they are published after its commit."""
    head = take_seqs(conn, branch_id, len(new))
    first = head.seq - len(new) + 1
    stored = [
        Event(branch_id, head.epoch, first + offset, item.kind, item.at, item.data)
        for offset, item in enumerate(new)
    ]
    conn.execute(
        events.insert(),
        [
            {
                "branch_id": branch_id,
                "epoch": event.epoch,
                "seq": event.seq,
                "kind": event.kind,
                "at": event.at,
                "data": compact_json(event.data),
                "actor": item.actor,
            }
            for event, item in zip(stored, new, strict=True)
        ],
    )
    record_events(conn, branch_id, [(i.kind, i.at, i.data, i.actor) for i in new])
    pending = conn.info.get(PENDING_EVENTS)
    if pending is not None:
        pending.extend(stored)
    return stored


def append_event(
    conn: Connection,
    branch_id: str,
    kind: str,
    at: datetime,
    data: dict[str, Any],
    actor: str | None = None,
) -> Event:
    """Store one event with the branch's next sequence number, inside the caller's transaction."""
    return append_events(conn, branch_id, [NewEvent(kind, at, data, actor)])[0]


def record_branch_change(
    conn: Connection, branch_id: str, kind: str, at: datetime, data: dict[str, Any], actor: str
) -> Event | None:
    """A change of a branch's people or devices: an event of the branch (audited with it, and
    telling its open feeds), or, for a branch its node serves, an audit row only: the stream
    is the node's, and the change reaches the node down its link (`replication.down`)."""
    owned = conn.execute(
        select(branch_streams.c.node_owned).where(branch_streams.c.branch_id == branch_id)
    ).scalar()
    if owned:
        target = data.get("username") or data.get("device", {}).get("name") or data.get("device_id")
        record(conn, at=at, actor=actor, kind=kind, branch_id=branch_id, target=target,
               detail=data)  # fmt: skip
        return None
    return append_event(conn, branch_id, kind, at, data, actor)


_HEAD = select(branch_streams.c.epoch, branch_streams.c.last_seq).where(
    branch_streams.c.branch_id == bindparam("branch_id")
)


def current_head(conn: Connection, branch_id: str) -> StreamHead | None:
    """The branch's newest epoch and sequence number (None before its first event)."""
    row = conn.execute(_HEAD, {"branch_id": branch_id}).one_or_none()
    return StreamHead(row.epoch, row.last_seq) if row else None


async def stream_head(conn: AsyncConnection, branch_id: str) -> StreamHead | None:
    """`current_head` on an async read connection."""
    return await conn.run_sync(current_head, branch_id)


async def events_after(
    conn: AsyncConnection, branch_id: str, after_seq: int, limit: int
) -> Sequence[Event] | None:
    """Events after `after_seq` in order, or None when some of them are no longer kept."""
    rows = (
        await conn.execute(
            select(events)
            .where(events.c.branch_id == branch_id, events.c.seq > after_seq)
            .order_by(events.c.seq)
            .limit(limit + 1)
        )
    ).all()
    if len(rows) > limit or (rows and rows[0].seq != after_seq + 1):
        return None
    return [Event(r.branch_id, r.epoch, r.seq, r.kind, r.at, json.loads(r.data)) for r in rows]


def prune_events(conn: Connection, branch_id: str, keep: int, *, kept_after: bool = False) -> int:
    """Drop all but the newest `keep` events of a branch; older gaps resync by snapshot. With
    `kept_after`, never an event that reports have not applied yet (see `reports_applied_seq`),
    nor, on a branch node, one central has not acknowledged yet (`node_acks`)."""
    newest = conn.execute(
        select(func.max(events.c.seq)).where(events.c.branch_id == branch_id)
    ).scalar()
    if newest is None or newest <= keep:
        return 0
    last = newest - keep
    if kept_after:
        last = min(last, reports_applied_seq(conn, branch_id))
        shipped = conn.execute(
            select(node_acks.c.seq).where(node_acks.c.branch_id == branch_id)
        ).scalar_one_or_none()
        if shipped is not None:
            last = min(last, shipped)
    result = conn.execute(
        delete(events).where(events.c.branch_id == branch_id, events.c.seq <= last)
    )
    return result.rowcount or 0
