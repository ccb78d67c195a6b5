""" "Where can I go now?": for a chosen service, the other branches of the same municipality and
region that offer it, each with the wait a walk-in taking a ticket there now would have (the
phone page and the kiosk show it next to the ticket). Public, like the branch's own services:
it names branches and waits, nothing of anyone."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from starlette.requests import Request

from queue_server.api.http import Endpoint
from queue_server.catalog.models import LANGUAGES
from queue_server.catalog.regions import region_of, regions_by_municipality
from queue_server.store.nearby import nearby_waits, neighbours
from queue_server.store.views import wait_fields

if TYPE_CHECKING:
    from queue_server.app import Rigi


class NearbyBranch(BaseModel):
    id: str
    kind: str
    name: dict[str, str | None]
    municipality: str | None
    region: str | None
    same_municipality: bool
    people_ahead: int
    wait_minutes: int  # the median of a newcomer's wait there now
    wait_range: dict[str, int] | None  # {"median_min", "p90_min"} when forecast
    served_now: bool  # False: no open counter serves the service there now
    next_open_at: datetime | None  # ... and when the next one opens, if today


class NearbyView(BaseModel):
    branch: str
    service_id: str
    branches: list[NearbyBranch]


async def nearby_branches(request: Request, branch: str, service: str) -> dict[str, Any]:
    """The nearby branches offering the service, shortest wait first."""
    rigi: Rigi = request.app.state.rigi
    catalog = rigi.catalog
    regions = regions_by_municipality(rigi.settings.config)
    others = neighbours(catalog, branch, service, regions)
    store = rigi.store
    found = await nearby_waits(
        rigi.database, store.estimates, catalog.branch(branch), others, service, store.clock()
    )
    return {
        "branch": branch,
        "service_id": service,
        "branches": [
            {
                "id": n.branch.id,
                "kind": n.branch.kind,
                "name": {lang: getattr(n.branch.name, lang) for lang in LANGUAGES},
                "municipality": n.branch.municipality,
                "region": region_of(n.branch, regions),
                "same_municipality": n.same_municipality,
            }
            | wait_fields(n.wait)
            for n in found
        ],
    }


NEARBY_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/v1/branches/{branch}/services/{service}/nearby", nearby_branches,
             "Where can I go now? Other branches nearby offering the service, with their wait",
             response=NearbyView, errors=(404,), tags=("branches",)),
)  # fmt: skip
