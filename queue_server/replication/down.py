"""What flows down the link, from central to a node: one `DownChannel` per kind of thing.

Each channel is a read at central (`GET /api/v1/nodes/{branch}/down/{name}?after=C`, the node's
token) and an apply at the node, at least once and idempotent: the node keeps the answer's
`cursor` in memory and sends it back as `after` (0 after a restart: the channel sends all it
holds again, and applying it again changes nothing). Bookings are the first channel; the
organisation's newest version (#14) is the second: the node applies central's document as its
own edit, so its catalog swaps and its feeds hear `organisation.changed` as at central. The
third is the branch's people and devices, which central manages (`store.replica_people`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from queue_server.catalog.organisation import OrganisationInvalid
from queue_server.store.bookings import branch_bookings, mirror_bookings
from queue_server.store.change import utc_now
from queue_server.store.organisation import newest
from queue_server.store.replica_people import branch_people, mirror_people

if TYPE_CHECKING:
    from queue_server.app import Rigi

log = logging.getLogger(__name__)

BOOKINGS_BACK = timedelta(days=1)
CENTRAL = "node:central"  # the actor of what the node applies from central


@dataclass(frozen=True)
class DownChannel:
    """`read(conn, branch, after, now)` at central answers `{"cursor": …, "items": […]}` in
    JSON; `apply(rigi, items)` at the node returns how many things changed."""

    name: str
    read: Callable[[Connection, str, int, datetime], dict[str, Any]]
    apply: Callable[[Rigi, list[dict[str, Any]]], Awaitable[int]]
    every_s: float


def _read_bookings(conn: Connection, branch_id: str, after: int, now: datetime) -> dict[str, Any]:
    """The branch's bookings from yesterday on: no contact, no code. Small enough to send whole
    (a centre's fortnight of appointments), so the cursor is not used."""
    found = branch_bookings(conn, branch_id, now - BOOKINGS_BACK)
    items = [item | {"slot_at": item["slot_at"].isoformat()} for item in found]
    return {"cursor": 0, "items": items}


async def _apply_bookings(rigi: Rigi, items: list[dict[str, Any]]) -> int:
    found = [item | {"slot_at": datetime.fromisoformat(item["slot_at"])} for item in items]
    changed = await rigi.database.transaction(
        functools.partial(mirror_bookings, found=found, now=utc_now())
    )
    return int(changed)


def _read_organisation(
    conn: Connection, branch_id: str, after: int, now: datetime
) -> dict[str, Any]:
    """Central's newest organisation when it is newer than version `after` (the whole
    document, ~150 kB, sent once per version); the cursor is that version."""
    stored = newest(conn)
    if stored is None or stored.version <= after:
        return {"cursor": after, "items": []}
    item = {"version": stored.version, "document": stored.document}
    return {"cursor": stored.version, "items": [item]}


def _central_document(document: dict[str, Any], _served: dict[str, Any]) -> dict[str, Any]:
    return document


async def _apply_organisation(rigi: Rigi, items: list[dict[str, Any]]) -> int:
    """Serve central's document as the node's newest version (nothing when it is the same).
    A document this node's code refuses is logged and skipped: the node keeps its last
    configuration rather than stopping its link."""
    changed = 0
    for item in items:
        served = rigi.organisation.catalog.version
        try:
            version = await rigi.organisation.edit(
                functools.partial(_central_document, item["document"]),
                actor=CENTRAL,
                summary=f"central's version {item['version']}",
                source="central",
            )
        except OrganisationInvalid as exc:
            log.error("central's organisation version %s refused: %s", item["version"], exc)
            continue
        changed += version != served
    return changed


def _read_people(conn: Connection, branch_id: str, after: int, now: datetime) -> dict[str, Any]:
    """The branch's people and devices, managed at central (`store.replica_people`): a short
    list, sent whole."""
    return {"cursor": 0, "items": [branch_people(conn, branch_id)]}


async def _apply_people(rigi: Rigi, items: list[dict[str, Any]]) -> int:
    branch = rigi.settings.node_branch
    assert branch is not None
    changed = 0
    for item in items:
        changed += await rigi.database.transaction(
            functools.partial(mirror_people, branch_id=branch, people=item)
        )
    if changed:
        rigi.accounts.forget_devices()  # a revoked token stops at once, not after the cache
        rigi.accounts.forget_person()  # and a disabled person
    return changed


BOOKINGS = DownChannel("bookings", _read_bookings, _apply_bookings, every_s=30.0)
ORGANISATION = DownChannel("organisation", _read_organisation, _apply_organisation, every_s=15.0)
PEOPLE = DownChannel("people", _read_people, _apply_people, every_s=15.0)
DOWN_CHANNELS: dict[str, DownChannel] = {
    channel.name: channel for channel in (BOOKINGS, ORGANISATION, PEOPLE)
}
