"""The API's operations, declared once in `ENDPOINTS`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from queue_server.access import people
from queue_server.access.claims import (
    caller_scope,
    check_claims,
    held_for_attendant,
    scoped_key,
)
from queue_server.access.hall_pass import HALL_PASS_HEADER
from queue_server.access.principal import Role
from queue_server.access.ratelimit import Limit
from queue_server.api import schemas
from queue_server.api.announcements import AnnouncementQuery, announcement_wav
from queue_server.api.feedback import FEEDBACK_ENDPOINTS
from queue_server.api.http import Endpoint, json_response, principal_of
from queue_server.api.nearby import NEARBY_ENDPOINTS
from queue_server.api.unspoken import UNSPOKEN_ENDPOINTS
from queue_server.catalog.models import LANGUAGES
from queue_server.domain.tickets import Priority, TicketAction
from queue_server.errors import BadRequest
from queue_server.store.queue import CounterMode, QueueStore

IDEMPOTENCY_KEY_MAX = 128


def _store(request: Request) -> QueueStore:
    return request.app.state.rigi.store  # type: ignore[no-any-return]


def actor_of(request: Request) -> str:
    """Who acts, as the audit log names them: `operator:nino`, `kiosk:Kiosk 1`, `anonymous`."""
    return principal_of(request).actor


async def _limit_issuing(request: Request) -> None:
    """A bot must not empty the queue: a device or person has its own limit, anonymous phones
    one per client address."""
    rigi = request.app.state.rigi
    principal = principal_of(request)
    settings = rigi.settings
    if principal.id is not None:
        key, limit = f"issue:{principal.id}", settings.issue_rate_device
    else:
        address = request.client.host if request.client else "unknown"
        key, limit = f"issue-addr:{address}", settings.issue_rate_address
    await rigi.limiter.hit(key, Limit.parse(limit))


def _localized(text: Any) -> dict[str, str | None]:
    return {language: getattr(text, language) for language in LANGUAGES}


# ---- tickets -----------------------------------------------------------------------------


async def issue_ticket(request: Request, branch: str, body: schemas.IssueTicket) -> Response:
    key = request.headers.get("idempotency-key")
    if key is not None and not (0 < len(key) <= IDEMPOTENCY_KEY_MAX and key.isprintable()):
        raise BadRequest(
            f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} printable characters.",
            code="bad_idempotency_key",
        )
    principal = principal_of(request)
    check_claims(principal, body.priority, body.appointment_at)
    if principal.role is None:  # a phone counts at once only in the hall (access/hall_pass.py)
        request.app.state.rigi.hall_passes.check(request.headers.get(HALL_PASS_HEADER), branch)
    await _limit_issuing(request)
    confirm = bool(request.app.state.settings.booking_setting(branch, "priority_confirm"))
    requested = held_for_attendant(principal, body.priority, confirm)
    change = await _store(request).issue_ticket(
        branch,
        body.service_id,
        priority=Priority.NORMAL if requested else body.priority,
        language=body.language,
        appointment_at=body.appointment_at,
        idempotency_key=None if key is None else scoped_key(caller_scope(request, principal), key),
        actor=actor_of(request),
    )
    if requested:
        change.result["priority_requested"] = True
    if principal.role is Role.KIOSK:
        # Printed right after the commit; a kiosk retrying with its Idempotency-Key after a
        # crash in between gets the job then (request_print is idempotent).
        ticket = change.result | {"status_url": f"{public_base(request)}/t/{change.result['id']}"}
        change.result["print"] = await request.app.state.rigi.print_ticket(ticket, principal.id)
    return json_response(change.result, 201 if change.created else 200)


def public_base(request: Request) -> str:
    """The address citizens reach this server at, for the QR code on the ticket."""
    configured = request.app.state.settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


async def read_ticket(request: Request, ticket_id: str) -> dict[str, Any]:
    return await request.app.state.rigi.ticket_view(ticket_id)  # type: ignore[no-any-return]


async def cancel_ticket(request: Request, ticket_id: str) -> dict[str, Any]:
    change = await _store(request).cancel_ticket(ticket_id, actor_of(request))
    return change.result


async def mark_priority(request: Request, branch: str, ticket_id: str) -> dict[str, Any]:
    """Staff who have seen the citizen grant their waiting ticket priority (audited)."""
    change = await _store(request).mark_priority(branch, ticket_id, actor=actor_of(request))
    return change.result


# ---- counters ----------------------------------------------------------------------------


async def open_counter(request: Request, branch: str, counter: str) -> dict[str, Any]:
    people.require_counter_allowed(principal_of(request), counter)  # `counter_not_allowed`
    store = _store(request)
    change = await store.set_counter_mode(
        branch, counter, CounterMode.OPEN, actor=actor_of(request)
    )
    return change.result


async def pause_counter(
    request: Request, branch: str, counter: str, body: schemas.PauseCounter
) -> dict[str, Any]:
    change = await _store(request).set_counter_mode(
        branch, counter, CounterMode.PAUSED, actor=actor_of(request), reason=body.reason
    )
    return change.result


async def close_counter(request: Request, branch: str, counter: str) -> dict[str, Any]:
    store = _store(request)
    change = await store.set_counter_mode(
        branch, counter, CounterMode.CLOSED, actor=actor_of(request)
    )
    return change.result


async def take_over_counter(request: Request, branch: str, counter: str) -> dict[str, Any]:
    """A manager (or an admin) takes an open counter over from the operator holding it."""
    change = await _store(request).take_over(branch, counter, actor=actor_of(request))
    return change.result


async def call_next(request: Request, branch: str, counter: str) -> dict[str, Any]:
    change = await _store(request).call_next(branch, counter, actor=actor_of(request))
    return change.result


async def call_ticket(
    request: Request, branch: str, counter: str, body: schemas.CallTicket
) -> dict[str, Any]:
    change = await _store(request).call_ticket(
        branch, counter, body.ticket_id, actor=actor_of(request)
    )
    return change.result


def _current_visit_action(action: TicketAction, doc: str):  # type: ignore[no-untyped-def]
    async def handler(request: Request, branch: str, counter: str) -> dict[str, Any]:
        change = await _store(request).act_on_current(
            branch, counter, action, actor=actor_of(request)
        )
        return change.result

    handler.__name__ = f"{action.value}_current"
    handler.__doc__ = doc
    return handler


recall = _current_visit_action(TicketAction.RECALL, "Announce the called ticket again.")
recycle = _current_visit_action(TicketAction.RECYCLE, "Put the called ticket back in the queue.")
start_visit = _current_visit_action(TicketAction.START, "The citizen arrived: start the visit.")
no_show = _current_visit_action(TicketAction.NO_SHOW, "The called citizen did not come.")


async def finish_visit(
    request: Request, branch: str, counter: str, body: schemas.FinishVisit
) -> dict[str, Any]:
    change = await _store(request).act_on_current(
        branch, counter, TicketAction.FINISH, actor=actor_of(request), outcome=body.outcome
    )
    return change.result


async def transfer_visit(
    request: Request, branch: str, counter: str, body: schemas.TransferVisit
) -> dict[str, Any]:
    if body.service_id is None and body.counter_id is None:
        raise BadRequest("Name a service or a counter to transfer to.", code="transfer_target")
    change = await _store(request).transfer(
        branch,
        counter,
        actor=actor_of(request),
        service_id=body.service_id,
        to_counter_id=body.counter_id,
        keep_queue_time=body.keep_queue_time,
    )
    return change.result


async def counter_waiting(request: Request, branch: str, counter: str) -> list[dict[str, Any]]:
    return await _store(request).waiting_tickets(branch, counter)


# ---- branches ----------------------------------------------------------------------------


async def list_branches(request: Request) -> list[dict[str, Any]]:
    catalog = _store(request).catalog
    return [_branch_summary(b) for b in catalog.branches.values()]


async def read_branch(request: Request, branch: str) -> dict[str, Any]:
    """The branch and its services; `served_now` is False for a service no open counter
    serves at the moment (a kiosk says so rather than promising a wait)."""
    store = _store(request)
    catalog = store.catalog
    served = await _served_now(store, branch)
    services = [
        {
            "id": s.id,
            "agency": s.agency,
            "letter": s.letter,
            "category": s.category,
            "target_wait_min": s.target_wait_min,
            "service_time_min": s.service_time_min,
            "name": _localized(s.name),
            "served_now": s.id in served,
        }
        for s in catalog.branch_services(branch)
    ]
    return _branch_summary(catalog.branch(branch)) | {"services": services}


async def _served_now(store: QueueStore, branch: str) -> set[str]:
    """The services some open counter of the branch serves now."""
    counters = await store.counters(branch)
    return {
        service
        for counter in counters
        if counter["state"] == CounterMode.OPEN.value
        for service in store.catalog.profile(branch, counter["counter_id"])
    }


async def branch_queues(request: Request, branch: str) -> list[dict[str, Any]]:
    return await _store(request).queues(branch)


async def branch_counters(request: Request, branch: str) -> list[dict[str, Any]]:
    return await _store(request).counters(branch)


async def branch_snapshot(request: Request, branch: str) -> dict[str, Any]:
    board, seq, epoch = await _store(request).snapshot(branch)
    return {"epoch": epoch, "seq": seq, "board": board}


def _branch_summary(branch: Any) -> dict[str, Any]:
    return {
        "id": branch.id,
        "kind": branch.kind,
        "name": _localized(branch.name),
        "municipality": branch.municipality,
        "counters": len(branch.counters),
    }


# ---- the table ---------------------------------------------------------------------------

B = "/api/v1/branches/{branch}"
C = B + "/counters/{counter}"
TICKET_ERRORS = (404, 409)
COUNTER_ERRORS = (404, 409)


def _counter(
    path: str, handler: Any, summary: str, body: Any = None, response: Any = None
) -> Endpoint:
    return Endpoint(
        "POST",
        C + path,
        handler,
        summary,
        body=body,
        response=response or schemas.TicketView,
        access="operator",
        errors=COUNTER_ERRORS,
        tags=("counters",),
    )


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/v1/branches", list_branches, "List branches",
             response=list[schemas.BranchSummary], tags=("branches",)),
    Endpoint("GET", B, read_branch, "A branch and the services it offers",
             response=schemas.BranchView, errors=(404,), tags=("branches",)),
    Endpoint("GET", B + "/queues", branch_queues, "Waiting tickets per service",
             response=list[schemas.QueueView], errors=(404,), access="staff", tags=("branches",)),
    # Managers only: it names who holds each counter and the visit in hand (a ticket id is the
    # key to cancel it). The console reads its counters from the page and its own counter's
    # state from its feed; /queues stays open to operators (counts, as every board shows).
    Endpoint("GET", B + "/counters", branch_counters, "Counters and their state",
             response=list[schemas.CounterView], errors=(404,), access="manager",
             tags=("branches",)),
    Endpoint("GET", B + "/snapshot", branch_snapshot, "The board with its event sequence",
             response=schemas.SnapshotView, errors=(404,), access="display",
             tags=("branches",)),
    Endpoint("POST", B + "/tickets", issue_ticket, "Issue a ticket", body=schemas.IssueTicket,
             response=schemas.TicketView, status=201, access="issue", errors=(403, 404, 409),
             tags=("tickets",), headers=("Idempotency-Key", "X-Rigi-Client", "X-Rigi-Hall-Pass")),
    Endpoint("GET", "/api/v1/tickets/{ticket_id}", read_ticket,
             "A ticket: status, people ahead, estimated wait", response=schemas.TicketView,
             errors=(404,), tags=("tickets",)),
    Endpoint("POST", "/api/v1/tickets/{ticket_id}/cancel", cancel_ticket, "Cancel a ticket",
             response=schemas.TicketView, errors=TICKET_ERRORS, tags=("tickets",)),
    Endpoint("POST", B + "/tickets/{ticket_id}/priority", mark_priority,
             "Grant a waiting ticket priority service (staff of the branch; audited)",
             response=schemas.TicketView, access="staff", errors=TICKET_ERRORS,
             tags=("tickets",)),
    _counter("/open", open_counter, "Open a counter", response=schemas.CounterChange),
    _counter("/pause", pause_counter, "Pause a counter with a reason", schemas.PauseCounter,
             schemas.CounterChange),
    _counter("/close", close_counter, "Close a counter", response=schemas.CounterChange),
    Endpoint("POST", C + "/take-over", take_over_counter,
             "Take an open counter over from the operator holding it (audited)",
             response=schemas.CounterChange, access="manager", errors=COUNTER_ERRORS,
             tags=("counters",)),
    _counter("/call-next", call_next, "Call the next ticket"),
    _counter("/call", call_ticket, "Call a particular ticket", schemas.CallTicket),
    _counter("/recall", recall, "Recall the called ticket"),
    _counter("/recycle", recycle, "Put the called ticket back in the queue"),
    _counter("/start", start_visit, "Start serving the called ticket"),
    _counter("/finish", finish_visit, "Finish the visit with an outcome", schemas.FinishVisit),
    _counter("/no-show", no_show, "Mark the called ticket as a no-show"),
    _counter("/transfer", transfer_visit, "Transfer the visit", schemas.TransferVisit),
    Endpoint("GET", B + "/announcement.wav", announcement_wav,
             "A call's spoken announcement (chime, then each language) as WAV",
             access="display", errors=(404, 422, 503), tags=("branches",),
             query=AnnouncementQuery, media_type="audio/wav"),
    Endpoint("GET", C + "/waiting", counter_waiting, "Waiting list, most urgent first",
             response=list[schemas.TicketView], errors=(404,), access="operator",
             tags=("counters",)),
    *FEEDBACK_ENDPOINTS,
    *NEARBY_ENDPOINTS,
    *UNSPOKEN_ENDPOINTS,
)  # fmt: skip
