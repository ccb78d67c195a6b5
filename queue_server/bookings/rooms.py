"""Conference rooms of the Community Centres: a public calendar of free times, a request form
(institution, purpose, time, e-mail, the declaration that the institution is neither a political
party nor a religious institution), and the centre manager's approval or refusal, answered by
e-mail in the requester's language. The public calendar never says who asked.

Which rooms a centre lends, their seats and their hours are the organisation's (`Branch.rooms`,
edited with the branch); a centre with none configured lends one room, `room`, on its own
opening hours (else the booking hours), as before rooms were configurable."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from queue_server.access.ratelimit import Limit
from queue_server.api.http import Endpoint, json_response, principal_of
from queue_server.bookings.service import Unavailable
from queue_server.catalog.models import WEEKDAYS, Branch, Language, LocalizedText, Room
from queue_server.domain.calendar import clock_time
from queue_server.errors import BadRequest, Conflict, NotFound, RateLimited, ValidationFailed
from queue_server.notify.channels.base import ChannelError, Outgoing
from queue_server.notify.contacts import contact_of
from queue_server.store import audit
from queue_server.store import rooms as queries

if TYPE_CHECKING:
    from queue_server.app import Rigi

log = logging.getLogger(__name__)

STEP = timedelta(minutes=30)  # requests start and end on the half hour
SHORTEST, LONGEST = timedelta(minutes=30), timedelta(hours=8)
DAYS_AHEAD = 60
SEND_TIMEOUT_S = 10.0
TEXTS: dict[str, dict[str, str]] = {
    "received": {
        "ka": "Rigi: საკონფერენციო დარბაზის მოთხოვნა მიღებულია ({when}). პასუხს ელფოსტით მიიღებთ.",
        "en": "Rigi: your conference room request ({when}) is received. We will answer by e-mail.",
        "ru": "Rigi: заявка на конференц-зал ({when}) получена. Ответ придёт по e-mail.",
        "az": "Rigi: konfrans zalı sorğunuz ({when}) qəbul edildi. Cavab e-poçtla gələcək.",
        "hy": "Rigi: համաժողովների դահլիճի հայտը ({when}) ստացվել է։ Պատասխանը՝ էլ. փոստով։",
    },
    "approved": {
        "ka": "Rigi: საკონფერენციო დარბაზი დაჯავშნილია: {when}.",
        "en": "Rigi: the conference room is booked for you: {when}.",
        "ru": "Rigi: конференц-зал забронирован для вас: {when}.",
        "az": "Rigi: konfrans zalı sizin üçün sifariş edildi: {when}.",
        "hy": "Rigi: համաժողովների դահլիճն ամրագրված է ձեզ համար՝ {when}։",
    },
    "declined": {
        "ka": "Rigi: საკონფერენციო დარბაზის მოთხოვნა ({when}) უარყოფილია. {reason}",
        "en": "Rigi: your conference room request ({when}) is declined. {reason}",
        "ru": "Rigi: заявка на конференц-зал ({when}) отклонена. {reason}",
        "az": "Rigi: konfrans zalı sorğunuz ({when}) rədd edildi. {reason}",
        "hy": "Rigi: համաժողովների դահլիճի հայտը ({when}) մերժվել է։ {reason}",
    },
}
SUBJECT = {"ka": "საკონფერენციო დარბაზი", "en": "Conference room", "ru": "Конференц-зал",
           "az": "Konfrans zalı", "hy": "Համաժողովների դահլիճ"}  # fmt: skip


DEFAULT_ROOM = Room(id="room", name=LocalizedText(**SUBJECT))
ROOM_ID = r"^[a-z][a-z0-9_-]{0,63}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoomRequest(_Body):
    institution: str = Field(min_length=2, max_length=200)
    purpose: str = Field(min_length=2, max_length=500)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    contact: str = Field(max_length=254, description="an e-mail address for the answer")
    declaration: bool = Field(
        description="the institution is neither a political party nor a religious institution"
    )
    language: Language = "ka"
    room: str | None = Field(default=None, pattern=ROOM_ID, description="default: the first")


class Decline(_Body):
    reason: str = Field(default="", max_length=300)


class DayQuery(_Body):
    date: date
    room: str | None = Field(default=None, pattern=ROOM_ID, description="default: the first")


class Decision(BaseModel):
    id: str
    room_id: str
    status: Literal["pending", "approved", "declined"]
    starts_at: datetime
    ends_at: datetime
    notified: bool | None = None


def _room_branch(request: Request, branch_id: str) -> Any:
    branch = request.app.state.rigi.catalog.branch(branch_id)
    if branch.kind != "community_centre":
        raise NotFound("This branch lends no conference room.", code="no_room")
    return branch


def _rooms_of(centre: Branch) -> tuple[Room, ...]:
    return centre.rooms if centre.rooms is not None else (DEFAULT_ROOM,)


def _the_room(request: Request, branch_id: str, room_id: str | None) -> tuple[Branch, Room]:
    """The centre and the room asked for (its first when none is named)."""
    centre = _room_branch(request, branch_id)
    rooms = _rooms_of(centre)
    if not rooms:
        raise NotFound("This centre lends no conference room.", code="no_room")
    for room in rooms:
        if room_id in (None, room.id):
            return centre, room
    raise NotFound("This centre has no such room.", code="unknown_room", room=room_id)


def _room_view(room: Room) -> dict[str, Any]:
    return {"id": room.id, "name": room.name.model_dump(), "capacity": room.capacity}


def _periods(request: Request, centre: Branch, room: Room, day: date) -> list[tuple[datetime, ...]]:
    """When the room may be booked on `day`, in UTC: its own hours, else the centre's opening
    hours (the bookings' rule: its hours and holidays, else the booking hours)."""
    if day in centre.holidays:
        return []
    if room.hours:
        local = [
            (clock_time(p.opens), clock_time(p.closes))
            for p in room.hours.get(WEEKDAYS[day.weekday()], ())  # type: ignore[call-overload]
        ]
    else:
        opening = request.app.state.rigi.bookings.opening(centre, day)
        local = [(h.opens, h.closes) for h in opening if day.weekday() in h.weekdays]
    zone = ZoneInfo(centre.timezone)
    return [
        tuple(datetime.combine(day, moment, zone).astimezone(UTC) for moment in period)
        for period in local
    ]


async def room_day(request: Request, branch: str) -> dict[str, Any]:
    """The room's free and held times of a day (no names: who asked is never public)."""
    try:
        day = date.fromisoformat(request.query_params.get("date", ""))
    except ValueError:
        raise BadRequest("Give ?date=YYYY-MM-DD.", code="bad_date") from None
    centre, room = _the_room(request, branch, request.query_params.get("room"))
    rigi = request.app.state.rigi
    answer: dict[str, Any] = {
        "branch_id": branch,
        "date": day.isoformat(),
        "room": _room_view(room),
        "rooms": [_room_view(r) for r in _rooms_of(centre)],
        "free": [],
        "held": [],
    }
    now = rigi.store.clock()
    for opens, closes in _periods(request, centre, room, day):
        held = await rigi.database.reading(
            lambda c, o=opens, e=closes: queries.busy(c, branch, room.id, o, e)
        )
        cursor = max(opens, _next_step(now, opens))
        for row in held:
            if row.starts_at > cursor:
                answer["free"].append(_interval(cursor, row.starts_at))
            cursor = max(cursor, row.ends_at)
        if cursor < closes:
            answer["free"].append(_interval(cursor, closes))
        answer["held"] += [_held(r) for r in held]
    return answer


def _interval(starts_at: datetime, ends_at: datetime) -> dict[str, str]:
    return {"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()}


def _held(row: Any) -> dict[str, str]:
    return {
        "starts_at": row.starts_at.isoformat(),
        "ends_at": row.ends_at.isoformat(),
        "status": row.status,
    }


def _next_step(now: datetime, anchor: datetime) -> datetime:
    """The first half hour (counted from `anchor`) not before `now`."""
    if now <= anchor:
        return anchor
    steps = -((anchor - now) // STEP)
    return anchor + steps * STEP


def _check_time(
    request: Request, centre: Branch, room: Room, body: RoomRequest
) -> tuple[datetime, datetime]:
    starts, ends = body.starts_at.astimezone(UTC), body.ends_at.astimezone(UTC)
    now = request.app.state.rigi.store.clock()
    day = starts.astimezone(ZoneInfo(centre.timezone)).date()
    aligned = all(
        (moment - datetime.combine(day, time(0), ZoneInfo(centre.timezone))) % STEP == timedelta()
        for moment in (starts, ends)
    )
    inside = any(opens <= starts and ends <= closes for opens, closes in _periods(
        request, centre, room, day
    ))  # fmt: skip
    if (
        not inside
        or not aligned
        or not (SHORTEST <= ends - starts <= LONGEST)
        or starts < now
        or day > now.date() + timedelta(days=DAYS_AHEAD)
    ):
        raise ValidationFailed(
            "Pick a free time on the half hour, inside the centre's hours, 30 minutes to 8 "
            "hours long, within the next 60 days.",
            code="bad_room_time",
        )
    return starts, ends


async def request_room(request: Request, branch: str, body: RoomRequest) -> Response:
    """A request for the room; it holds its time until the manager decides."""
    centre, room = _the_room(request, branch, body.room)
    if not body.declaration:
        raise ValidationFailed(
            "Confirm that the institution is neither a political party nor a religious one.",
            code="declaration_required",
        )
    rigi = request.app.state.rigi
    contact = contact_of(None, body.contact)
    channel = rigi.notify.channels.get("email") if rigi.notify else None
    if channel is None:
        raise Unavailable("Answers go by e-mail, which is off here.", code="channel_unavailable")
    starts, ends = _check_time(request, centre, room, body)
    address = request.client.host if request.client else "unknown"
    try:
        await rigi.limiter.hit(f"room:{address}", Limit.parse(rigi.settings.booking_rate_address))
    except RateLimited as limited:
        raise RateLimited(
            "Too many requests from here; try again later.",
            retry_after=limited.retry_after,
            code="booking_rate_limited",
        ) from None
    now = rigi.store.clock()
    row = {
        "id": uuid.uuid4().hex, "branch_id": branch, "room_id": room.id,
        "starts_at": starts, "ends_at": ends,
        "institution": body.institution.strip(), "purpose": body.purpose.strip(),
        "contact_hash": rigi.notify.vault.hash(contact.channel, contact.value),
        "contact_secret": rigi.notify.vault.seal(contact), "language": body.language,
        "status": queries.PENDING, "created_at": now,
    }  # fmt: skip

    def store(conn: Any) -> None:
        queries.lock_room(conn, branch, room.id)
        if queries.overlapping(conn, branch, room.id, starts, ends):
            raise Conflict("This time is taken; pick a free one.", code="room_taken")
        queries.insert(conn, row)

    await rigi.database.transaction(store)
    await _tell(rigi, row, "received")
    return json_response(
        {"id": row["id"], "room_id": room.id, "status": queries.PENDING,
         "starts_at": starts.isoformat(), "ends_at": ends.isoformat()}, 201,
    )  # fmt: skip


async def _tell(rigi: Rigi, row: Any, what: str, reason: str = "") -> bool:
    """E-mail the requester; a failure is logged (without the address) and answered False."""
    data = row if isinstance(row, dict) else row._mapping
    contact = rigi.notify.vault.open("email", data["contact_secret"]) if rigi.notify else None
    channel = rigi.notify.channels.get("email") if rigi.notify else None
    if contact is None or channel is None:
        return False
    language = data["language"]
    zone = ZoneInfo(rigi.catalog.branch(data["branch_id"]).timezone)
    local = data["starts_at"].astimezone(zone)
    when = f"{local:%Y-%m-%d %H:%M}–{data['ends_at'].astimezone(zone):%H:%M}"
    text = TEXTS[what].get(language, TEXTS[what]["en"]).format(when=when, reason=reason).strip()
    try:
        async with asyncio.timeout(SEND_TIMEOUT_S):
            await channel.send(Outgoing(contact.value, SUBJECT[language], text,
                                        f"room-{data['id']}-{what}"))  # fmt: skip
    except (ChannelError, TimeoutError) as exc:
        log.warning("room request %s: %s not sent: %s", data["id"], what, type(exc).__name__)
        return False
    return True


async def list_requests(request: Request, branch: str) -> list[dict[str, Any]]:
    """The centre's requests from today on, for its manager (never the e-mail address)."""
    _room_branch(request, branch)
    rigi = request.app.state.rigi
    since = rigi.store.clock() - timedelta(days=1)
    rows = await rigi.database.reading(lambda c: queries.requests_of(c, branch, since))
    return [
        {key: (value.isoformat() if isinstance(value, datetime) else value)
         for key, value in row._mapping.items() if key not in ("contact_hash", "contact_secret")}
        for row in rows
    ]  # fmt: skip


async def approve(request: Request, branch: str, request_id: str) -> dict[str, Any]:
    return await _decide(request, branch, request_id, queries.APPROVED, "")


async def decline(request: Request, branch: str, request_id: str, body: Decline) -> dict[str, Any]:
    return await _decide(request, branch, request_id, queries.DECLINED, body.reason.strip())


async def _decide(
    request: Request, branch: str, request_id: str, status: str, reason: str
) -> dict[str, Any]:
    _room_branch(request, branch)
    rigi = request.app.state.rigi
    actor = principal_of(request).actor
    now = rigi.store.clock()

    def body(conn: Any) -> Any:
        row = queries.request_row(conn, request_id, branch)
        queries.lock_room(conn, branch, row.room_id)
        if status == queries.APPROVED and queries.overlapping(
            conn, branch, row.room_id, row.starts_at, row.ends_at, (queries.APPROVED,),
            other_than=row.id,
        ):  # fmt: skip
            raise Conflict("Another request for this time is approved.", code="room_taken")
        if not queries.decide(conn, request_id, status=status, decided_at=now,
                              decided_by=actor, reason=reason or None):  # fmt: skip
            raise Conflict("This request has been decided already.", code="room_decided")
        # Audited with the decision: the institution and the time, never the requester's address.
        decided = queries.request_row(conn, request_id, branch)
        audit.record(
            conn,
            at=now,
            actor=actor,
            kind=f"room.{status}",
            branch_id=branch,
            target=decided.institution,
            detail={
                "request_id": decided.id,
                "starts_at": decided.starts_at.isoformat(),
                "ends_at": decided.ends_at.isoformat(),
                "reason": reason or None,
            },
        )
        return decided

    row = await rigi.database.transaction(body)
    notified = await _tell(rigi, row, status, reason)
    return {"id": row.id, "room_id": row.room_id, "status": row.status,
            "starts_at": row.starts_at.isoformat(),
            "ends_at": row.ends_at.isoformat(), "notified": notified}  # fmt: skip


R = "/api/v1/branches/{branch}/room"
ROOM_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", R, room_day, "A Community Centre's conference room: free times of a day",
             errors=(400, 404), tags=("rooms",), query=DayQuery),
    Endpoint("POST", R + "/requests", request_room, "Ask for the conference room",
             body=RoomRequest, response=Decision, status=201, errors=(404, 409, 422, 429, 503),
             tags=("rooms",)),
    Endpoint("GET", R + "/requests", list_requests, "The room's requests (the centre manager)",
             access="manager", errors=(401, 403, 404), tags=("rooms",)),
    Endpoint("POST", R + "/requests/{request_id}/approve", approve, "Approve a room request",
             response=Decision, access="manager", errors=(401, 403, 404, 409), tags=("rooms",)),
    Endpoint("POST", R + "/requests/{request_id}/decline", decline, "Decline a room request",
             body=Decline, response=Decision, access="manager", errors=(401, 403, 404, 409),
             tags=("rooms",)),
)  # fmt: skip
