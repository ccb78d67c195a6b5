"""Feedback after service: a citizen rates a finished visit from the ticket's page, once, and a
manager reads the mean rating and count per service of the branch."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request

from queue_server.access.ratelimit import Limit
from queue_server.api.http import Endpoint
from queue_server.domain.numbering import local_day
from queue_server.errors import ValidationFailed
from queue_server.store.feedback import COMMENT_MAX, RATING_MAX, RATING_MIN, Rating, rating_summary
from queue_server.store.feedback import give_feedback as store_feedback

# Ratings from one address: a hall's guest Wi-Fi shares one, so generous, but a script cannot
# flood the table.
FEEDBACK_RATE_ADDRESS = "30/hour"
SUMMARY_DAYS = 7  # a summary without a period covers the last week, today included
SUMMARY_MAX_DAYS = 400


class GiveFeedback(BaseModel):
    """A rating of 1–5 and, if the citizen wishes, a comment (no names or numbers, please)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rating: int = Field(ge=RATING_MIN, le=RATING_MAX)
    comment: str | None = Field(default=None, max_length=COMMENT_MAX)


class FeedbackGiven(BaseModel):
    ticket_id: str
    rating: int
    comment_kept: bool


class SummaryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    first: date | None = Field(default=None, alias="from", description="first day, YYYY-MM-DD")
    last: date | None = Field(default=None, alias="to", description="last day, YYYY-MM-DD")


async def give_feedback(request: Request, ticket_id: str, body: GiveFeedback) -> dict[str, Any]:
    """The holder of a finished ticket rates the visit (once)."""
    rigi = request.app.state.rigi
    address = request.client.host if request.client else "unknown"
    await rigi.limiter.hit(f"feedback-addr:{address}", Limit.parse(FEEDBACK_RATE_ADDRESS))
    comment = (body.comment or "").strip() or None
    now = rigi.store.clock()
    return await rigi.database.transaction(  # type: ignore[no-any-return]
        lambda c: store_feedback(c, rigi.catalog, ticket_id, Rating(body.rating, comment), now)
    )


async def feedback_summary(request: Request, branch: str) -> dict[str, Any]:
    """Mean rating and count per service over a period (comments are not shown here)."""
    rigi = request.app.state.rigi
    catalog = rigi.catalog
    timezone = catalog.branch(branch).timezone
    try:
        query = SummaryQuery.model_validate(dict(request.query_params))
    except ValidationError:
        raise ValidationFailed(
            "Give from and to as YYYY-MM-DD.", code="bad_feedback_query"
        ) from None
    last = query.last or local_day(rigi.store.clock(), timezone)
    first = query.first or last - timedelta(days=SUMMARY_DAYS - 1)
    if first > last or (last - first).days >= SUMMARY_MAX_DAYS:
        raise ValidationFailed(
            f"The period must run forwards and be at most {SUMMARY_MAX_DAYS} days.",
            code="bad_feedback_query",
        )
    rows = await rigi.database.reading(lambda c: rating_summary(c, branch, first, last))
    for row in rows:
        service = catalog.services.get(row["service_id"])
        row["service_name"] = service.name.get("en") if service else row["service_id"]
    total = sum(r["ratings"] for r in rows)
    mean = round(sum(r["mean"] * r["ratings"] for r in rows) / total, 2) if total else None
    return {
        "branch": branch,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "ratings": total,
        "mean": mean,
        "services": rows,
    }


FEEDBACK_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", "/api/v1/tickets/{ticket_id}/feedback", give_feedback,
             "Rate a finished visit (1–5, optional comment), once", body=GiveFeedback,
             response=FeedbackGiven, errors=(404, 409, 422, 429), tags=("tickets",)),
    Endpoint("GET", "/api/v1/branches/{branch}/feedback", feedback_summary,
             "Mean rating and count per service over a period", access="manager",
             errors=(404, 422), tags=("reports",), query=SummaryQuery),
)  # fmt: skip
