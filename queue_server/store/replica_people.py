"""People and devices of a node-owned branch, managed at central and sent down the link
(`replication.down`, channel `people`), applied at the node as central holds them.

Central is the authority for them once a branch has a node: an administrator adds, disables or
re-roles a person and adds or revokes a kiosk, display or printer at central, even while the
centre is cut off; the node takes the whole list when its link is up and keeps its last one
while it is down. Only hashes travel (argon2 for passwords, SHA-256 for device tokens), over the
node's authenticated link. A person or device made at the node itself and unknown to central is
left alone. A session already revoked at the node stays revoked (the higher version wins).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from queue_server.store.schema import devices, users
from queue_server.store.statements import upsert_insert

NODE_ROLE = "node"  # the node's own token stays at central
USER_FIELDS = ("username", "password_hash", "role", "branch_id", "active", "session_version",
               "must_change_password", "allowed_counters")  # fmt: skip
DEVICE_FIELDS = ("branch_id", "role", "name", "token_hash", "created_by")


def branch_people(conn: Connection, branch_id: str) -> dict[str, list[dict[str, Any]]]:
    """The branch's people and devices as central holds them, ready for JSON."""
    people = conn.execute(select(users).where(users.c.branch_id == branch_id)).all()
    kit = conn.execute(
        select(devices).where(devices.c.branch_id == branch_id, devices.c.role != NODE_ROLE)
    ).all()
    return {
        "users": [
            {"id": r.id, "created_at": r.created_at.isoformat()}
            | {field: getattr(r, field) for field in USER_FIELDS}
            for r in people
        ],
        "devices": [
            {
                "id": r.id,
                "created_at": r.created_at.isoformat(),
                "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
            }
            | {field: getattr(r, field) for field in DEVICE_FIELDS}
            for r in kit
        ],
    }


def mirror_people(conn: Connection, branch_id: str, people: dict[str, Any]) -> int:
    """Apply central's list at the node; returns how many people and devices changed."""
    changed = 0
    for person in people.get("users", []):
        if person.get("branch_id") != branch_id:
            continue  # only the branch's own: never an administrator, never another branch
        changed += _mirror_user(conn, person)
    for device in people.get("devices", []):
        if device.get("branch_id") == branch_id and device.get("role") != NODE_ROLE:
            changed += _mirror_device(conn, device)
    return changed


def _mirror_user(conn: Connection, person: dict[str, Any]) -> int:
    values = {field: person.get(field) for field in USER_FIELDS}
    if isinstance(values["allowed_counters"], list):
        values["allowed_counters"] = json.dumps(values["allowed_counters"])
    row = conn.execute(select(users).where(users.c.username == person["username"])).one_or_none()
    if row is None:
        created = datetime.fromisoformat(person["created_at"])
        conn.execute(users.insert().values(id=person["id"], created_at=created, **values))
        return 1
    values["session_version"] = max(int(values["session_version"] or 1), row.session_version)
    if all(getattr(row, field) == value for field, value in values.items()):
        return 0
    conn.execute(update(users).where(users.c.id == row.id).values(**values))
    return 1


def _mirror_device(conn: Connection, device: dict[str, Any]) -> int:
    revoked = device.get("revoked_at")
    values = {field: device.get(field) for field in DEVICE_FIELDS} | {
        "revoked_at": datetime.fromisoformat(revoked) if revoked else None
    }
    row = conn.execute(select(devices).where(devices.c.id == device["id"])).one_or_none()
    if row is not None and all(getattr(row, field) == value for field, value in values.items()):
        return 0
    created = datetime.fromisoformat(device["created_at"])
    insert = upsert_insert(conn.dialect.name)(devices)
    conn.execute(
        insert.values(id=device["id"], created_at=created, **values).on_conflict_do_update(
            index_elements=[devices.c.id], set_=values
        )
    )
    return 1
