"""Managing people, part 2, against a real server on SQLite and PostgreSQL: a manager resets an
operator's password (the operator must choose a new one before anything else), says which
counters an operator may take, and an admin moves a person to another role and branch; a
manager cannot reach beyond their branch's operators. Every change is in the audit trail."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support import PASSWORD, LiveServer

B = "/api/v1/branches/testhall"
NEW_PASSWORD = "violet harbour tractor 91"
CLOSED_WITHIN_S = 1.0
WAIT_S = 20.0  # a hang guard


async def _person(manager: httpx.AsyncClient, username: str) -> dict[str, Any]:
    people = (await manager.get("/api/v1/people")).json()
    return next(p for p in people if p["username"] == username)  # type: ignore[no-any-return]


async def _trail(reader: httpx.AsyncClient) -> list[tuple[str, str, str]]:
    entries = (await reader.get("/api/v1/audit", params={"kind": "user"})).json()["entries"]
    return [(e["kind"], e["target"], e["person"]) for e in entries]


async def test_a_reset_password_must_be_replaced_before_anything_else(
    live_server: LiveServer,
) -> None:
    async with live_server.client("operator") as old, live_server.client("manager") as manager:
        operator = await _person(manager, "operator-testhall")
        cookie = "; ".join(f"{name}={value}" for name, value in old.cookies.items())
        async with connect(
            f"{live_server.ws_url}{B.replace('/api/v1', '/ws')}/counters/c01",
            additional_headers={"Cookie": cookie},
        ) as console:
            await console.send(json.dumps({"type": "hello", "token": None}))
            assert json.loads(await asyncio.wait_for(console.recv(), WAIT_S))["type"] == "counter"
            started = time.monotonic()
            reset = await manager.post(f"/api/v1/people/{operator['id']}/reset-password")
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(console.recv(), WAIT_S)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
            assert time.monotonic() - started < CLOSED_WITHIN_S
        assert reset.status_code == 200, reset.text
        one_time = reset.json()["one_time_password"]
        assert len(one_time) >= 16
        assert (await old.get(f"{B}/queues")).status_code == 401  # the old session ended
        assert (await _person(manager, "operator-testhall"))["must_change_password"] is True
        assert ("user.password_reset", "operator-testhall", "manager-testhall") in await _trail(
            manager
        )

    async with live_server.client(None) as fresh:
        stale = {"username": "operator-testhall", "password": PASSWORD}
        assert (await fresh.post("/api/v1/session", json=stale)).status_code == 401
        signed = await fresh.post(
            "/api/v1/session", json={"username": "operator-testhall", "password": one_time}
        )
        assert signed.status_code == 200, signed.text
        assert signed.json()["password_change_required"] is True
        fresh.headers["X-CSRF-Token"] = signed.json()["csrf_token"]
        refused = await fresh.get(f"{B}/queues")
        assert (refused.status_code, refused.json()["code"]) == (403, "password_change_required")
        opened = await fresh.post(f"{B}/counters/c01/open")
        assert opened.json()["code"] == "password_change_required"

        wrong = await fresh.post(
            "/api/v1/session/password", json={"old": "not it at all", "new": NEW_PASSWORD}
        )
        assert (wrong.status_code, wrong.json()["code"]) == (422, "wrong_password")
        weak = await fresh.post(
            "/api/v1/session/password", json={"old": one_time, "new": "password123"}
        )
        assert (weak.status_code, weak.json()["code"]) == (422, "weak_password")
        assert (await fresh.get(f"{B}/queues")).status_code == 403  # still nothing else

        changed = await fresh.post(
            "/api/v1/session/password", json={"old": one_time, "new": NEW_PASSWORD}
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["password_change_required"] is False
        fresh.headers["X-CSRF-Token"] = changed.json()["csrf_token"]
        assert (await fresh.get(f"{B}/queues")).status_code == 200
        assert (await fresh.post(f"{B}/counters/c01/open")).status_code == 200

    async with live_server.client(None) as later:
        again = await later.post(
            "/api/v1/session", json={"username": "operator-testhall", "password": NEW_PASSWORD}
        )
        assert again.status_code == 200 and again.json()["password_change_required"] is False
    async with live_server.client("manager") as manager:
        assert ("user.password_changed", "operator-testhall", "operator-testhall") in (
            await _trail(manager)
        )


async def test_an_operator_opens_only_the_counters_the_manager_allowed(
    live_server: LiveServer,
) -> None:
    async with live_server.client("manager") as manager:
        operator = await _person(manager, live_server.user("operator"))
        path = f"/api/v1/people/{operator['id']}/counters"
        unknown = await manager.post(path, json={"counters": ["c02", "nowhere"]})
        assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_counter")
        assert (await _person(manager, "operator-testhall"))["allowed_counters"] == []
        allowed = await manager.post(path, json={"counters": ["c02"]})
        assert allowed.status_code == 200 and allowed.json()["allowed_counters"] == ["c02"]

        async with live_server.client("operator") as at_desk:
            refused = await at_desk.post(f"{B}/counters/c01/open")
            assert (refused.status_code, refused.json()["code"]) == (403, "counter_not_allowed")
            assert (await at_desk.post(f"{B}/counters/c02/open")).status_code == 200
            assert (await at_desk.post(f"{B}/counters/c02/close")).status_code == 200
            await manager.post(path, json={"counters": []})  # any counter of the branch again
            assert (await at_desk.post(f"{B}/counters/c01/open")).status_code == 200
        # a manager is not limited by an operator's list
        assert (await manager.post(f"{B}/counters/c03/open")).status_code == 200
        kinds = [kind for kind, target, _ in await _trail(manager) if target == "operator-testhall"]
        assert kinds.count("user.counters_set") == 2


async def test_roles_and_branches_change_within_each_persons_remit(
    live_server: LiveServer,
) -> None:
    live_server.user("operator", "otherhall")
    async with live_server.client("manager") as manager, live_server.client("admin") as admin:
        mine = await _person(manager, live_server.user("operator"))
        promote = await manager.post(
            f"/api/v1/people/{mine['id']}/role", json={"role": "manager", "branch": "testhall"}
        )
        assert (promote.status_code, promote.json()["code"]) == (403, "forbidden_assignment")
        away = await manager.post(
            f"/api/v1/people/{mine['id']}/role", json={"role": "operator", "branch": "otherhall"}
        )
        assert (away.status_code, away.json()["code"]) == (403, "forbidden_assignment")
        stranger = await _person(admin, "operator-otherhall")
        beyond = await manager.post(f"/api/v1/people/{stranger['id']}/reset-password")
        assert (beyond.status_code, beyond.json()["code"]) == (404, "unknown_person")
        nowhere = await admin.post(
            f"/api/v1/people/{mine['id']}/role", json={"role": "manager", "branch": "atlantis"}
        )
        assert (nowhere.status_code, nowhere.json()["code"]) == (404, "unknown_branch")
        assert (await _person(admin, "operator-testhall"))["role"] == "operator"

        async with live_server.client("operator") as moved:
            assert (await moved.get(f"{B}/queues")).status_code == 200
            changed = await admin.post(
                f"/api/v1/people/{mine['id']}/role",
                json={"role": "manager", "branch": "otherhall"},
            )
            assert changed.status_code == 200, changed.text
            assert (changed.json()["role"], changed.json()["branch"]) == ("manager", "otherhall")
            assert (await moved.get(f"{B}/queues")).status_code == 401  # sessions ended
        assert "operator-testhall" not in {
            p["username"] for p in (await manager.get("/api/v1/people")).json()
        }
        trail = await _trail(admin)
        assert ("user.changed", "operator-testhall", "admin-testhall") in trail
