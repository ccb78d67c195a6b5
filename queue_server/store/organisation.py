"""The organisation's stored versions (DESIGN.md, decision 9).

The whole organisation (agencies, services, branches with their counters, hours and screens) is
one validated JSON document; every change writes the next version in full, in one transaction
with its audit row and one `organisation.changed` event per branch it touches. Whole documents
keep "nothing half-applied" trivial, make any version an export, and cost little: the shipped
organisation is about 150 kB, written only when somebody edits it. The version number is the
primary key, so two processes that edit at once cannot both write version N+1: the loser's
transaction fails and is retried on the newer document (`OrganisationEditRace`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, Integer, String, Table, Text, func, select

from queue_server.store.audit import record
from queue_server.store.events import NewEvent, append_events
from queue_server.store.schema import UTCDateTime, branch_streams, metadata

organisation_versions = Table(
    "organisation_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("source", String(16), nullable=False),  # seed | edit | import
    Column("actor", String(100)),
    Column("summary", String(200), nullable=False),
    Column("document", Text, nullable=False),
)

CHANGED = "organisation.changed"
"""The event kind every branch an edit touches gets, so its feeds refresh their services."""
SUMMARY_MAX = 200


@dataclass(frozen=True, slots=True)
class StoredOrganisation:
    version: int
    source: str
    at: datetime
    document: dict[str, Any]  # parsed afresh on every read: the caller's own to change
    text: str  # as stored (`canonical`)


def canonical(document: dict[str, Any]) -> str:
    """The stored text of a document, in its own key order (a counter's `serves` reads as it
    was written, and an export of it writes the same file)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def newest_version(conn: Connection) -> int:
    """The newest stored version, 0 when nothing is stored yet."""
    return int(conn.execute(select(func.max(organisation_versions.c.version))).scalar() or 0)


def newest(conn: Connection) -> StoredOrganisation | None:
    row = conn.execute(
        select(organisation_versions).order_by(organisation_versions.c.version.desc()).limit(1)
    ).one_or_none()
    if row is None:
        return None
    return StoredOrganisation(
        row.version, row.source, row.at, json.loads(row.document), row.document
    )


def store_version(
    conn: Connection,
    document: dict[str, Any],
    *,
    at: datetime,
    source: str,
    actor: str | None,
    summary: str,
    branches: Iterable[str],
    audit_branch: str | None = None,
) -> int:
    """Write `document` as the next version, with one audit row and an `organisation.changed`
    event on each of `branches` this database writes (published after the commit by
    `Database.transaction`); a node-owned branch hears of it from its node."""
    version = newest_version(conn) + 1
    summary = summary[:SUMMARY_MAX]
    conn.execute(
        organisation_versions.insert().values(
            version=version,
            at=at,
            source=source,
            actor=actor,
            summary=summary,
            document=canonical(document),
        )
    )
    if actor is not None:
        record(
            conn,
            at=at,
            actor=actor,
            kind=f"organisation.{source}",
            branch_id=audit_branch,
            target=summary,
            detail={"version": version},
        )
    data = {"version": version, "summary": summary}
    for branch_id in _written_here(conn, branches):
        # The audit row above is the record; these events only tell the feeds.
        append_events(conn, branch_id, [NewEvent(CHANGED, at, data)])
    return version


def _written_here(conn: Connection, branches: Iterable[str]) -> list[str]:
    """The branches whose streams this database writes: a node-owned branch's stream is its
    node's (`take_seqs` refuses it); the node appends its own `organisation.changed` when the
    new version comes down the link (`replication.down`)."""
    wanted = sorted(set(branches))
    if not wanted:
        return []
    owned = set(
        conn.execute(
            select(branch_streams.c.branch_id).where(
                branch_streams.c.branch_id.in_(wanted), branch_streams.c.node_owned
            )
        ).scalars()
    )
    return [branch_id for branch_id in wanted if branch_id not in owned]
