"""The notification API: subscribing a ticket, the "late" tap, the SMS gateway's inbound
webhook, and the outbox's state for staff."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from queue_server.api.http import Endpoint, principal_of
from queue_server.catalog.models import Language
from queue_server.errors import BadRequest, NotFound, Unauthorized
from queue_server.notify.broadcast import Broadcast, Broadcasted, broadcast
from queue_server.notify.contacts import SMS, contact_of, normalise_phone
from queue_server.notify.texts import readable
from queue_server.store import notify as queries

SIGNATURE_HEADER = "X-Rigi-Signature"
MESSAGES_SHOWN = 200
# SMS answers, lower-cased: English, Georgian, Russian (and the Latin spellings people type).
LATE_WORDS = frozenset({"late", "გვიანდება", "დავაგვიანებ", "დაგვიანება", "опаздываю", "опоздаю",
                        "gvianda", "opazdyvayu"})  # fmt: skip
CANCEL_WORDS = frozenset({"cancel", "stop", "გაუქმება", "გააუქმე", "отмена", "отменить",
                          "gaukmeba", "otmena"})  # fmt: skip


class PushKeys(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=100)


class PushSubscription(BaseModel):
    """What the browser's `PushSubscription.toJSON()` gives (expirationTime is ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    endpoint: str = Field(max_length=1000)
    keys: PushKeys


class Subscribe(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    push: PushSubscription | None = None
    language: Language | None = None


class Subscribed(BaseModel):
    ticket_id: str
    channel: str
    language: str


class InboundSms(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    sender: str = Field(alias="from", max_length=32)
    text: str = Field(max_length=1000)


def _rigi(request: Request) -> Any:
    return request.app.state.rigi


async def subscribe(request: Request, ticket_id: str, body: Subscribe) -> dict[str, Any]:
    """The holder of a ticket (its page, or the kiosk that printed it) leaves a contact."""
    push = body.push.model_dump() if body.push is not None else None
    contact = contact_of(body.phone, body.email, push, _rigi(request).settings.notify_push_hosts)
    chosen = await _rigi(request).notify.subscribe(ticket_id, contact, body.language)
    return {"ticket_id": ticket_id, "channel": contact.channel, "language": chosen}


async def late(request: Request, ticket_id: str) -> dict[str, Any]:
    """The citizen will be late: move the ticket back once (RIGI_NOTIFY_LATE_MINUTES)."""
    return await _delay(request, ticket_id, principal_of(request).actor)


async def _delay(request: Request, ticket_id: str, actor: str) -> dict[str, Any]:
    rigi = _rigi(request)
    now = rigi.store.clock()
    minutes = rigi.settings.notify_late_minutes
    return await rigi.database.transaction(  # type: ignore[no-any-return]
        lambda c: queries.delay_ticket(c, rigi.catalog, ticket_id, now, minutes, actor)
    )


async def sms_inbound(request: Request) -> dict[str, Any]:
    """A reply from a citizen, forwarded by the SMS gateway and signed with the shared token:
    `X-Rigi-Signature: hex(HMAC-SHA256(token, body))`."""
    rigi = _rigi(request)
    token = rigi.settings.notify_inbound_token
    raw = await request.body()
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if token is None or not hmac.compare_digest(
        hmac.new(token.get_secret_value().encode(), raw, hashlib.sha256).hexdigest(), signature
    ):
        raise Unauthorized("The gateway's signature is missing or wrong.", code="bad_signature")
    try:
        reply = InboundSms.model_validate(json.loads(raw))
    except (ValueError, TypeError):
        raise BadRequest('Send {"from": …, "text": …}.', code="malformed_sms") from None
    number = normalise_phone(reply.sender)
    words = reply.text.strip().lower().split()
    word = words[0].strip(".!,") if words else ""
    if word not in LATE_WORDS | CANCEL_WORDS:
        raise BadRequest("Answer LATE or CANCEL.", code="unknown_keyword")
    contact_hash = rigi.notify.vault.hash(SMS, number)
    ticket_id = await rigi.database.reading(lambda c: queries.open_ticket_of(c, contact_hash))
    if ticket_id is None:
        raise NotFound("No waiting ticket for this number.", code="unknown_sender")
    if word in CANCEL_WORDS:
        change = await rigi.store.cancel_ticket(ticket_id, "citizen:sms")
        return {"action": "cancel", "ticket": change.result["label"]}
    view = await _delay(request, ticket_id, "citizen:sms")
    return {"action": "late", "ticket": view["label"]}


async def branch_messages(request: Request, branch: str) -> list[dict[str, Any]]:
    """The branch's newest messages and their state (queued, sending, sent, failed); a
    broadcast reads as kind `broadcast` with its title in the five languages."""
    rigi = _rigi(request)
    rigi.catalog.branch(branch)
    found = await rigi.database.reading(lambda c: queries.message_states(c, branch, MESSAGES_SHOWN))
    shown = []
    for message in found:
        params = message.pop("params")
        shown.append(message | {"label": params.get("label")} | readable(message["kind"], params))
    return shown


async def branch_broadcast(request: Request, branch: str, body: Broadcast) -> dict[str, Any]:
    """A manager tells everyone waiting (for a service) who left a contact: delay, early closing."""
    return await broadcast(_rigi(request), branch, body, principal_of(request).actor)


T = "/api/v1/tickets/{ticket_id}"
NOTIFY_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", T + "/subscribe", subscribe,
             "Leave a phone number or e-mail to be told when the turn is near, called, finished",
             body=Subscribe, response=Subscribed, errors=(404, 409, 422, 429),
             tags=("notifications",)),
    Endpoint("POST", T + "/late", late, "Running late: move the ticket back once",
             errors=(404, 409), tags=("notifications",)),
    Endpoint("POST", "/api/v1/notify/sms-inbound", sms_inbound,
             "An SMS reply (LATE or CANCEL), from the SMS gateway, signed",
             errors=(400, 401, 404, 409, 422), tags=("notifications",),
             headers=(SIGNATURE_HEADER,)),
    Endpoint("POST", "/api/v1/branches/{branch}/notify/broadcast", branch_broadcast,
             "Tell everyone waiting (for a service) who left a contact: a delay, early closing",
             body=Broadcast, response=Broadcasted, access="manager", errors=(403, 404, 422, 429),
             tags=("notifications",)),
    Endpoint("GET", "/api/v1/branches/{branch}/notify/messages", branch_messages,
             "Messages of the branch and their state", access="staff", errors=(404,),
             tags=("notifications",)),
)  # fmt: skip
