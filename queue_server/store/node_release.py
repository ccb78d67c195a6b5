"""Central takes a branch back from its node (docs/offline.md, "When a node dies").

A centre's node can die for good (a disk, a flood, a theft). Central already holds the branch's
stream as far as the node shipped it, and its `tickets` and counters as they stood then
(`store.replica_tickets`), so it can serve the branch itself from that point: its stream goes on
at the last replicated seq, under the same epoch, and its numbering after the node's numbers.

While the node still speaks to central this is refused unless forced: two authorities for one
queue would double visits. Releasing revokes the node's token, so a node that comes back cannot
write the branch again; the events it never shipped are reported as lost, in the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update

from queue_server.errors import Conflict
from queue_server.store.audit import record
from queue_server.store.replication import NotNodeOwned
from queue_server.store.schema import branch_streams, devices
from queue_server.store.schema_replication import node_epochs, node_links

NODE_RELEASED = "node.released"
NODE_ROLE = "node"


class NodeStillConnected(Conflict):
    code = "node_connected"


@dataclass(frozen=True, slots=True)
class Release:
    """What a release did: where central's own stream of the branch goes on, and what the node
    held that central never received (lost with it)."""

    branch: str
    epoch: str
    seq: int
    unshipped_events: int
    node_was_connected: bool
    forced: bool
    revoked_tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "branch": self.branch,
            "epoch": self.epoch,
            "seq": self.seq,
            "unshipped_events": self.unshipped_events,
            "node_was_connected": self.node_was_connected,
            "forced": self.forced,
            "revoked_tokens": self.revoked_tokens,
        }


def release_branch(
    conn: Connection,
    branch_id: str,
    *,
    now: datetime,
    stale_after_s: float,
    force: bool,
    actor: str,
) -> Release:
    """Make a node-owned branch central's again, in one transaction (locks the link first, so a
    batch of the node being applied finishes before or waits and is then refused)."""
    link = conn.execute(
        select(node_links).where(node_links.c.branch_id == branch_id).with_for_update()
    ).one_or_none()
    if link is None:
        raise NotNodeOwned("This branch has no node: central serves it already.")
    silent = (now - link.last_contact_at).total_seconds() if link.last_contact_at else None
    connected = silent is not None and silent <= stale_after_s
    if connected and not force:
        raise NodeStillConnected(
            "The branch's node is still connected: stop it first, or release the branch with "
            "force if it must be taken back now.",
            silent_s=round(silent or 0.0, 1),
        )
    stream = conn.execute(
        update(branch_streams)
        .where(branch_streams.c.branch_id == branch_id)
        .values(node_owned=False)
        .returning(branch_streams.c.epoch, branch_streams.c.last_seq)
    ).one()
    revoked = conn.execute(
        update(devices)
        .where(
            devices.c.branch_id == branch_id,
            devices.c.role == NODE_ROLE,
            devices.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    ).rowcount
    conn.execute(delete(node_epochs).where(node_epochs.c.branch_id == branch_id))
    conn.execute(delete(node_links).where(node_links.c.branch_id == branch_id))
    release = Release(
        branch=branch_id,
        epoch=stream.epoch,
        seq=int(stream.last_seq),
        unshipped_events=max(0, (link.node_head_seq or 0) - link.node_seq),
        node_was_connected=connected,
        forced=force,
        revoked_tokens=int(revoked or 0),
    )
    record(conn, at=now, actor=actor, kind=NODE_RELEASED, branch_id=branch_id,
           target=branch_id, detail=release.to_dict())  # fmt: skip
    return release
