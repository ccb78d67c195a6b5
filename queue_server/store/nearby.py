""" "Where can I go now?": for a service, the other branches near one that offer it, each with
the wait a walk-in taking a ticket there now would have.

That wait is the branch's forecast for a newcomer (a probe that takes no counter time, see
`domain.forecast`), which is only as good as the branch's last refresh: a branch whose forecast
is older than a minute or whose event stream moved since is asked to refresh first, and the
answer waits for it a short while (`estimate_wait` stands in for one not ready in time).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import Connection

from queue_server.catalog.loader import Catalog
from queue_server.catalog.models import Branch
from queue_server.catalog.regions import Region, region_of
from queue_server.domain.dispatch import QueuedTicket
from queue_server.domain.estimate import WaitEstimate
from queue_server.domain.tickets import Priority
from queue_server.errors import NotFound
from queue_server.store.database import Database
from queue_server.store.estimates import Estimates
from queue_server.store.events import current_head

REFRESH_WAIT_S = 2.0  # how long an answer waits for the nearby branches' refreshes
MAX_BRANCHES = 12  # a region holds a few dozen at most; a phone screen shows this many
PROBE_ID = "nearby"


@dataclass(frozen=True, slots=True)
class Nearby:
    """A branch offering the service, and a newcomer's wait there now."""

    branch: Branch
    same_municipality: bool
    wait: WaitEstimate


def neighbours(
    catalog: Catalog, branch_id: str, service_id: str, regions: dict[str, Region]
) -> list[Branch]:
    """The other branches of the branch's municipality and region that offer the service
    (NotFound when the branch or service is unknown or the branch does not offer it)."""
    here = catalog.branch(branch_id)
    catalog.service(service_id)
    if not catalog.serves(branch_id, service_id):
        raise NotFound(
            f"Service {service_id} is not offered at {branch_id}.", code="service_not_offered"
        )
    region = region_of(here, regions)
    return [
        other
        for other in catalog.branches.values()
        if other.id != branch_id
        and catalog.serves(other.id, service_id)
        and (
            (here.municipality and other.municipality == here.municipality)
            or (region is not None and region_of(other, regions) == region)
        )
    ]


async def nearby_waits(
    database: Database,
    estimates: Estimates,
    here: Branch,
    branches: list[Branch],
    service_id: str,
    now: datetime,
) -> list[Nearby]:
    """Each branch's wait for a walk-in of the service now, shortest first (a branch where no
    open counter serves it last)."""
    forecasts = estimates.forecasts
    if forecasts is not None and forecasts.runs > 0:
        heads = await database.reading(
            lambda conn: {b.id: current_head(conn, b.id) for b in branches}
        )
        stale = [b for b, head in heads.items() if not forecasts.is_current(b, head, now)]
        for branch_id in stale:
            forecasts.request(branch_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(forecasts.refreshed(b) for b in stale)), REFRESH_WAIT_S
            )
    found = []
    for branch in branches:
        wait = await database.reading(
            partial(_newcomer_wait, estimates, branch, service_id, now=now)
        )
        same = bool(here.municipality) and branch.municipality == here.municipality
        found.append(Nearby(branch, same, wait))
    found.sort(key=lambda n: (not n.wait.served_now, n.wait.wait_s, n.branch.id))
    return found[:MAX_BRANCHES]


def _newcomer_wait(
    estimates: Estimates, branch: Branch, service_id: str, conn: Connection, now: datetime
) -> WaitEstimate:
    """The wait of a normal walk-in of the service issued at the branch now."""
    service = estimates.catalog.service(service_id)
    probe = QueuedTicket(PROBE_ID, service_id, Priority.NORMAL, now, service.target_wait_min * 60.0)
    inputs = estimates.read_inputs(conn, branch.id, now)
    return estimates.guess(branch.id, probe, inputs, now, newcomer=True)
