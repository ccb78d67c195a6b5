"""The audit trail: who (a person or a device) did what, when, where, to what.

Rows are written inside the transaction of the action itself, so an action and its audit row
commit together or not at all. `append_events` records every event whose actor is a person or a
device; actions without an event (a person disabled, a password reset) call `record`. The trail
is pruned by age only (`prune_audit`), never with the replay history, and holds no personal
data of citizens: a ticket appears as its printed label.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select

from queue_server.store.schema import audit
from rigi_protocol.wire import compact_json

# Actors are written `role:name` (see access.principal.Principal.actor); these roles are audited.
PEOPLE_ROLES = ("admin", "manager", "operator")
DEVICE_ROLES = ("kiosk", "display", "printer")
# What of an event's data the trail keeps: staff and device facts, never a citizen's.
_DETAIL_KEYS = (
    "counter_id",
    "state",
    "pause_reason",
    "operator",
    "previous_operator",
    "username",
    "role",
    "branch",
    "device_id",
    "reason",
)
_TICKET_KEYS = ("label", "service_id", "status", "outcome", "counter_id", "priority")
_TARGET_KEYS = ("counter_id", "username", "device_id", "target")
TARGET_MAX = 100
EventFacts = tuple[str, datetime, dict[str, Any], str | None]  # kind, at, data, actor
PAGE_MAX = 500


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of a trail read; None means any. `before` pages backwards by row id."""

    branch: str | None = None
    person: str | None = None
    device: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None
    limit: int = 100


def split_actor(actor: str | None) -> tuple[str, str] | None:
    """`operator:nino` → (`operator`, `nino`); None for an actor that is not audited (a citizen,
    an anonymous phone, the system, a test)."""
    if not actor or ":" not in actor:
        return None
    role, name = actor.split(":", 1)
    if role not in PEOPLE_ROLES + DEVICE_ROLES:
        return None
    return role, name


def record(
    conn: Connection,
    *,
    at: datetime,
    actor: str,
    kind: str,
    branch_id: str | None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write one audit row in the caller's transaction (no-op for an actor that is not staff or
    a device)."""
    rows = _rows([(branch_id, at, actor, kind, target, detail or {})])
    if rows:
        conn.execute(audit.insert(), rows)


def record_events(conn: Connection, branch_id: str, items: Sequence[EventFacts]) -> None:
    """Audit the events just appended, `(kind, at, data, actor)` each; one insert for all."""
    rows = event_rows(branch_id, items)
    if rows:
        conn.execute(audit.insert(), rows)


def event_rows(branch_id: str, items: Sequence[EventFacts]) -> list[dict[str, Any]]:
    """The audit rows of events (those whose actor is audited), ready to insert."""
    entries = []
    for kind, at, data, actor in items:
        target, detail = _describe(data)
        entries.append((branch_id, at, actor, kind, target, detail))
    return _rows(entries)


def _rows(
    entries: Sequence[tuple[str | None, datetime, str | None, str, str | None, dict[str, Any]]],
) -> list[dict[str, Any]]:
    rows = []
    for branch_id, at, actor, kind, target, detail in entries:
        who = split_actor(actor)
        if who is None:
            continue
        role, name = who
        rows.append(
            {
                "at": at,
                "branch_id": branch_id,
                "actor": actor,
                "role": role,
                "person": name if role in PEOPLE_ROLES else None,
                "device": name if role in DEVICE_ROLES else None,
                "kind": kind,
                "target": target[:TARGET_MAX] if target else None,
                "detail": compact_json(detail),
            }
        )
    return rows


def _describe(data: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The target and the small detail of an event's data."""
    detail = {k: data[k] for k in _DETAIL_KEYS if data.get(k) is not None}
    ticket = data.get("ticket")
    if isinstance(ticket, dict):
        detail |= {f"ticket_{k}" if k == "status" else k: ticket[k]
                   for k in _TICKET_KEYS if ticket.get(k) is not None}  # fmt: skip
    device = data.get("device")
    if isinstance(device, dict):
        detail |= {"device_id": device.get("id"), "role": device.get("role")}
        return str(device.get("name")), detail
    if isinstance(ticket, dict) and ticket.get("label"):
        return str(ticket["label"]), detail
    for key in _TARGET_KEYS:
        if data.get(key):
            return str(data[key]), detail
    return None, detail


def read(conn: Connection, query: AuditQuery) -> list[dict[str, Any]]:
    """Rows matching `query`, newest first, at most `query.limit` (capped at PAGE_MAX)."""
    statement = select(audit).order_by(audit.c.id.desc()).limit(min(query.limit, PAGE_MAX))
    if query.branch is not None:
        statement = statement.where(audit.c.branch_id == query.branch)
    if query.person is not None:
        statement = statement.where(audit.c.person == query.person)
    if query.device is not None:
        statement = statement.where(audit.c.device == query.device)
    if query.kind is not None:
        # `counter` matches every counter.* kind; `counter.opened` only itself.
        if "." in query.kind:
            statement = statement.where(audit.c.kind == query.kind)
        else:
            statement = statement.where(audit.c.kind.startswith(query.kind + "."))
    if query.since is not None:
        statement = statement.where(audit.c.at >= query.since)
    if query.until is not None:
        statement = statement.where(audit.c.at < query.until)
    if query.before is not None:
        statement = statement.where(audit.c.id < query.before)
    return [_view(row) for row in conn.execute(statement)]


def _view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "branch": row.branch_id,
        "actor": row.actor,
        "role": row.role,
        "person": row.person,
        "device": row.device,
        "kind": row.kind,
        "target": row.target,
        "detail": json.loads(row.detail),
    }


def prune_audit(conn: Connection, older_than: datetime) -> int:
    """Drop audit rows from before `older_than`: the trail is kept by age, whatever the volume."""
    result = conn.execute(delete(audit).where(audit.c.at < older_than))
    return result.rowcount or 0
