"""Managing people: list them and disable one. An admin manages everyone; a branch manager the
operators of their own branch; operators nobody. Disabling ends every session at once: the
session version moves on (the next request is 401) and a `user.disabled` event closes the
person's open feeds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update

from queue_server.access.principal import Principal, Role
from queue_server.errors import Conflict, NotFound
from queue_server.store import audit
from queue_server.store.change import Clock
from queue_server.store.database import Database
from queue_server.store.events import append_event
from queue_server.store.schema import users

DISABLED = "user.disabled"


def _manages(by: Principal, row: Any) -> bool:
    if by.role is Role.ADMIN:
        return True
    return by.role is Role.MANAGER and row.role == Role.OPERATOR and row.branch_id == by.branch


def _view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "username": row.username,
        "role": row.role,
        "branch": row.branch_id,
        "active": bool(row.active),
        "created_at": row.created_at.isoformat(),
    }


async def list_people(database: Database, by: Principal) -> list[dict[str, Any]]:
    """The people `by` may manage (a manager also sees themself), by username."""

    def read(conn: Connection) -> list[dict[str, Any]]:
        query = select(users).order_by(users.c.username)
        if by.role is not Role.ADMIN:
            query = query.where(users.c.branch_id == by.branch)
        return [_view(r) for r in conn.execute(query) if _manages(by, r) or r.id == by.id]

    return await database.reading(read)


async def disable_person(
    database: Database, clock: Clock, user_id: str, by: Principal
) -> dict[str, Any]:
    """Disable a person and end all their sessions and feeds, in one audited transaction."""
    now = clock()

    def disable(conn: Connection) -> dict[str, Any]:
        row = conn.execute(select(users).where(users.c.id == user_id)).one_or_none()
        if row is None or not _manages(by, row):
            raise NotFound("No such person among those you manage.", code="unknown_person")
        if row.id == by.id:
            raise Conflict("You cannot disable yourself.", code="cannot_disable_self")
        if not row.active:
            raise Conflict(f"{row.username} is already disabled.", code="already_disabled")
        conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(active=False, session_version=users.c.session_version + 1)
        )
        data = {"user_id": row.id, "username": row.username, "role": row.role}
        if row.branch_id:
            append_event(conn, row.branch_id, DISABLED, now, data, by.actor)  # audited with it
        else:
            audit.record(
                conn, at=now, actor=by.actor, kind=DISABLED, branch_id=None,
                target=row.username, detail=data,
            )  # fmt: skip
        return _view(row) | {"active": False}

    return await database.transaction(disable)
