"""Users and device tokens in the database. Tokens are shown once; only their hash is kept."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import time
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.exc import IntegrityError

from queue_server.access.passwords import hash_password, verify_password
from queue_server.access.principal import DEVICES, PEOPLE, Principal, Role
from queue_server.errors import Conflict, NotFound, ValidationFailed
from queue_server.store.audit import record
from queue_server.store.change import Clock
from queue_server.store.database import Database
from queue_server.store.events import Event, record_branch_change
from queue_server.store.schema import devices, users

TOKEN_PREFIX = "rigi_"
# Usernames are ASCII letters, digits, '.', '_' and '-' (no spaces, markup or look-alikes),
# kept in lower case so that `ADMIN` can never stand beside `admin`.
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$")
DEVICE_CACHE_S = 2.0  # a revoked token stops working within this many seconds everywhere
# A person's row, read for a session cookie, is kept this long: every request of a signed-in
# person read `users` (5-9% of the server's CPU under the national view's load). A change made
# in this process (sign-out, disable, role, password, counters) is forgotten at once
# (`forget_person`); other processes are told on the bus's `sessions` channel, and a lost
# message is bounded by this. A cookie newer than the kept row reads it again.
SESSION_CACHE_S = 2.0
CACHE_ENTRIES = 10_000
# A device's `last_seen_at` is written when it authenticates, at most once per this many seconds:
# a minute is fine enough to tell a dead kiosk, and costs one small write per device a minute.
LAST_SEEN_EVERY_S = 60.0


def token_hash(token: str) -> str:
    """Device tokens carry 256 random bits, so a plain SHA-256 is enough (no slow hash)."""
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    def __init__(self, database: Database, clock: Clock) -> None:
        self.database = database
        self.clock = clock
        self._device_cache: dict[str, tuple[float, Principal | None]] = {}
        # user id → (read at, session version, active, principal)
        self._people: dict[str, tuple[float, int, bool, Principal]] = {}
        self._forgotten = 0  # counts `forget_person` calls: a read begun before one is not kept

    # ---- people ----------------------------------------------------------------------------

    async def create_user(
        self, username: str, password: str, role: Role, branch: str | None, *, by: str
    ) -> dict[str, Any]:
        username = valid_username(username)
        if role not in PEOPLE:
            raise ValidationFailed(f"{role} is not a role for people.", code="bad_role")
        if role is not Role.ADMIN and branch is None:
            raise ValidationFailed("Operators and managers belong to a branch.", code="no_branch")
        try:
            password_hash = await asyncio.to_thread(hash_password, password, [username])
        except ValueError as exc:
            raise ValidationFailed(str(exc).capitalize() + ".", code="weak_password") from None
        branch_id = branch if role is not Role.ADMIN else None
        created_at = self.clock()
        row = {
            "id": uuid.uuid4().hex,
            "username": username,
            "password_hash": password_hash,
            "role": role.value,
            "branch_id": branch_id,
            "active": True,
            "session_version": 1,
            "created_at": created_at,
        }

        def store(conn: Connection) -> None:
            conn.execute(users.insert().values(**row))
            if branch_id:
                data = {"username": username, "role": role.value}
                record_branch_change(conn, branch_id, "user.created", created_at, data, by)

        try:
            await self.database.transaction(store)
        except IntegrityError:
            raise Conflict(f"The username {username!r} is taken.", code="username_taken") from None
        return _user_view(row)

    async def login(self, username: str, password: str) -> Principal | None:
        """The principal for a correct username and password, else None (same time either way)."""
        async with self.database.read() as conn:
            rows = (
                await conn.execute(
                    select(users).where(func.lower(users.c.username) == username.lower())
                )
            ).all()
        # Names are unique ignoring case since they are stored in lower case; an older
        # database may still hold `Nino` beside `nino`: the exact spelling wins there.
        row = next((r for r in rows if r.username == username), rows[0] if rows else None)
        stored = row.password_hash if row is not None and row.active else None
        # argon2 is deliberately slow (tens of ms of CPU): keep it off the event loop.
        if not await asyncio.to_thread(verify_password, stored, password) or row is None:
            return None
        return _user_principal(row)

    async def user_for_session(
        self, user_id: str, version: int, *, fresh: bool = False
    ) -> Principal | None:
        """The person of a session cookie, unless disabled or the session was ended. The row
        is kept SESSION_CACHE_S (`fresh`: read it now)."""
        now = time.monotonic()
        kept = None if fresh else self._people.get(user_id)
        if kept is None or now - kept[0] >= SESSION_CACHE_S or kept[1] < version:
            forgotten = self._forgotten
            async with self.database.read() as conn:
                row = (await conn.execute(select(users).where(users.c.id == user_id))).one_or_none()
            if row is None:
                return None
            kept = (now, int(row.session_version), bool(row.active), _user_principal(row))
            if forgotten == self._forgotten:  # nothing changed meanwhile: keep it
                if len(self._people) >= CACHE_ENTRIES:
                    self._people.clear()
                self._people[user_id] = kept
        _, current, active, principal = kept
        return principal if active and current == version else None

    def forget_person(self, user_id: str | None = None) -> None:
        """Read this person's row (None: everyone's) afresh at their next request: it changed."""
        self._forgotten += 1
        if user_id is None:
            self._people.clear()
        else:
            self._people.pop(user_id, None)

    async def session_version(self, user_id: str) -> int:
        async with self.database.read() as conn:
            return int(
                (
                    await conn.execute(select(users.c.session_version).where(users.c.id == user_id))
                ).scalar_one()
            )

    async def end_sessions(self, user_id: str) -> None:
        """Logging out ends every session of the user, also copies of the cookie."""
        statement = (
            update(users)
            .where(users.c.id == user_id)
            .values(session_version=users.c.session_version + 1)
        )
        await self.database.transaction(lambda conn: conn.execute(statement))
        self.forget_person(user_id)

    # ---- devices ---------------------------------------------------------------------------

    async def create_device(
        self, branch: str, role: Role, name: str, *, by: str
    ) -> tuple[dict[str, Any], str, Event | None]:
        """A new device and its token. The token is returned once and never stored."""
        if role not in DEVICES:
            raise ValidationFailed(f"{role} is not a device role.", code="bad_role")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        row = {
            "id": uuid.uuid4().hex,
            "branch_id": branch,
            "role": role.value,
            "name": name,
            "token_hash": token_hash(token),
            "created_by": by,
            "created_at": now,
            "revoked_at": None,
        }
        view = _device_view(row)

        def store(conn: Connection) -> Event | None:
            conn.execute(devices.insert().values(**row))
            return record_branch_change(conn, branch, "device.created", now, {"device": view}, by)

        event = await self.database.transaction(store)
        return view, token, event

    async def list_devices(self, branch: str) -> list[dict[str, Any]]:
        async with self.database.read() as conn:
            rows = await conn.execute(
                select(devices).where(devices.c.branch_id == branch).order_by(devices.c.created_at)
            )
            return [_device_view(r._mapping) for r in rows]

    async def revoke_device(
        self, device_id: str, *, by: Principal
    ) -> tuple[dict[str, Any], Event | None]:
        now: datetime = self.clock()

        def revoke(conn: Connection) -> tuple[dict[str, Any], Event | None]:
            row = conn.execute(select(devices).where(devices.c.id == device_id)).one_or_none()
            if row is None or (by.role is not Role.ADMIN and row.branch_id != by.branch):
                raise NotFound("No such device.", code="unknown_device")
            if row.revoked_at is not None:
                raise Conflict("This device is already revoked.", code="already_revoked")
            conn.execute(update(devices).where(devices.c.id == device_id).values(revoked_at=now))
            view = _device_view(dict(row._mapping) | {"revoked_at": now})
            data = {"device_id": device_id}
            if row.role == Role.NODE.value:
                # The branch's stream is its node's (docs/offline.md): audited, no event.
                record(conn, at=now, actor=by.actor, kind="device.revoked",
                       branch_id=row.branch_id, target=row.name, detail=data)  # fmt: skip
                return view, None
            event = record_branch_change(conn, row.branch_id, "device.revoked", now, data, by.actor)
            return view, event

        view, event = await self.database.transaction(revoke)
        self._device_cache.clear()
        return view, event

    def forget_devices(self) -> None:
        """Read every device token afresh (after its rows changed from elsewhere)."""
        self._device_cache.clear()

    async def device_for_token(self, token: str) -> Principal | None:
        """The device a token belongs to, unless revoked. Cached for a moment: bearer requests
        are frequent and revocation is rare."""
        digest = token_hash(token)
        now = time.monotonic()
        cached = self._device_cache.get(digest)
        if cached is not None and now - cached[0] < DEVICE_CACHE_S:
            return cached[1]
        async with self.database.read() as conn:
            row = (
                await conn.execute(select(devices).where(devices.c.token_hash == digest))
            ).one_or_none()
        principal = None
        if row is not None and row.revoked_at is None:
            principal = Principal(Role(row.role), row.id, row.name, row.branch_id)
            await self._seen(row.id, row.last_seen_at)
        if len(self._device_cache) > 10_000:
            self._device_cache.clear()
        self._device_cache[digest] = (now, principal)
        return principal

    async def _seen(self, device_id: str, last_seen_at: datetime | None) -> None:
        """Note that a device was seen, unless that was noted less than a minute ago."""
        now = self.clock()
        if last_seen_at is not None and (now - last_seen_at).total_seconds() < LAST_SEEN_EVERY_S:
            return
        statement = update(devices).where(devices.c.id == device_id).values(last_seen_at=now)
        await self.database.transaction(lambda conn: conn.execute(statement))


def valid_username(username: str) -> str:
    """The username as stored (lower case), or ValidationFailed `bad_username`."""
    if not USERNAME.fullmatch(username):
        raise ValidationFailed(
            "A username is 2 to 64 letters (a-z), digits, '.', '_' or '-', starting with a "
            "letter or a digit.",
            code="bad_username",
        )
    return username.lower()


def _user_principal(row: Any) -> Principal:
    return Principal(
        Role(row.role),
        row.id,
        row.username,
        row.branch_id,
        must_change_password=bool(row.must_change_password),
        allowed_counters=tuple(json.loads(row.allowed_counters or "[]")),
    )


def _user_view(row: Any) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "username", "role")} | {"branch": row["branch_id"]}


def _device_view(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "branch": row["branch_id"],
        "role": row["role"],
        "name": row["name"],
        "created_by": row["created_by"],
        "created_at": row["created_at"].isoformat(),
        "revoked_at": row["revoked_at"].isoformat() if row["revoked_at"] else None,
        "last_seen_at": row["last_seen_at"].isoformat() if row.get("last_seen_at") else None,
    }
