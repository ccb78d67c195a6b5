"""An administrator who is disabled, loses the role or has the password reset loses the national
view at once: their open `/ws/national` closes with 4403 within a second of the change's
answer, as an operator's
console does, while another administrator's feed stays open. An administrator belongs to no
branch, so no branch stream carries the change: on one process the API checks the feed; across
two processes (PostgreSQL + Redis) the bus's `sessions` channel tells the other one."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from queue_server.access.accounts import Accounts
from queue_server.access.principal import Role
from queue_server.store.database import Database
from queue_server.store.queue import utc_now
from tests.support import PASSWORD, POSTGRES_ENV, LiveServer, need_service
from tests.test_scaleout import Cluster, cluster

__all__ = ["cluster"]  # the fixture, imported for the two-process test
CLOSED_WITHIN_S = 1.0
WAIT_S = 20.0  # a hang guard, not a timing assertion
FORBIDDEN = 4403
UNAUTHORIZED = 4401


async def _signed_in(url: str, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=url, timeout=30)
    response = await client.post(
        "/api/v1/session", json={"username": username, "password": PASSWORD}
    )
    response.raise_for_status()
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


async def _national(url: str, client: httpx.AsyncClient) -> ClientConnection:
    """The person's national feed, past its snapshot."""
    ws_url = url.replace("http://", "ws://") + "/ws/national"
    websocket = await connect(
        ws_url,
        additional_headers={"Cookie": f"rigi_session={client.cookies['rigi_session']}"},
        compression=None,
    )
    await websocket.send(json.dumps({"type": "hello"}))
    while json.loads(await asyncio.wait_for(websocket.recv(), WAIT_S))["type"] != "snapshot":
        pass
    return websocket


async def _closed_code(websocket: ClientConnection) -> int | None:
    """Read (answering pings) until the server closes; its close code."""
    try:
        while True:
            message = json.loads(await asyncio.wait_for(websocket.recv(), WAIT_S))
            if message["type"] == "ping":
                await websocket.send('{"type":"pong"}')
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


async def _still_open(websocket: ClientConnection) -> bool:
    await websocket.send('{"type":"pong"}')  # answers nothing; fails on a closed feed
    with_a_frame = asyncio.wait_for(websocket.recv(), 0.2)
    try:
        await with_a_frame
    except TimeoutError:
        return True
    except ConnectionClosed:
        return False
    return True


def _person_id(people: list[dict[str, Any]], username: str) -> str:
    return next(p["id"] for p in people if p["username"] == username)


@pytest.mark.parametrize(
    ("change", "body"),
    [("disable", None), ("role", {"role": "manager", "branch": "testhall"}),
     ("reset-password", None)],
)  # fmt: skip
async def test_a_signed_out_administrators_national_feed_closes_at_once(
    live_server: LiveServer, change: str, body: dict[str, Any] | None
) -> None:
    watcher = live_server.user("admin", name=f"admin-watch-{change}")
    other = live_server.user("admin", name=f"admin-other-{change}")
    async with asyncio.timeout(WAIT_S * 2):
        boss = await _signed_in(live_server.url, live_server.user("admin", name="admin-boss"))
        watching = await _signed_in(live_server.url, watcher)
        staying = await _signed_in(live_server.url, other)
        try:
            watched = await _national(live_server.url, watching)
            kept = await _national(live_server.url, staying)
            target = _person_id((await boss.get("/api/v1/people")).json(), watcher)
            changed = await boss.post(f"/api/v1/people/{target}/{change}", json=body)
            started = time.monotonic()  # the change has committed (a reset hashes first)
            assert changed.status_code == 200, changed.text
            assert await _closed_code(watched) == FORBIDDEN
            assert time.monotonic() - started < CLOSED_WITHIN_S
            assert await _still_open(kept)
            assert (await watching.get("/api/v1/session")).status_code == 401
            await kept.close()
        finally:
            for client in (boss, watching, staying):
                await client.aclose()


async def test_signing_out_closes_the_national_feed_and_a_stale_session_is_refused(
    live_server: LiveServer,
) -> None:
    admin = await _signed_in(live_server.url, live_server.user("admin", name="admin-leaving"))
    try:
        cookie = admin.cookies["rigi_session"]
        watched = await _national(live_server.url, admin)
        started = time.monotonic()
        assert (await admin.post("/api/v1/session/logout")).status_code == 200
        assert await _closed_code(watched) == FORBIDDEN
        assert time.monotonic() - started < CLOSED_WITHIN_S
        # The old cookie no longer opens the feed at all.
        async with connect(
            live_server.ws_url + "/ws/national",
            additional_headers={"Cookie": f"rigi_session={cookie}"},
        ) as refused:
            await refused.send(json.dumps({"type": "hello"}))
            assert await _closed_code(refused) == UNAUTHORIZED
    finally:
        await admin.aclose()


async def _admins(database_url: str, *usernames: str) -> None:
    database = Database(database_url)
    try:
        accounts = Accounts(database, utc_now)
        for username in usernames:
            await accounts.create_user(username, PASSWORD, Role.ADMIN, None, by="test")
    finally:
        await database.dispose()


@pytest.mark.postgres
@pytest.mark.redis
async def test_disabling_on_one_process_closes_the_feed_on_the_other(cluster: Cluster) -> None:
    first, second = cluster.urls
    await _admins(need_service(POSTGRES_ENV, "PostgreSQL"), "admin-one", "admin-two")
    boss = await _signed_in(first, "admin-one")
    watching = await _signed_in(second, "admin-two")
    try:
        watched = await _national(second, watching)
        # The second process has read (and keeps for a moment) admin-two's row.
        assert (await watching.get("/api/v1/people")).status_code == 200
        target = _person_id((await boss.get("/api/v1/people")).json(), "admin-two")
        started = time.monotonic()
        assert (await boss.post(f"/api/v1/people/{target}/disable")).status_code == 200
        assert await _closed_code(watched) == FORBIDDEN
        assert time.monotonic() - started < CLOSED_WITHIN_S
        # Told on the bus, the second process refuses the cookie too, not after its moment.
        assert (await watching.get("/api/v1/people")).status_code == 401
        assert time.monotonic() - started < CLOSED_WITHIN_S
    finally:
        await boss.aclose()
        await watching.aclose()
