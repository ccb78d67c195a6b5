"""Anonymous requests that used to end in a 500 (issue 18), a 16 MiB WebSocket hello, a revoked
kiosk that used to issue tickets as a phone, and rate-limit keys that ignored the deployment's
prefix."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from queue_server.access.ratelimit import Limit, RedisLimiter
from tests.security_server import serve
from tests.support import REDIS_ENV, LiveServer, need_service, test_settings

B = "/api/v1/branches/testhall"
JSON = {"Content-Type": "application/json"}
HUGE_INTEGER = "9" * 4301  # past Python's 4,300-digit limit for int()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (f"{B}/tickets", '{"service_id": "id_card", "x": ' + HUGE_INTEGER + "}"),
        ("/api/v1/session", '{"username": "nino", "password": ' + HUGE_INTEGER + "}"),
    ],
    ids=["ticket", "sign-in"],
)
async def test_a_json_integer_of_4301_digits_is_a_bad_request(
    sqlite_server: LiveServer, path: str, body: str
) -> None:
    async with sqlite_server.client(None) as client:
        response = await client.post(path, content=body, headers=JSON)
    assert (response.status_code, response.json()["code"]) == (400, "malformed_json")


@pytest.mark.parametrize(
    "path", ["/static/kiosk%00.js", "/static/%00", "/docs/assets/swagger-ui.css%00", "/t/%00"]
)
async def test_a_nul_byte_in_a_path_is_a_bad_request(sqlite_server: LiveServer, path: str) -> None:
    async with sqlite_server.client(None) as client:
        response = await client.get(path)
    assert (response.status_code, response.json()["code"]) == (400, "bad_path")


async def test_a_revoked_kiosk_gets_401_and_issues_nothing(sqlite_server: LiveServer) -> None:
    async with sqlite_server.client("manager") as manager:
        made = await manager.post(f"{B}/devices", json={"role": "kiosk", "name": "Kiosk 9"})
        device, token = made.json()["device"], made.json()["token"]
        kiosk = {"Authorization": f"Bearer {token}"}
        issued = await manager.post(f"{B}/tickets", json={"service_id": "id_card"}, headers=kiosk)
        assert issued.status_code == 201
        await manager.post(f"/api/v1/devices/{device['id']}/revoke")
        before = (await manager.get(f"{B}/snapshot")).json()["seq"]
    async with sqlite_server.client(None) as anyone:
        refused = await anyone.post(f"{B}/tickets", json={"service_id": "id_card"}, headers=kiosk)
        assert (refused.status_code, refused.json()["code"]) == (401, "unauthorized")
    async with sqlite_server.client("manager") as manager:
        assert (await manager.get(f"{B}/snapshot")).json()["seq"] == before


@pytest.mark.redis
async def test_rate_limit_keys_live_under_the_deployments_prefix() -> None:
    import redis.asyncio as redis

    url = need_service(REDIS_ENV, "Redis")
    client = redis.Redis.from_url(url)
    limiter = RedisLimiter(url, prefix="holes-deployment:")
    try:
        await client.flushdb()
        await limiter.hit("issue:kiosk-1", Limit.parse("5/minute"))
        await limiter.hold("login-user:nino:hold", 30)
        keys = sorted(k.decode() if isinstance(k, bytes) else k for k in await client.keys("*"))
        assert keys and all(key.startswith("holes-deployment:rate:") for key in keys), keys
    finally:
        await limiter.close()
        await client.flushdb()
        await client.aclose()


async def test_a_websocket_hello_just_under_16_mib_is_refused_as_too_big(tmp_path: Path) -> None:
    with serve(tmp_path) as server:
        url = server.url.replace("http://", "ws://") + "/ws/branches/testhall/board"
        async with websockets.connect(url, max_size=None, open_timeout=10) as feed:
            huge = json.dumps({"type": "hello", "token": "x" * (16 * 1024 * 1024 - 1024)})
            with pytest.raises(ConnectionClosed) as closed:
                await feed.send(huge)
                await asyncio.wait_for(feed.recv(), timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # too big
        # An ordinary hello is read as before (and refused: no display token here).
        async with websockets.connect(url, open_timeout=10) as feed:
            await feed.send(json.dumps({"type": "hello"}))
            with pytest.raises(ConnectionClosed) as refused:
                await asyncio.wait_for(feed.recv(), timeout=10)
        assert refused.value.rcvd is not None and refused.value.rcvd.code == 4401


def test_a_client_leaving_mid_body_leaves_no_traceback_in_the_log(tmp_path: Path) -> None:
    with serve(tmp_path) as server:
        for path in (f"{B}/tickets", "/api/v1/session"):
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
                raw.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    'Content-Length: 1000\r\n\r\n{"service_id": '.encode()
                )
                time.sleep(0.3)
        time.sleep(0.5)
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
    log = server.log_text()
    assert "Traceback" not in log and "unexpected error" not in log, log


@pytest.fixture
def limits_server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = test_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}", tmp_path,
        body_timeout_s=1.0, ws_per_address=3,
    )  # fmt: skip
    server = LiveServer(settings).start()
    yield server
    server.stop()


async def test_oversized_headers_get_431(limits_server: LiveServer) -> None:
    async with limits_server.client(None) as client:
        response = await client.get("/api/v1/branches", headers={"X-Padding": "a" * 20_000})
        assert (response.status_code, response.json()["code"]) == (431, "headers_too_large")
        assert (await client.get("/api/v1/branches")).status_code == 200


def test_a_body_that_trickles_in_is_cut_off_with_408(limits_server: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", limits_server.port), timeout=10) as raw:
        started = time.monotonic()
        raw.sendall(
            f"POST {B}/tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            'Content-Length: 100\r\n\r\n{"service_id": '.encode()
        )
        answer = raw.recv(4096).decode()
        waited = time.monotonic() - started
    assert answer.startswith("HTTP/1.1 408") and "body_timeout" in answer, answer
    assert 0.9 <= waited < 5


async def test_websockets_per_address_are_bounded(limits_server: LiveServer) -> None:
    async with limits_server.client(None) as phone:
        ticket = (await phone.post(f"{B}/tickets", json={"service_id": "id_card"})).json()
    url = f"{limits_server.ws_url}/ws/tickets/{ticket['id']}"
    async with contextlib.AsyncExitStack() as stack:
        feeds = [await stack.enter_async_context(websockets.connect(url)) for _ in range(3)]
        for feed in feeds:
            assert json.loads(await asyncio.wait_for(feed.recv(), 10))["type"] == "ticket"
        with pytest.raises(InvalidStatus):
            async with websockets.connect(url):
                pass
        await feeds[0].close()
        await asyncio.sleep(0.2)
        async with websockets.connect(url) as again:
            assert json.loads(await asyncio.wait_for(again.recv(), 10))["type"] == "ticket"


async def test_a_boards_snapshot_is_what_the_openapi_document_says(
    sqlite_server: LiveServer,
) -> None:
    import jsonschema

    async with sqlite_server.client("operator") as operator:
        await operator.post(f"{B}/counters/c01/open")
        await operator.post(f"{B}/tickets", json={"service_id": "id_card"})
        await operator.post(f"{B}/counters/c01/call-next")
    async with sqlite_server.client("display") as display:
        snapshot = (await display.get(f"{B}/snapshot")).json()
        document = (await display.get("/openapi.json")).json()
    assert snapshot["board"]["calls"], snapshot
    schema = {"$ref": "#/components/schemas/SnapshotView"} | {"components": document["components"]}
    jsonschema.validate(snapshot, schema)  # raises on a missing `ticket_id` or a wrong type
