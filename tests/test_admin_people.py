"""People management: a manager lists the operators of their branch and disables one; the
operator's open console feed closes within a second and their next request is 401; the act is
in the audit trail. A manager cannot disable someone outside their remit."""

from __future__ import annotations

import asyncio
import json
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support import PASSWORD, LiveServer

BRANCH = "testhall"
CLOSED_WITHIN_S = 1.0
WAIT_S = 20.0  # a hang guard


async def test_a_manager_disables_an_operator_whose_console_is_signed_out_at_once(
    live_server: LiveServer,
) -> None:
    live_server.user("manager", "otherhall")
    async with live_server.client("operator") as operator, live_server.client("manager") as manager:
        people = (await manager.get("/api/v1/people")).json()
        target = next(p for p in people if p["username"] == "operator-testhall")
        assert target["active"] is True
        assert {p["branch"] for p in people} == {BRANCH}
        cookie = "; ".join(f"{name}={value}" for name, value in operator.cookies.items())
        async with connect(
            f"{live_server.ws_url}/ws/branches/{BRANCH}/counters/c01",
            additional_headers={"Cookie": cookie},
        ) as console:
            await console.send(json.dumps({"type": "hello", "token": None}))
            assert json.loads(await asyncio.wait_for(console.recv(), WAIT_S))["type"] == "counter"
            started = time.monotonic()
            disabled = await manager.post(f"/api/v1/people/{target['id']}/disable")
            assert disabled.status_code == 200, disabled.text
            assert disabled.json()["active"] is False
            try:
                while True:
                    await asyncio.wait_for(console.recv(), WAIT_S)
            except ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 4403
            assert time.monotonic() - started < CLOSED_WITHIN_S
        refused = await operator.get("/api/v1/session")
        assert refused.status_code == 401
        again = await manager.post(f"/api/v1/people/{target['id']}/disable")
        assert (again.status_code, again.json()["code"]) == (409, "already_disabled")
        trail = (await manager.get("/api/v1/audit", params={"kind": "user"})).json()["entries"]
        assert next((e["kind"], e["target"], e["person"]) for e in trail) == (
            "user.disabled", "operator-testhall", "manager-testhall",
        )  # fmt: skip
    sign_in = {"username": "operator-testhall", "password": PASSWORD}
    async with live_server.client(None) as anonymous:
        assert (await anonymous.post("/api/v1/session", json=sign_in)).status_code == 401
    async with live_server.client("manager", "otherhall") as stranger:
        own = {p["username"] for p in (await stranger.get("/api/v1/people")).json()}
        assert "operator-testhall" not in own
        refused = await stranger.post(f"/api/v1/people/{target['id']}/disable")
        assert (refused.status_code, refused.json()["code"]) == (404, "unknown_person")
