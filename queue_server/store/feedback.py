"""Citizens' ratings of a finished visit: one row per visit, and the summary the reports show.

A rating is 1 to 5 with an optional comment; nothing else about the citizen is kept (no
address, no device, no contact). The comment stays in this table: the `ticket.rated` event
carries the rating only, so no comment can reach a board, a feed or the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    Date,
    Index,
    Integer,
    Table,
    Text,
    func,
    select,
)

from queue_server.catalog.loader import Catalog
from queue_server.domain.tickets import TicketStatus
from queue_server.errors import Conflict, NotFound
from queue_server.store import statements
from queue_server.store.events import append_event
from queue_server.store.schema import ID, NAME, UTCDateTime, metadata
from queue_server.store.views import ticket_view

RATING_MIN = 1
RATING_MAX = 5
COMMENT_MAX = 500

feedback = Table(
    "feedback",
    metadata,
    Column("ticket_id", ID, primary_key=True),  # the key makes "once per visit" hold
    Column("branch_id", NAME, nullable=False),
    Column("service_id", NAME, nullable=False),
    Column("rating", Integer, nullable=False),
    Column("comment", Text),
    Column("at", UTCDateTime, nullable=False),
    Column("local_date", Date, nullable=False),  # the branch's day, for the reports
    CheckConstraint(f"rating BETWEEN {RATING_MIN} AND {RATING_MAX}", name="ck_feedback_rating"),
    Index("ix_feedback_branch_date", "branch_id", "local_date"),
)


@dataclass(frozen=True, slots=True)
class Rating:
    """What the citizen gave: a rating and perhaps a comment (already trimmed and bounded)."""

    rating: int
    comment: str | None


def give_feedback(
    conn: Connection, catalog: Catalog, ticket_id: str, given: Rating, now: datetime
) -> dict[str, Any]:
    """Store the rating of a finished visit, once, and append `ticket.rated` (without the
    comment). A visit still going, or one that never took place, cannot be rated."""
    row = conn.execute(statements.TICKET_LOCKED, {"ticket_id": ticket_id}).one_or_none()
    if row is None:
        raise NotFound("No such ticket.", code="unknown_ticket")
    if row.status != TicketStatus.DONE.value:
        raise Conflict("Only a finished visit can be rated.", code="visit_not_finished")
    if conn.execute(select(feedback.c.ticket_id).where(feedback.c.ticket_id == ticket_id)).first():
        raise Conflict("This visit has already been rated.", code="feedback_already_given")
    zone = ZoneInfo(catalog.branch(row.branch_id).timezone)
    conn.execute(
        feedback.insert().values(
            ticket_id=ticket_id,
            branch_id=row.branch_id,
            service_id=row.service_id,
            rating=given.rating,
            comment=given.comment,
            at=now,
            local_date=now.astimezone(zone).date(),
        )
    )
    view = ticket_view(catalog, row)
    append_event(conn, row.branch_id, "ticket.rated", now, {"ticket": view, "rating": given.rating})
    return {
        "ticket_id": ticket_id,
        "rating": given.rating,
        "comment_kept": given.comment is not None,
    }


def rating_summary(
    conn: Connection, branch_id: str, first: date, last: date
) -> list[dict[str, Any]]:
    """Mean rating and count per service of a branch over the days `first`..`last`."""
    rows = conn.execute(
        select(
            feedback.c.service_id,
            func.count().label("ratings"),
            func.avg(feedback.c.rating).label("mean"),
        )
        .where(
            feedback.c.branch_id == branch_id,
            feedback.c.local_date >= first,
            feedback.c.local_date <= last,
        )
        .group_by(feedback.c.service_id)
        .order_by(feedback.c.service_id)
    )
    return [
        {"service_id": r.service_id, "ratings": r.ratings, "mean": round(float(r.mean), 2)}
        for r in rows
    ]
