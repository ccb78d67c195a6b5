"""Central's side of the link: a node sends its events, an administrator makes a node token,
anyone who runs the network reads each node's link; and a node's own view of its link."""

from __future__ import annotations

import functools
import secrets
import uuid
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection

from queue_server.access.accounts import TOKEN_PREFIX, token_hash
from queue_server.access.principal import Role
from queue_server.api.http import Endpoint, json_response, principal_of
from queue_server.errors import BadRequest, Forbidden, NotFound
from queue_server.replication.down import DOWN_CHANNELS
from queue_server.replication.wire import decode_batch
from queue_server.store.audit import record
from queue_server.store.change import utc_now
from queue_server.store.database import Database
from queue_server.store.node_release import Release, release_branch
from queue_server.store.replication import apply_node_events, claim_branch, link_rows, node_cursor
from queue_server.store.schema import devices

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from queue_server.app import Rigi

NODES_PATH = "/api/v1/nodes/"
NODE_TOKEN_CREATED = "node.token_created"


def _rigi(request: Request) -> Rigi:
    return request.app.state.rigi  # type: ignore[no-any-return]


def _node_only(request: Request) -> None:
    if principal_of(request).role is not Role.NODE:
        raise Forbidden("Only the branch's node may do this.", code="forbidden_role")


async def receive_events(request: Request, branch: str) -> dict[str, Any]:
    """A node's batch, applied once however often it comes; answers how far central holds."""
    _node_only(request)
    batch = decode_batch(await request.body(), request.headers.get("content-encoding"))
    rigi = _rigi(request)
    cursor = await rigi.database.transaction(
        functools.partial(
            apply_node_events,
            branch_id=branch,
            batch=batch.node_events(),
            starts=batch.starts,
            head=batch.head,
            now=utc_now(),
            timezone=rigi.catalog.branch(branch).timezone,
        )
    )
    return cursor.to_dict()


async def read_cursor(request: Request, branch: str) -> dict[str, Any]:
    """Where the node resumes: how far central holds its stream."""
    _node_only(request)
    cursor = await _rigi(request).database.reading(functools.partial(node_cursor, branch_id=branch))
    return cursor.to_dict()


async def read_down(request: Request, branch: str, channel: str) -> dict[str, Any]:
    """What central sends the branch's node on one channel (`replication.down`)."""
    _node_only(request)
    found = DOWN_CHANNELS.get(channel)
    if found is None:
        raise NotFound("No such channel.", code="unknown_channel")
    try:
        after = int(request.query_params.get("after", "0"))
    except ValueError:
        raise BadRequest("`after` is a whole number.", code="bad_cursor") from None
    return await _rigi(request).database.reading(
        lambda conn: found.read(conn, branch, after, utc_now())
    )


class NewNode(BaseModel):
    name: str = Field(default="branch node", min_length=1, max_length=100)


async def create_node_token(request: Request, branch: str, body: NewNode) -> Response:
    """A node token for the branch, shown once; from now on central mirrors the branch's node
    and refuses to write its queue itself."""
    rigi = _rigi(request)
    rigi.catalog.branch(branch)
    by = principal_of(request).actor
    view, token = await make_node_token(rigi.database, branch, body.name, by)
    return json_response({"device": view, "token": token}, 201)


async def make_node_token(
    database: Database, branch: str, name: str, by: str
) -> tuple[dict[str, Any], str]:
    """Store a node token (only its hash) and claim the branch for its node, audited."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utc_now()
    row = {
        "id": uuid.uuid4().hex,
        "branch_id": branch,
        "role": Role.NODE.value,
        "name": name,
        "token_hash": token_hash(token),
        "created_by": by,
        "created_at": now,
    }

    def store(conn: Connection) -> None:
        conn.execute(devices.insert().values(**row))
        claim_branch(conn, branch, now)
        record(conn, at=now, actor=by, kind=NODE_TOKEN_CREATED, branch_id=branch, target=name)

    await database.transaction(store)
    view = {"id": row["id"], "branch": branch, "role": "node", "name": name,
            "created_at": now.isoformat()}  # fmt: skip
    return view, token


class ReleaseNode(BaseModel):
    force: bool = Field(default=False, description="even while the node is still connected")


async def release_node(request: Request, branch: str, body: ReleaseNode) -> dict[str, Any]:
    """Central takes the branch back from its node (its hardware died): refused while the node
    is connected unless forced; its stream goes on at the last replicated seq; audited."""
    rigi = _rigi(request)
    rigi.catalog.branch(branch)
    release = await take_back(
        rigi.database, branch, stale_after_s=rigi.settings.node_stale_s, force=body.force,
        by=principal_of(request).actor,
    )  # fmt: skip
    return release.to_dict()


async def take_back(
    database: Database, branch: str, *, stale_after_s: float, force: bool, by: str
) -> Release:
    """`store.node_release.release_branch` in one transaction (the API's and the CLI's)."""
    return await database.transaction(
        functools.partial(release_branch, branch_id=branch, now=utc_now(),
                          stale_after_s=stale_after_s, force=force, actor=by)
    )  # fmt: skip


async def _links(request: Request) -> dict[str, dict[str, Any]]:
    rigi = _rigi(request)
    stale = rigi.settings.node_stale_s
    return await rigi.database.reading(
        functools.partial(link_rows, now=utc_now(), stale_after_s=stale)
    )


async def list_links(request: Request) -> list[dict[str, Any]]:
    """Every node's link: connected, the last event received, the lag."""
    return list((await _links(request)).values())


async def branch_link(request: Request, branch: str) -> dict[str, Any]:
    link = (await _links(request)).get(branch)
    if link is None:
        raise NotFound("This branch has no node.", code="branch_not_node_owned")
    return link


async def own_link(request: Request) -> dict[str, Any]:
    """A node's own view of its link to central (its live view shows it)."""
    shipper = _rigi(request).node
    if shipper is None:
        raise NotFound("This server is not a branch node.", code="not_a_node")
    principal = principal_of(request)
    if principal.role is not Role.ADMIN and principal.branch != shipper.branch:
        raise Forbidden("This belongs to another branch.", code="forbidden_branch")
    return shipper.status(utc_now())


REPLICATION_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", NODES_PATH + "{branch}/events", receive_events,
             "A branch node's events (gzip JSON batch), applied once; answers its cursor",
             access="node", errors=(401, 403, 409, 413, 422), tags=("nodes",)),
    Endpoint("GET", NODES_PATH + "{branch}/cursor", read_cursor,
             "How far central holds the node's stream", access="node", errors=(401, 403, 409),
             tags=("nodes",)),
    Endpoint("GET", NODES_PATH + "{branch}/down/{channel}", read_down,
             "What central sends the branch's node on a channel (bookings)", access="node",
             errors=(400, 401, 403, 404), tags=("nodes",)),
    Endpoint("POST", "/api/v1/branches/{branch}/node-token", create_node_token,
             "Make the branch node-owned and create its node's token (shown once)", body=NewNode,
             status=201, access="admin", errors=(404,), tags=("nodes",)),
    Endpoint("POST", "/api/v1/branches/{branch}/release-node", release_node,
             "Take the branch back from its node: central serves it from the last replicated "
             "event (refused while the node is connected, unless forced)", body=ReleaseNode,
             access="admin", errors=(404, 409), tags=("nodes",)),
    Endpoint("GET", "/api/v1/nodes", list_links, "Every branch node's link", access="admin",
             tags=("nodes",)),
    Endpoint("GET", NODES_PATH + "{branch}/link", branch_link, "A branch node's link",
             access="manager", errors=(404,), tags=("nodes",)),
    Endpoint("GET", "/api/v1/node/link", own_link, "This node's link to central",
             access="signed_in", errors=(404,), tags=("nodes",)),
)  # fmt: skip
