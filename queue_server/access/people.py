"""Managing people: list them, disable one, change a role or branch, say which counters an
operator may take. An admin manages everyone; a branch manager the operators of their own
branch; operators nobody. Disabling ends every session at once: the session version moves on
(the next request is 401) and a `user.disabled` event closes the person's open feeds. Every
change is one transaction with its audit row."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from queue_server.access.principal import PEOPLE, Principal, Role
from queue_server.catalog.loader import Catalog
from queue_server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from queue_server.store import audit
from queue_server.store.change import Clock
from queue_server.store.database import Database
from queue_server.store.events import record_branch_change
from queue_server.store.schema import users

DISABLED = "user.disabled"
CHANGED = "user.changed"
COUNTERS_SET = "user.counters_set"
MAX_ALLOWED_COUNTERS = 200


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
        "must_change_password": bool(row.must_change_password),
        "allowed_counters": json.loads(row.allowed_counters or "[]"),
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
        record_change(conn, row.branch_id, DISABLED, now, data, by)
        return _view(row) | {"active": False}

    return await database.transaction(disable)


def record_change(
    conn: Connection,
    branch_id: str | None,
    kind: str,
    now: datetime,
    data: dict[str, Any],
    by: Principal,
) -> None:
    """Audit a change to a person: as a branch event (which also tells open feeds) when the
    person belongs to a branch, else as a network-wide audit row (an admin's)."""
    if branch_id:
        record_branch_change(conn, branch_id, kind, now, data, by.actor)  # audited with it
    else:
        audit.record(
            conn, at=now, actor=by.actor, kind=kind, branch_id=None,
            target=data.get("username"), detail=data,
        )  # fmt: skip


def managed_row(conn: Connection, user_id: str, by: Principal) -> Any:
    """The person's row, locked, if `by` manages them; else NotFound (as if absent)."""
    query = select(users).where(users.c.id == user_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    if row is None or not _manages(by, row):
        raise NotFound("No such person among those you manage.", code="unknown_person")
    return row


def may_assign(by: Principal, role: Role, branch: str | None) -> None:
    """Forbidden unless `by` may give someone this role at this branch: an admin any, a
    manager only the operator role at their own branch."""
    if by.role is Role.ADMIN:
        return
    if role is not Role.OPERATOR or branch != by.branch:
        raise Forbidden(
            "A manager may make people operators of their own branch only.",
            code="forbidden_assignment",
        )


async def change_role(
    database: Database,
    clock: Clock,
    catalog: Catalog,
    user_id: str,
    role: Role,
    branch: str | None,
    by: Principal,
) -> dict[str, Any]:
    """Give a person another role or branch. Their sessions end (a role is not changed under
    an open console); the counters they may take are cleared when the branch changes."""
    if role not in PEOPLE:
        raise ValidationFailed(f"{role} is not a role for people.", code="bad_role")
    if role is Role.ADMIN:
        branch = None
    elif branch is None:
        raise ValidationFailed("Operators and managers belong to a branch.", code="no_branch")
    else:
        catalog.branch(branch)
    may_assign(by, role, branch)
    now = clock()

    def change(conn: Connection) -> dict[str, Any]:
        row = managed_row(conn, user_id, by)
        if row.id == by.id:
            raise Conflict("You cannot change your own role.", code="cannot_change_self")
        if row.role == role.value and row.branch_id == branch:
            return _view(row)
        values: dict[str, Any] = {
            "role": role.value,
            "branch_id": branch,
            "session_version": row.session_version + 1,
        }
        if row.branch_id != branch:
            values["allowed_counters"] = None
        conn.execute(update(users).where(users.c.id == user_id).values(**values))
        data = {
            "user_id": row.id,
            "username": row.username,
            "role": role.value,
            "branch": branch,
            "previous_role": row.role,
            "previous_branch": row.branch_id,
        }
        if row.branch_id and row.branch_id != branch:
            record_change(conn, row.branch_id, CHANGED, now, data, by)  # leaves that branch
        record_change(conn, branch, CHANGED, now, data, by)
        changed = dict(row._mapping) | values
        return _view(_Row(changed))

    return await database.transaction(change)


async def set_allowed_counters(
    database: Database,
    clock: Clock,
    catalog: Catalog,
    user_id: str,
    counters: list[str],
    by: Principal,
) -> dict[str, Any]:
    """Which counters an operator may open: counters of their own branch, or none listed for
    any counter of the branch."""
    now = clock()
    wanted = sorted(set(counters))

    def store(conn: Connection) -> dict[str, Any]:
        row = managed_row(conn, user_id, by)
        if row.role != Role.OPERATOR:
            raise Conflict("Only operators are limited to counters.", code="not_an_operator")
        for counter_id in wanted:
            catalog.counter(row.branch_id, counter_id)  # NotFound `unknown_counter`
        stored = json.dumps(wanted) if wanted else None
        conn.execute(update(users).where(users.c.id == user_id).values(allowed_counters=stored))
        data = {"user_id": row.id, "username": row.username, "counters": wanted}
        record_change(conn, row.branch_id, COUNTERS_SET, now, data, by)
        return _view(_Row(dict(row._mapping) | {"allowed_counters": stored}))

    return await database.transaction(store)


def require_counter_allowed(principal: Principal, counter_id: str) -> None:
    """Forbidden `counter_not_allowed` when an operator opens a counter not on their list.
    Managers and admins may open any counter of their reach; an empty list allows any."""
    if principal.role is not Role.OPERATOR or not principal.allowed_counters:
        return
    if counter_id not in principal.allowed_counters:
        raise Forbidden(
            "You may not take this counter. Ask your manager to add it to your counters.",
            code="counter_not_allowed",
        )


class _Row:
    """A mapping read by attribute, like a result row, for a row changed in memory."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
