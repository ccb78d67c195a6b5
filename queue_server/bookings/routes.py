"""The bookings API: free slots, book, confirm, reschedule, cancel, and the kiosk's check-in."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from queue_server.access.device_setup import qr_svg
from queue_server.access.principal import Role
from queue_server.api.http import Endpoint, json_response, principal_of
from queue_server.catalog.models import Language
from queue_server.errors import BadRequest, Forbidden
from queue_server.notify.contacts import contact_of


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Book(_Body):
    service: str = Field(max_length=64)
    slot: AwareDatetime
    contact: str = Field(max_length=254, description="a phone number or an e-mail address")
    language: Language = "ka"


class JoinRemote(_Body):
    service: str = Field(max_length=64)
    contact: str = Field(max_length=254, description="a phone number or an e-mail address")
    language: Language = "ka"


class Confirm(_Body):
    code: str = Field(min_length=1, max_length=12)


class Holder(_Body):
    token: str = Field(min_length=1, max_length=256, description="from the confirmation")


class Reschedule(Holder):
    slot: AwareDatetime


class CheckIn(_Body):
    code: str = Field(
        min_length=1, max_length=256, description="the short code, or the token from the QR"
    )


class SlotsQuery(_Body):
    date: date


class FreeSlot(BaseModel):
    slot: datetime
    free: int


class Pending(BaseModel):
    id: str
    kind: str = Field(description="slot: an appointment; remote: a place in today's queue")
    status: str
    branch_id: str
    service_id: str
    slot: datetime
    channel: str
    code_expires_at: datetime


class Confirmed(BaseModel):
    id: str
    kind: str
    status: str
    branch_id: str
    service_id: str
    slot: datetime
    short_code: str
    token: str
    ticket_id: str | None
    activate_by: datetime | None = Field(description="a remote ticket's place is kept until")


class CheckedIn(BaseModel):
    booking_id: str
    kind: str
    late: bool
    message: str
    ticket: dict[str, Any]


def _bookings(request: Request) -> Any:
    return request.app.state.rigi.bookings


async def free_slots(request: Request, branch: str, service: str) -> list[dict[str, Any]]:
    raw = request.query_params.get("date", "")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise BadRequest("Give ?date=YYYY-MM-DD.", code="bad_date") from None
    return await _bookings(request).free_slots(branch, service, day)  # type: ignore[no-any-return]


async def book(request: Request, branch: str, body: Book | JoinRemote) -> Response:
    """A pending booking; the one-time code goes to the contact."""
    request.app.state.rigi.catalog.branch(branch)
    contact = contact_of(*((None, body.contact) if "@" in body.contact else (body.contact, None)))
    address = request.client.host if request.client else "unknown"
    slot = body.slot if isinstance(body, Book) else None
    bookings = _bookings(request)
    view = await bookings.book(branch, body.service, slot, contact, body.language, address)
    return json_response(view, 201)


async def join_remote(request: Request, branch: str, body: JoinRemote) -> Response:
    """A place in today's queue from home, confirmed by a one-time code like a booking and
    activated on arrival; until then it holds nobody back."""
    return await book(request, branch, body)


async def confirm(request: Request, booking_id: str, body: Confirm) -> dict[str, Any]:
    return await _bookings(request).confirm(booking_id, body.code)  # type: ignore[no-any-return]


async def cancel(request: Request, booking_id: str, body: Holder) -> dict[str, Any]:
    return await _bookings(request).cancel(booking_id, body.token)  # type: ignore[no-any-return]


async def reschedule(request: Request, booking_id: str, body: Reschedule) -> dict[str, Any]:
    bookings = _bookings(request)
    return await bookings.reschedule(booking_id, body.token, body.slot)  # type: ignore[no-any-return]


async def booking_qr(request: Request, booking_id: str, body: Holder) -> Response:
    """The check-in QR code of a booking, for its holder's phone. A POST, so the token travels
    in the body and never in an address that logs or caches keep."""
    claim = _bookings(request).keys.verify(body.token)
    if claim is None or claim.booking_id != booking_id:
        raise Forbidden("This booking's token is missing or wrong.", code="bad_booking_token")
    return Response(
        qr_svg(body.token).encode(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "no-store"},
    )


async def check_in(request: Request, branch: str, body: CheckIn) -> Response:
    """At the kiosk (or by staff): the booking becomes a ticket, printed at a kiosk."""
    rigi = request.app.state.rigi
    rigi.catalog.branch(branch)
    principal = principal_of(request)
    answer = await rigi.bookings.check_in(branch, body.code, principal.actor)
    if principal.role is Role.KIOSK:
        answer["ticket"]["print"] = await rigi.print_ticket(answer["ticket"], principal.id)
    return json_response(answer, 201)


B = "/api/v1/branches/{branch}"
K = "/api/v1/bookings/{booking_id}"
BOOKING_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", B + "/services/{service}/slots", free_slots, "Free booking slots of a day",
             response=list[FreeSlot], errors=(400, 404), tags=("bookings",), query=SlotsQuery),
    Endpoint("POST", B + "/bookings", book, "Book a slot; a one-time code is sent to confirm",
             body=Book, response=Pending, status=201, errors=(403, 404, 409, 422, 429, 503),
             tags=("bookings",)),
    Endpoint("POST", B + "/remote", join_remote, "Join today's queue from home (a remote ticket)",
             body=JoinRemote, response=Pending, status=201,
             errors=(403, 404, 409, 422, 429, 503), tags=("bookings",)),
    Endpoint("POST", K + "/confirm", confirm, "Confirm a booking with its one-time code",
             body=Confirm, response=Confirmed, errors=(403, 404, 409, 422), tags=("bookings",)),
    Endpoint("POST", K + "/reschedule", reschedule, "Move a confirmed booking to another slot",
             body=Reschedule, response=Confirmed, errors=(403, 404, 409, 422),
             tags=("bookings",)),
    Endpoint("POST", K + "/cancel", cancel, "Cancel a confirmed booking", body=Holder,
             response=Confirmed, errors=(403, 404, 409, 422), tags=("bookings",)),
    Endpoint("POST", K + "/qr", booking_qr, "The booking's check-in QR code (SVG)", body=Holder,
             errors=(403, 422), tags=("bookings",), media_type="image/svg+xml"),
    Endpoint("POST", B + "/check-in", check_in, "Check a booking in at the kiosk: a ticket",
             body=CheckIn, response=CheckedIn, status=201, access="check_in",
             errors=(404, 409, 422), tags=("bookings",)),
)  # fmt: skip
