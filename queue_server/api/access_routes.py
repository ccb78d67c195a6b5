"""Sign-in, device tokens, users and the audit log, declared as endpoints like the rest."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from queue_server.access import credentials, device_setup, people
from queue_server.access.middleware import allowed_origin
from queue_server.access.principal import PEOPLE, Principal, Role
from queue_server.access.ratelimit import Limit
from queue_server.access.sessions import COOKIE_NAME, SESSION_MAX_AGE_S
from queue_server.access.signin import check_sign_in, sign_in_failed, sign_in_succeeded
from queue_server.api.http import Endpoint, json_response, principal_of
from queue_server.errors import Forbidden, Unauthorized, UnsupportedMediaType
from queue_server.store.schema import events

if TYPE_CHECKING:
    from queue_server.app import Rigi

log = logging.getLogger(__name__)
AUDIT_PAGE = 200
STAFF_ACTORS = ("operator:", "manager:", "admin:")
SIGN_IN_CONCURRENCY = 1  # password checks at once per process (argon2: ~50 ms of a core)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Login(_Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class NewDevice(_Body):
    role: Literal["kiosk", "display", "printer"]
    name: str = Field(min_length=1, max_length=100)


class NewUser(_Body):
    username: str = Field(pattern=r"^[A-Za-z0-9_.-]{2,64}$")
    password: str = Field(min_length=10, max_length=256)
    role: Literal["operator", "manager", "admin"]
    branch: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")


class ChangeRole(_Body):
    role: Literal["operator", "manager", "admin"]
    branch: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")


class AllowedCounters(_Body):
    counters: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]] = Field(
        max_length=people.MAX_ALLOWED_COUNTERS
    )


class NewPassword(_Body):
    old: str = Field(min_length=1, max_length=256)
    new: str = Field(min_length=1, max_length=256)


class PersonView(BaseModel):
    id: str
    username: str
    role: str
    branch: str | None
    active: bool
    created_at: str
    must_change_password: bool
    allowed_counters: list[str]


class PasswordReset(BaseModel):
    user_id: str
    username: str
    one_time_password: str


class UserView(BaseModel):
    id: str
    username: str
    role: str
    branch: str | None


class SessionView(BaseModel):
    user: UserView
    csrf_token: str
    password_change_required: bool = False


class DeviceView(BaseModel):
    id: str
    branch: str
    role: str
    name: str
    created_by: str
    created_at: str
    revoked_at: str | None
    last_seen_at: str | None = None
    health: dict[str, Any] | None = None


class NewDeviceView(BaseModel):
    device: DeviceView
    token: str
    setup_url: str | None
    setup_qr_svg: str | None


class RecentAction(BaseModel):
    seq: int
    at: str
    actor: str
    kind: str
    counter_id: str | None
    ticket: str | None


def _rigi(request: Request) -> Any:
    return request.app.state.rigi


def _session_view(principal: Principal, csrf_token: str) -> dict[str, Any]:
    user = {"id": principal.id, "username": principal.name, "role": principal.role.value}  # type: ignore[union-attr]
    return {
        "user": user | {"branch": principal.branch},
        "csrf_token": csrf_token,
        "password_change_required": principal.must_change_password,
    }


def _refuse_cross_site_sign_in(request: Request) -> None:
    """Sign-in takes JSON from the server's own pages only: a form or `text/plain` body from
    another site (login CSRF: signing a victim in as the attacker) never gets this far."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaType(
            "Send the sign-in as JSON (Content-Type: application/json).", code="json_required"
        )
    settings = _rigi(request).settings
    if not allowed_origin(request.headers, request.url.scheme, settings.allowed_origins):
        raise Forbidden("Sign in from this server's own pages.", code="origin")


async def _sign_in_slots(request: Request) -> asyncio.Semaphore:
    """At most SIGN_IN_CONCURRENCY password checks at once: argon2 is CPU-bound by design,
    and a flood of sign-ins must not take every core from the queue."""
    slots = getattr(request.app.state, "sign_in_slots", None)
    if slots is None:
        slots = request.app.state.sign_in_slots = asyncio.Semaphore(SIGN_IN_CONCURRENCY)
    return slots


async def login(request: Request, body: Login) -> Response:
    rigi = _rigi(request)
    _refuse_cross_site_sign_in(request)
    address = request.client.host if request.client else "unknown"
    per_user = Limit.parse(rigi.settings.login_rate)
    per_address = Limit.parse(rigi.settings.login_rate_address)
    await check_sign_in(rigi.limiter, body.username, address, per_address)
    async with await _sign_in_slots(request):
        principal = await rigi.accounts.login(body.username, body.password)
    if principal is None:
        await sign_in_failed(rigi.limiter, body.username, address, per_user, per_address)
        log.warning("failed sign-in for %r from %s", body.username, address)
        raise Unauthorized("Wrong username or password.", code="bad_credentials")
    await sign_in_succeeded(rigi.limiter, body.username)
    version = await rigi.accounts.session_version(principal.id)
    log.info("%s signed in from %s", principal.actor, address)
    return _with_session(request, principal, version)


def _with_session(request: Request, principal: Principal, version: int) -> Response:
    """The session's answer, with a new session cookie at `version`."""
    rigi = _rigi(request)
    cookie, session = rigi.sessions.issue(principal.id, version)
    response = json_response(_session_view(principal, session.csrf_token))
    response.set_cookie(
        COOKIE_NAME,
        cookie,
        max_age=SESSION_MAX_AGE_S,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https" or rigi.settings.env == "production",
    )
    return response


async def change_password(request: Request, body: NewPassword) -> Response:
    """The signed-in person's new password (after a reset, the only thing they may do). Their
    other sessions end; this one goes on with a new cookie."""
    rigi = _rigi(request)
    principal = principal_of(request)
    if principal.role not in PEOPLE:
        raise Forbidden("Only people have passwords.", code="forbidden_role")
    version = await credentials.change_own_password(
        rigi.database, rigi.accounts.clock, principal, body.old, body.new
    )
    if principal.id is not None:
        rigi.accounts.forget_person(principal.id)
    changed = dataclasses.replace(principal, must_change_password=False)
    return _with_session(request, changed, version)


async def read_session(request: Request) -> dict[str, Any]:
    principal = principal_of(request)
    return _session_view(principal, principal.csrf_token or "")


async def logout(request: Request) -> Response:
    principal = principal_of(request)
    await _rigi(request).accounts.end_sessions(principal.id)
    if principal.id is not None:
        await _sessions_changed(_rigi(request), principal.id)
    response = json_response({"user": None})
    response.delete_cookie(COOKIE_NAME)
    return response


async def create_user(request: Request, body: NewUser) -> Response:
    by = principal_of(request)
    role = Role(body.role)
    if by.role is not Role.ADMIN and (role is not Role.OPERATOR or body.branch != by.branch):
        raise Forbidden("A manager may add operators of their own branch only.")
    if body.branch is not None:
        _rigi(request).catalog.branch(body.branch)
    user = await _rigi(request).accounts.create_user(
        body.username, body.password, role, body.branch, by=by.actor
    )
    return json_response(user, 201)


async def create_device(request: Request, branch: str, body: NewDevice) -> Response:
    rigi = _rigi(request)
    rigi.catalog.branch(branch)
    role = Role(body.role)
    view, token, _ = await rigi.accounts.create_device(
        branch, role, body.name, by=principal_of(request).actor
    )
    link = device_setup.setup_link(str(request.base_url), branch, role, token)
    qr = device_setup.qr_svg(link) if link else None
    answer = {"device": view, "token": token, "setup_url": link, "setup_qr_svg": qr}
    return json_response(answer, 201)


async def list_devices(request: Request, branch: str) -> list[dict[str, Any]]:
    """The branch's devices with when each was last seen and, where printing runs, the health
    of the printers that serve it."""
    rigi = _rigi(request)
    rigi.catalog.branch(branch)
    listed = await rigi.accounts.list_devices(branch)
    printers = await rigi.printing.jobs.printers(branch) if rigi.printing is not None else None
    return device_setup.with_health(listed, printers)


async def revoke_device(request: Request, device_id: str) -> dict[str, Any]:
    rigi = _rigi(request)
    view, _ = await rigi.accounts.revoke_device(device_id, by=principal_of(request))
    return view  # type: ignore[no-any-return]


async def list_people(request: Request) -> list[dict[str, Any]]:
    return await people.list_people(_rigi(request).database, principal_of(request))


async def _sessions_changed(rigi: Rigi, user_id: str) -> None:
    """The person's row changed and their sessions may have ended: this process reads it
    afresh, and their feeds that carry no branch's events (the national view's) are checked at
    once, in every process (which also forget the row: `national.follow_people`)."""
    rigi.accounts.forget_person(user_id)
    if rigi.national is not None:
        await rigi.national.sessions_changed(user_id)


async def disable_person(request: Request, user_id: str) -> dict[str, Any]:
    rigi = _rigi(request)
    view = await people.disable_person(rigi.database, rigi.accounts.clock, user_id,
                                       principal_of(request))  # fmt: skip
    await _sessions_changed(rigi, user_id)
    return view


async def change_role(request: Request, user_id: str, body: ChangeRole) -> dict[str, Any]:
    rigi = _rigi(request)
    view = await people.change_role(
        rigi.database, rigi.accounts.clock, rigi.catalog, user_id, Role(body.role), body.branch,
        principal_of(request),
    )  # fmt: skip
    await _sessions_changed(rigi, user_id)
    return view


async def set_counters(request: Request, user_id: str, body: AllowedCounters) -> dict[str, Any]:
    rigi = _rigi(request)
    view = await people.set_allowed_counters(
        rigi.database, rigi.accounts.clock, rigi.catalog, user_id, list(body.counters),
        principal_of(request),
    )  # fmt: skip
    await _sessions_changed(rigi, user_id)
    return view


async def reset_password(request: Request, user_id: str) -> dict[str, Any]:
    rigi = _rigi(request)
    answer = await credentials.reset_password(
        rigi.database, rigi.accounts.clock, user_id, principal_of(request)
    )
    await _sessions_changed(rigi, user_id)
    return answer


async def audit_log(request: Request, branch: str) -> list[dict[str, Any]]:
    """Every operator and manager action at the branch, newest first: the event log's actors."""
    rigi = _rigi(request)
    rigi.catalog.branch(branch)
    staff = events.c.actor.startswith(STAFF_ACTORS[0])
    for prefix in STAFF_ACTORS[1:]:
        staff = staff | events.c.actor.startswith(prefix)
    async with rigi.database.read() as conn:
        rows = await conn.execute(
            select(events.c.seq, events.c.at, events.c.actor, events.c.kind, events.c.data)
            .where(events.c.branch_id == branch, staff)
            .order_by(events.c.seq.desc())
            .limit(AUDIT_PAGE)
        )
        entries = []
        for row in rows:
            data = json.loads(row.data)
            ticket = data.get("ticket") or {}
            entries.append(
                {
                    "seq": row.seq,
                    "at": row.at.isoformat(),
                    "actor": row.actor,
                    "kind": row.kind,
                    "counter_id": data.get("counter_id") or ticket.get("counter_id"),
                    "ticket": ticket.get("label"),
                }
            )
    return entries


ACCESS_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", "/api/v1/session", login, "Sign in", body=Login, response=SessionView,
             errors=(401, 403, 415, 429), tags=("access",)),
    Endpoint("GET", "/api/v1/session", read_session, "The signed-in person",
             response=SessionView, access="signed_in", tags=("access",)),
    Endpoint("POST", "/api/v1/session/logout", logout, "Sign out everywhere",
             access="signed_in", tags=("access",)),
    Endpoint("POST", "/api/v1/users", create_user, "Add a person", body=NewUser,
             response=UserView, status=201, access="manager", errors=(404, 409),
             tags=("access",)),
    Endpoint("POST", "/api/v1/branches/{branch}/devices", create_device,
             "Add a kiosk, display or printer agent; its token is shown once", body=NewDevice,
             response=NewDeviceView, status=201, access="manager", errors=(404,),
             tags=("access",)),
    Endpoint("GET", "/api/v1/branches/{branch}/devices", list_devices, "The branch's devices",
             response=list[DeviceView], access="manager", errors=(404,), tags=("access",)),
    Endpoint("POST", "/api/v1/devices/{device_id}/revoke", revoke_device,
             "Revoke a device: its feeds close within seconds", response=DeviceView,
             access="manager", errors=(404, 409), tags=("access",)),
    Endpoint("GET", "/api/v1/people", list_people,
             "The people you manage (admin: everyone; manager: their branch's operators)",
             response=list[PersonView], access="manager", tags=("people",)),
    Endpoint("POST", "/api/v1/people/{user_id}/disable", disable_person,
             "Disable a person: every session and open feed of theirs ends at once",
             access="manager", errors=(404, 409), tags=("people",)),
    Endpoint("POST", "/api/v1/people/{user_id}/role", change_role,
             "Change a person's role or branch (a manager: operators of their branch only); "
             "their sessions end", body=ChangeRole, response=PersonView, access="manager",
             errors=(404, 409, 422), tags=("people",)),
    Endpoint("POST", "/api/v1/people/{user_id}/counters", set_counters,
             "The counters an operator may open (an empty list: any counter of the branch)",
             body=AllowedCounters, response=PersonView, access="manager",
             errors=(404, 409, 422), tags=("people",)),
    Endpoint("POST", "/api/v1/people/{user_id}/reset-password", reset_password,
             "Reset a password: a one-time password, shown once; the person must choose a new "
             "one at next sign-in", response=PasswordReset, access="manager", errors=(404,),
             tags=("people",)),
    Endpoint("POST", "/api/v1/session/password", change_password,
             "Choose a new password (the old one, and a new one that meets the policy)",
             body=NewPassword, response=SessionView, access="signed_in", errors=(403, 422),
             tags=("access",)),
    Endpoint("GET", "/api/v1/branches/{branch}/audit", audit_log,
             "Recent staff actions from the replay history (the audit trail: /api/v1/audit)",
             response=list[RecentAction],
             access="manager", errors=(404,), tags=("access",)),
)  # fmt: skip
