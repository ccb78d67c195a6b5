"""Who may claim what when a ticket is issued, and whose Idempotency-Key is whose.

Precedence is granted, never declared: priority service comes from a kiosk (the attendant's
device) or a signed-in member of staff; an appointment exists only through a booking, and
until bookings exist only staff may issue one. A phone is anonymous, so it may ask for neither.

An Idempotency-Key belongs to its caller. A device is scoped by its id, a person by their user
id. An anonymous phone is scoped by the random client id its page made once and keeps
(`X-Rigi-Client`, 128+ random bits, in the browser's storage), and a client that sends none
(curl, an old page) by its client address (taken from a trusted proxy only, see
`access/edge.py`). The scope never changes between a request and its retry, so retries stay
idempotent; and guessing another client's key only ever replays one's own keys: to reach
someone else's ticket an attacker would have to guess their client id, or sit behind their
address *and* guess a key the page made at random.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from starlette.requests import Request

from queue_server.access.principal import Principal, Role
from queue_server.domain.tickets import Priority
from queue_server.errors import Forbidden

CLIENT_HEADER = "x-rigi-client"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{22,64}$")  # 22 URL-safe characters: 128 bits


def check_claims(principal: Principal, priority: Priority, appointment_at: datetime | None) -> None:
    """Refuse a precedence the caller may not grant itself (403, nothing is stored)."""
    if (priority is Priority.APPOINTMENT or appointment_at is not None) and not principal.is_person:
        raise Forbidden(
            "Appointments are made through a booking; this ticket cannot claim one.",
            code="appointment_needs_booking",
        )
    if priority is Priority.PRIORITY and principal.role is None:
        raise Forbidden(
            "Priority service is given at the kiosk or by staff in the hall.",
            code="priority_not_allowed",
        )


def held_for_attendant(principal: Principal, priority: Priority, confirm_at_branch: bool) -> bool:
    """Whether a priority ticket asked at a kiosk waits for the attendant: where the branch
    wants their confirmation, the kiosk issues a normal ticket marked "priority requested" and
    a member of staff who has seen the citizen grants it (`store/priority.py`)."""
    return confirm_at_branch and principal.role is Role.KIOSK and priority is Priority.PRIORITY


def caller_scope(request: Request, principal: Principal) -> str:
    """Who owns this request's Idempotency-Key: a device, a person, a phone's client id, or
    (for an anonymous client without one) its address."""
    if principal.role is not None:
        return f"{principal.role.value}:{principal.id}"
    sent = request.headers.get(CLIENT_HEADER, "")
    if _CLIENT_ID.fullmatch(sent):
        return f"client:{sent}"
    return f"address:{request.client.host if request.client else 'unknown'}"


def scoped_key(scope: str, key: str) -> str:
    """The key as stored: a digest of the caller's scope and their key (64 characters, so it
    fits the store's column whatever the scope, and no client id is kept in clear)."""
    return hashlib.sha256(f"{scope}\n{key}".encode()).hexdigest()
