"""The fairness ledger route: per local hour of a day, how many appointment, remote and
priority tickets were called ahead of walk-ins that had waited longer, and the longest walk-in
wait against its target (domain/fairness.py). For managers: the live view shows today's."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request

from queue_server.api.http import Endpoint
from queue_server.domain.fairness import AHEAD_KINDS, ledger
from queue_server.domain.numbering import local_day
from queue_server.errors import BadRequest
from queue_server.store.fairness import ledger_visits

Day = date  # the field below is named `date`


class LedgerQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    date: Day | None = None


class LedgerAnswer(BaseModel):
    branch_id: str
    date: Day
    hours: list[dict[str, Any]]
    totals: dict[str, Any]


async def fairness_ledger(request: Request, branch: str) -> dict[str, Any]:
    """The branch's ledger of one local day (`?date=`, default today)."""
    rigi = request.app.state.rigi
    catalog = rigi.catalog
    timezone = catalog.branch(branch).timezone
    raw = request.query_params.get("date")
    try:
        day = date.fromisoformat(raw) if raw else local_day(rigi.store.clock(), timezone)
    except ValueError:
        raise BadRequest("Give ?date=YYYY-MM-DD.", code="bad_date") from None
    serves = {
        counter.id: frozenset(catalog.profile(branch, counter.id))
        for counter in catalog.branch(branch).counters
    }
    async with rigi.database.read() as conn:
        visits = await ledger_visits(conn, branch, day)
    hours = ledger(visits, serves, timezone)
    ahead = {kind.value: sum(hour.ahead[kind] for hour in hours) for kind in AHEAD_KINDS}
    longest = max(hours, key=lambda hour: hour.longest_walk_in_s, default=None)
    return {
        "branch_id": branch,
        "date": day.isoformat(),
        "hours": [hour.as_dict() for hour in hours],
        "totals": {
            "ahead_of_walk_ins": ahead,
            "longest_walk_in_wait_s": round(longest.longest_walk_in_s) if longest else 0,
            "longest_walk_in_target_s": round(longest.longest_walk_in_target_s) if longest else 0,
        },
    }


LEDGER_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/v1/branches/{branch}/fairness", fairness_ledger,
             "Fairness ledger: who was called ahead of walk-ins that waited longer, by hour",
             response=LedgerAnswer, access="manager", errors=(400, 401, 403, 404),
             tags=("bookings",), query=LedgerQuery),
)  # fmt: skip
