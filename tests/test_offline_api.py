"""Central's API for branch nodes on a real server: an administrator makes a node token, the
node reads its cursor and sends its events for its own branch only, central refuses to issue
there, a bad batch is refused with a clear code, the link shows, and a revoked token stops."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

from tests.offline_link import node_ticket
from tests.support import LiveServer

BRANCH = "testhall"
NODES = f"/api/v1/nodes/{BRANCH}"


async def test_a_node_token_serves_its_branch_only_and_central_stops_writing_it(
    live_server: LiveServer,
) -> None:
    async with live_server.client("admin") as admin, live_server.client("kiosk") as kiosk:
        made = await admin.post(f"/api/v1/branches/{BRANCH}/node-token", json={"name": "node"})
        assert made.status_code == 201, made.text
        token = made.json()["token"]
        node = {"Authorization": f"Bearer {token}"}

        cursor = await admin.get(NODES + "/cursor", headers=node)
        assert cursor.json() == {"epoch": None, "seq": 0, "past_epochs": [], "applied": 0}
        now = datetime.now(UTC)
        at, ticket = now.isoformat(), node_ticket("t1", 1, now, branch=BRANCH)
        batch = {"head": [1, at], "starts": {"e1": 1}, "events": [
            ["e1", 1, "ticket.issued", at, {"ticket": ticket}, "kiosk:k"],
        ]}  # fmt: skip
        body = gzip.compress(json.dumps(batch).encode())
        headers = node | {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        sent = await admin.post(NODES + "/events", content=body, headers=headers)
        assert sent.json() == {"epoch": "e1", "seq": 1, "past_epochs": [], "applied": 1}
        again = await admin.post(NODES + "/events", content=body, headers=headers)
        assert again.json()["applied"] == 0

        elsewhere = await admin.post(
            "/api/v1/nodes/otherhall/events", content=body, headers=headers
        )
        assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "forbidden_branch")
        garbage = await admin.post(NODES + "/events", content=b"\x1f\x8bnot", headers=headers)
        assert (garbage.status_code, garbage.json()["code"]) == (400, "malformed_batch")
        wrong = await admin.post(NODES + "/events", json={"events": [[1]]}, headers=node)
        assert (wrong.status_code, wrong.json()["code"]) == (422, "malformed_batch")
        no_ticket = batch | {"events": [["e1", 2, "ticket.called", at, {}, None]]}
        hollow = await admin.post(NODES + "/events", json=no_ticket, headers=node)
        assert (hollow.status_code, hollow.json()["code"]) == (422, "malformed_batch")
        partial = {"id": "t2", "label": "A002"}  # no number, status, …: no row can be made
        thin = batch | {"events": [["e1", 2, "ticket.called", at, {"ticket": partial}, None]]}
        refused_thin = await admin.post(NODES + "/events", json=thin, headers=node)
        assert (refused_thin.status_code, refused_thin.json()["code"]) == (422, "malformed_batch")
        # the phone link of the node's ticket answers at central
        followed = await kiosk.get("/api/v1/tickets/t1")
        assert followed.status_code == 200, followed.text
        assert (followed.json()["label"], followed.json()["status"]) == ("A001", "waiting")
        unknown = await admin.get(NODES + "/down/gossip", headers=node)
        assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_channel")
        down = await admin.get(NODES + "/down/bookings", params={"after": 0}, headers=node)
        assert down.json() == {"cursor": 0, "items": []}
        not_a_node = await kiosk.post(NODES + "/events", content=body, headers={
            "Content-Encoding": "gzip"})  # fmt: skip
        assert (not_a_node.status_code, not_a_node.json()["code"]) == (403, "forbidden_role")

        issued = await kiosk.post(f"/api/v1/branches/{BRANCH}/tickets",
                                  json={"service_id": "id_card"})  # fmt: skip
        assert (issued.status_code, issued.json()["code"]) == (409, "branch_node_owned")

        links = (await admin.get("/api/v1/nodes")).json()
        assert [(x["branch"], x["connected"], x["last_event"]["seq"]) for x in links] == [
            (BRANCH, True, 1)
        ]

        revoked = await admin.post(f"/api/v1/devices/{made.json()['device']['id']}/revoke")
        assert revoked.status_code == 200, revoked.text
        live_server.rigi.accounts._device_cache.clear()
        refused = await admin.get(NODES + "/cursor", headers=node)
        assert refused.status_code == 401
