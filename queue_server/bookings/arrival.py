"""Arrival: a booking or a remote ticket checked in once, at the kiosk or by staff.

A booked slot inside its window (early to late) becomes an appointment ticket; after the window,
a walk-in ticket; before it, a refusal that says when to come back. A remote ticket activated
within its window becomes a normal ticket whose wait counts from when it joined: it never gets
priority, and its place is kept only `booking_remote_minutes` (then it is a no-show).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from queue_server.domain.tickets import Priority
from queue_server.errors import Conflict, NotFound
from queue_server.store import bookings as queries
from queue_server.store.bookings import CHECKED_IN, CONFIRMED, REMOTE

if TYPE_CHECKING:
    from queue_server.bookings.service import Bookings

MESSAGES = {
    "appointment": "Checked in: you will be called for your appointment.",
    "late": "Past the arrival window: this is a walk-in ticket.",
    "remote": "Activated: your place in the queue counts from when you joined.",
}


@dataclass(frozen=True)
class _Arrival:
    row: Any
    outcome: str  # appointment | late | remote


def _find(conn: Any, bookings: Bookings, code: str, now: datetime) -> Any:
    """The booking a check-in code names. A signed code is enough on its own: a branch node
    that has not yet received a booking made centrally takes the one the code describes."""
    claim = bookings.keys.verify(code) if "." in code else None
    if claim is not None:
        return queries.booking_row_or_claimed(
            conn, claim.booking_id, claim.branch_id, claim.slot_at, claim.service_id,
            claim.language, now,
        )  # fmt: skip
    found = queries.booking_by_code(conn, code.strip().upper().replace("-", ""))
    if found is None:
        raise NotFound("No booking has this code.", code="booking_not_found")
    return found


def _outcome(bookings: Bookings, row: Any, branch_id: str, now: datetime) -> str:
    """What arriving now makes of this booking, or a refusal."""
    settings = bookings.settings
    if row.kind == REMOTE:
        if now > row.slot_at + timedelta(minutes=settings.booking_remote_minutes):
            raise Conflict(
                "This place in the queue has expired; take a ticket at the kiosk.",
                code="remote_expired",
            )
        return "remote"
    early = timedelta(minutes=settings.booking_setting(branch_id, "early_minutes"))
    late = timedelta(minutes=settings.booking_setting(branch_id, "late_minutes"))
    if now < row.slot_at - early:
        raise Conflict(
            "Too early for this booking; come back at the time given.",
            code="too_early",
            come_back_at=(row.slot_at - early).isoformat(),
        )
    return "late" if now > row.slot_at + late else "appointment"


async def check_in(bookings: Bookings, branch_id: str, code: str, actor: str) -> dict[str, Any]:
    """Check a booking or a remote ticket in once; the ticket it becomes."""
    settings = bookings.settings
    now = bookings._now()

    def claim_booking(conn: Any) -> _Arrival:
        row = _find(conn, bookings, code, now)
        if row.branch_id != branch_id:
            raise Conflict("This booking is for another branch.", code="booking_other_branch")
        if row.status == CHECKED_IN:
            raise Conflict("This booking has already been checked in.", code="booking_used")
        if row.status != CONFIRMED:
            raise Conflict("This booking is not confirmed.", code="not_confirmed")
        outcome = _outcome(bookings, row, branch_id, now)
        retention = now + timedelta(minutes=settings.notify_retention_minutes)
        if not queries.change(
            conn, row.id, CONFIRMED, status=CHECKED_IN, checked_in_at=now, expires_at=retention
        ):
            raise Conflict("This booking has already been checked in.", code="booking_used")
        return _Arrival(row, outcome)

    arrival = await bookings.rigi.database.transaction(claim_booking)
    row = arrival.row
    appointment = arrival.outcome == "appointment"
    try:
        change = await bookings.rigi.store.issue_ticket(
            branch_id,
            row.service_id,
            priority=Priority.APPOINTMENT if appointment else Priority.NORMAL,
            language=row.language,
            appointment_at=row.slot_at if appointment else None,
            idempotency_key=f"booking:{row.id}",
            actor=actor,
            queued_since=row.slot_at if arrival.outcome == "remote" else None,
        )
    except Exception:
        await bookings.rigi.database.transaction(
            lambda c: queries.change(c, row.id, CHECKED_IN, status=CONFIRMED, checked_in_at=None)
        )
        raise
    ticket = change.result
    await bookings.rigi.database.transaction(
        lambda c: queries.change(c, row.id, CHECKED_IN, ticket_id=ticket["id"])
    )
    return {
        "booking_id": row.id,
        "kind": row.kind,
        "late": arrival.outcome == "late",
        "message": MESSAGES[arrival.outcome],
        "ticket": ticket,
    }
