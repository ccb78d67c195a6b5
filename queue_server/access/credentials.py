"""Passwords after the first: a manager resets a person's password, the person chooses a new
one. A reset hands out a one-time password (shown once to the manager, who passes it on) and
marks the account: that person's sign-in works but every route except choosing a new password
answers `password_change_required` (see `policy.authorize`) until they have chosen one that
meets the policy. Each step is one audited transaction that ends the person's other sessions."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from sqlalchemy import Connection, select, update

from queue_server.access import people
from queue_server.access.passwords import hash_password, verify_password
from queue_server.access.people import managed_row, record_change
from queue_server.access.principal import Principal
from queue_server.errors import ValidationFailed
from queue_server.store.change import Clock
from queue_server.store.database import Database
from queue_server.store.schema import users

PASSWORD_RESET = "user.password_reset"
PASSWORD_CHANGED = "user.password_changed"
# The changes to a person that end their sessions, and so their open feeds, at once.
ENDS_SESSIONS = {
    people.DISABLED: "person disabled",
    people.CHANGED: "role or branch changed",
    PASSWORD_RESET: "password reset",
}
ONE_TIME_PASSWORD_BYTES = 12  # 16 URL-safe characters, 96 random bits: far past the policy


async def reset_password(
    database: Database, clock: Clock, user_id: str, by: Principal
) -> dict[str, Any]:
    """A new one-time password for a person `by` manages; their sessions end at once."""
    one_time = secrets.token_urlsafe(ONE_TIME_PASSWORD_BYTES)
    password_hash = await asyncio.to_thread(hash_password, one_time)
    now = clock()

    def reset(conn: Connection) -> dict[str, Any]:
        row = managed_row(conn, user_id, by)
        conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(
                password_hash=password_hash,
                must_change_password=True,
                session_version=users.c.session_version + 1,
            )
        )
        data = {"user_id": row.id, "username": row.username, "role": row.role}
        record_change(conn, row.branch_id, PASSWORD_RESET, now, data, by)
        return {"user_id": row.id, "username": row.username, "one_time_password": one_time}

    return await database.transaction(reset)


async def change_own_password(
    database: Database, clock: Clock, principal: Principal, old: str, new: str
) -> int:
    """Set the signed-in person's password (the old one must be right, the new one meet the
    policy and differ from it). Returns the new session version: other sessions end."""
    async with database.read() as conn:
        row = (await conn.execute(select(users).where(users.c.id == principal.id))).one()
    if not await asyncio.to_thread(verify_password, row.password_hash, old):
        raise ValidationFailed("The current password is wrong.", code="wrong_password")
    if new == old:
        raise ValidationFailed("Choose a password you have not used here.", code="same_password")
    try:
        password_hash = await asyncio.to_thread(hash_password, new, [row.username])
    except ValueError as exc:
        raise ValidationFailed(str(exc).capitalize() + ".", code="weak_password") from None
    now = clock()

    def store(conn: Connection) -> int:
        version = int(row.session_version) + 1
        conn.execute(
            update(users)
            .where(users.c.id == row.id)
            .values(password_hash=password_hash, must_change_password=False,
                    session_version=version)
        )  # fmt: skip
        data = {"user_id": row.id, "username": row.username, "role": row.role}
        record_change(conn, row.branch_id, PASSWORD_CHANGED, now, data, principal)
        return version

    return await database.transaction(store)
