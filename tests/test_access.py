"""Access control against a real server: who may use which route and feed, CSRF and Origin
checks, revoked devices, rate limits, sign-in, the production secret, create-admin, the audit log.

The permission matrix is generated from the routes the app serves: a new route under /api/ or
/ws/ that has no row in `EXPECTED_HTTP` / `EXPECTED_FEEDS` fails the test until someone decides
who may use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from queue_server.access.principal import Role
from queue_server.settings import Settings, load_settings
from tests.support import PASSWORD, REDIS_ENV, LiveServer, need_service
from tests.support import test_settings as settings_for

BRANCH = "testhall"
OTHER_BRANCH = "otherhall"
B = f"/api/v1/branches/{BRANCH}"
WAIT_S = 20.0  # a hang guard, not a timing assertion
FOREIGN_ORIGIN = "https://evil.example"

# ---- the permission matrix ---------------------------------------------------------------

ANONYMOUS = "anonymous"
OPERATOR_ELSEWHERE = "operator@otherhall"
ROLES = (
    ANONYMOUS, "kiosk", "display", "printer", "operator", OPERATOR_ELSEWHERE, "manager", "admin",
)  # fmt: skip
EVERYONE = frozenset(ROLES)
STAFF = frozenset({"operator", "manager", "admin"})
SIGNED_IN = STAFF | {OPERATOR_ELSEWHERE}  # routes about one's own session
MANAGERS = frozenset({"manager", "admin"})
ADMINS = frozenset({"admin"})
# A phone issues only with the hall pass the lobby screens show (tests/test_hall_pass.py); the
# matrix's anonymous client has none, so it meets ANONYMOUS_REFUSALS there.
ISSUERS = frozenset({"kiosk"}) | STAFF
HALL_DEVICES = frozenset({"kiosk", "display"}) | STAFF  # the hall's own screens show the pass
DISPLAYS = frozenset({"display"}) | STAFF
PRINTERS = frozenset({"printer"})

C = B + "/counters/{counter}"
# "METHOD path-template" → the roles (at testhall) that may use it; every other role is refused.
EXPECTED_HTTP: dict[str, frozenset[str]] = {
    "POST /api/v1/session": EVERYONE,
    "GET /api/v1/session": SIGNED_IN,
    "POST /api/v1/session/logout": SIGNED_IN,
    "POST /api/v1/users": MANAGERS,
    "POST /api/v1/branches/{branch}/devices": MANAGERS,
    "GET /api/v1/branches/{branch}/devices": MANAGERS,
    "POST /api/v1/devices/{device_id}/revoke": MANAGERS,
    "GET /api/v1/branches/{branch}/audit": MANAGERS,
    "GET /api/v1/audit": MANAGERS,
    "GET /api/v1/people": MANAGERS,
    "POST /api/v1/people/{user_id}/disable": MANAGERS,
    "POST /api/v1/people/{user_id}/role": MANAGERS,
    "POST /api/v1/people/{user_id}/counters": MANAGERS,
    "POST /api/v1/people/{user_id}/reset-password": MANAGERS,
    "POST /api/v1/session/password": SIGNED_IN,  # no body here: a 422 that changes nothing
    "GET /api/v1/audit.csv": MANAGERS,
    "GET /api/v1/branches": EVERYONE,
    "GET /api/v1/branches/{branch}": EVERYONE,
    "GET /api/v1/branches/{branch}/queues": STAFF,  # waiting counts: the console may show them
    "GET /api/v1/branches/{branch}/counters": MANAGERS,  # names and tickets in hand
    "POST /api/v1/tickets/{ticket_id}/feedback": EVERYONE,
    "GET /api/v1/branches/{branch}/feedback": MANAGERS,
    "GET /api/v1/branches/{branch}/unspoken-calls": MANAGERS,
    "GET /api/v1/branches/{branch}/snapshot": DISPLAYS,
    "GET /api/v1/branches/{branch}/announcement.wav": DISPLAYS,
    "POST /api/v1/branches/{branch}/tickets": ISSUERS,
    "GET /api/v1/branches/{branch}/hall-pass": HALL_DEVICES,
    "GET /api/v1/tickets/{ticket_id}": EVERYONE,  # the id is unguessable
    "POST /api/v1/tickets/{ticket_id}/cancel": EVERYONE,
    "POST /api/v1/branches/{branch}/tickets/{ticket_id}/priority": STAFF,  # granted, audited
    **{
        f"POST /api/v1/branches/{{branch}}/counters/{{counter}}/{action}": STAFF
        for action in (
            "open",
            "pause",
            "close",
            "call-next",
            "call",
            "recall",
            "recycle",
            "start",
            "finish",
            "no-show",
            "transfer",
        )
    },
    "POST /api/v1/branches/{branch}/counters/{counter}/take-over": MANAGERS,
    "GET /api/v1/branches/{branch}/counters/{counter}/waiting": STAFF,
    "GET /api/v1/branches/{branch}/print-jobs": STAFF,
    "GET /api/v1/branches/{branch}/printers": STAFF,
    "POST /api/v1/tickets/{ticket_id}/reprint": STAFF,
    "POST /api/v1/tickets/{ticket_id}/subscribe": EVERYONE,  # the ticket's holder
    "POST /api/v1/tickets/{ticket_id}/late": EVERYONE,
    "POST /api/v1/notify/sms-inbound": frozenset(),  # see SIGNED_ROUTES
    "GET /api/v1/branches/{branch}/notify/messages": STAFF,
    "POST /api/v1/branches/{branch}/notify/broadcast": MANAGERS,
    # An operator's branch report holds only their own figures (tests/test_reports.py).
    **{f"GET /api/v1/branches/{{branch}}/reports{form}": STAFF for form in ("", ".csv", ".xlsx")},
    **{f"GET /api/v1/reports{form}": frozenset({"admin"}) for form in ("", ".csv", ".xlsx")},
    "GET /api/v1/branches/{branch}/services/{service}/slots": EVERYONE,
    "GET /api/v1/branches/{branch}/services/{service}/nearby": EVERYONE,  # public waits
    "POST /api/v1/branches/{branch}/bookings": EVERYONE,
    "POST /api/v1/branches/{branch}/remote": EVERYONE,  # the one-time code decides
    "GET /api/v1/branches/{branch}/fairness": MANAGERS,
    "GET /api/v1/branches/{branch}/room": EVERYONE,
    "POST /api/v1/branches/{branch}/room/requests": EVERYONE,
    "GET /api/v1/branches/{branch}/room/requests": MANAGERS,
    "POST /api/v1/branches/{branch}/room/requests/{request_id}/approve": MANAGERS,
    "POST /api/v1/branches/{branch}/room/requests/{request_id}/decline": MANAGERS,
    "POST /api/v1/bookings/{booking_id}/confirm": EVERYONE,  # the one-time code decides
    "POST /api/v1/bookings/{booking_id}/reschedule": EVERYONE,  # the signed token decides
    "POST /api/v1/bookings/{booking_id}/cancel": EVERYONE,
    "POST /api/v1/bookings/{booking_id}/qr": EVERYONE,  # the signed token decides
    "POST /api/v1/branches/{branch}/check-in": frozenset({"kiosk"}) | STAFF,
    "GET /api/v1/organisation": ADMINS,
    "POST /api/v1/organisation": ADMINS,
    "POST /api/v1/agencies/{agency}": ADMINS,
    "POST /api/v1/services/{service}": ADMINS,
    "POST /api/v1/branches/{branch}/definition": ADMINS,
    "GET /api/v1/branches/{branch}/organisation": MANAGERS,
    "POST /api/v1/branches/{branch}/organisation": MANAGERS,
    "POST /api/v1/branches/{branch}/counters/{counter}/profile": MANAGERS,
    # Branch nodes (docs/offline.md): only a node's token, which no role here holds.
    "POST /api/v1/nodes/{branch}/events": frozenset(),
    "GET /api/v1/nodes/{branch}/cursor": frozenset(),
    "GET /api/v1/nodes/{branch}/down/{channel}": frozenset(),
    "POST /api/v1/branches/{branch}/node-token": frozenset({"admin"}),
    "POST /api/v1/branches/{branch}/release-node": frozenset({"admin"}),
    "GET /api/v1/nodes": frozenset({"admin"}),
    "GET /api/v1/nodes/{branch}/link": MANAGERS,
    "GET /api/v1/node/link": SIGNED_IN,  # 404 here: this server is not a node
}
# What an anonymous caller without a hall pass meets where it is not plainly unauthorized.
ANONYMOUS_REFUSALS: dict[str, tuple[int, str]] = {
    "POST /api/v1/branches/{branch}/tickets": (403, "hall_pass_required"),
}
# Routes no role opens: a signature of the body does (the SMS gateway's webhook). Every role,
# signed in or not, is refused with this status and code.
SIGNED_ROUTES: dict[str, tuple[int, str]] = {
    "POST /api/v1/notify/sms-inbound": (401, "bad_signature"),
}
EXPECTED_FEEDS: dict[str, frozenset[str]] = {
    "/ws/branches/{branch}/board": DISPLAYS | {"kiosk"},  # a kiosk refreshes its services
    "/ws/branches/{branch}/counters/{counter}": STAFF,
    "/ws/tickets/{ticket_id}": EVERYONE,
    "/ws/printers": PRINTERS,
    # The national view: every branch at once, for the central office (docs/reports.md).
    "/ws/national": frozenset({"admin"}),
}
# Close codes of a refused feed, by the HTTP status the refusal would have.
FEED_CLOSE = {401: 4401, 403: 4403}
# /ws/printers closes like every feed (4401 bad token, 4403 wrong device), except that a hello
# without a token (anonymous, people) is a bad hello, 4400.
PRINTER_FEED_CLOSE = FEED_CLOSE
PRINTER_HELLO_WITHOUT_TOKEN = 4400


def _expected_refusal(route_roles: frozenset[str], role: str) -> tuple[int, str] | None:
    """None if `role` may use the route, else the status and code of its refusal."""
    if role in route_roles:
        return None
    if role == ANONYMOUS:
        return 401, "unauthorized"
    if role == OPERATOR_ELSEWHERE and "operator" in route_roles:
        return 403, "forbidden_branch"
    return 403, "forbidden_role"


def _served_routes(routes: list[BaseRoute]) -> tuple[set[str], set[str], list[str]]:
    """The app's HTTP operations and feeds under /api/ and /ws/, and anything else that is not
    a read-only page (those must be public and are not listed)."""
    http: set[str] = set()
    feeds: set[str] = set()
    unexpected: list[str] = []
    for route in routes:
        if isinstance(route, WebSocketRoute):
            feeds.add(route.path)
        elif isinstance(route, Route) and route.path.startswith("/api/"):
            http.update(f"{m} {route.path}" for m in route.methods or () if m != "HEAD")
        elif isinstance(route, Route):
            if set(route.methods or ()) - {"GET", "HEAD"}:
                unexpected.append(f"{sorted(route.methods or ())} {route.path}")
        elif not isinstance(route, Mount):
            unexpected.append(repr(route))
    return http, feeds, unexpected


def _client(server: LiveServer, role: str) -> Any:
    if role == ANONYMOUS:
        return server.client(None, hall_pass=False)
    if role == OPERATOR_ELSEWHERE:
        return server.client("operator", OTHER_BRANCH)
    return server.client(role)


@dataclass
class _Fixture:
    """What the requests of the matrix refer to."""

    server: LiveServer
    ticket_ids: Iterator[str]
    names: Iterator[int]

    def new_device(self) -> str:
        view, _, _ = self.server.run(
            self.server.rigi.accounts.create_device(
                BRANCH, Role.KIOSK, f"spare-{next(self.names)}", by="test"
            )
        )
        return str(view["id"])

    def new_operator(self) -> str:
        view = self.server.run(
            self.server.rigi.accounts.create_user(
                f"spare-op-{next(self.names)}", PASSWORD, Role.OPERATOR, BRANCH, by="test"
            )
        )
        return str(view["id"])

    def path(self, template: str) -> str:
        values = {
            "branch": BRANCH,
            "counter": "c01",
            "ticket_id": next(self.ticket_ids) if "{ticket_id}" in template else "",
            "device_id": self.new_device() if "{device_id}" in template else "",
            "user_id": self.new_operator() if "{user_id}" in template else "",
            "service": "id_card",
            "agency": "psda",
            "booking_id": "0" * 32,
            "channel": "bookings",
            "request_id": "0" * 32,
        }
        if template.endswith("/node-token"):  # it makes the branch node-owned: not testhall,
            values["branch"] = "otherhall"  # whose tickets, devices and people come next
        unknown = set(re.findall(r"{(\w+)}", template)) - values.keys()
        assert not unknown, f"the matrix has no value for {unknown} in {template}"
        return template.format(**values)

    def body(self, key: str) -> dict[str, Any] | None:
        n = next(self.names)
        bodies: dict[str, dict[str, Any]] = {
            "POST /api/v1/session": {"username": "manager-testhall", "password": PASSWORD},
            "POST /api/v1/users": {
                "username": f"newop{n}",
                "password": PASSWORD,
                "role": "operator",
                "branch": BRANCH,
            },
            "POST /api/v1/branches/{branch}/devices": {"role": "display", "name": f"tv {n}"},
            "POST /api/v1/people/{user_id}/role": {"role": "operator", "branch": BRANCH},
            "POST /api/v1/people/{user_id}/counters": {"counters": ["c01", "c02"]},
            "POST /api/v1/branches/{branch}/tickets": {"service_id": "id_card"},
            f"POST {C}/pause": {"reason": "lunch"},
            f"POST {C}/finish": {"outcome": "served"},
            f"POST {C}/transfer": {"service_id": "passport"},
            "POST /api/v1/branches/{branch}/check-in": {"code": "NOSUCHCODE"},
        }
        if key == f"POST {C}/call":
            return {"ticket_id": next(self.ticket_ids)}
        return bodies.get(key)


def _issue_tickets(server: LiveServer, count: int) -> list[str]:
    async def issue() -> list[str]:
        ids = []
        for _ in range(count):
            change = await server.rigi.store.issue_ticket(BRANCH, "stamp", actor="test")
            ids.append(change.result["id"])
        return ids

    return server.run(issue())  # type: ignore[no-any-return]


async def test_every_route_is_allowed_or_refused_by_role_as_the_matrix_says(
    sqlite_server: LiveServer,
) -> None:
    server = sqlite_server
    http, feeds, unexpected = _served_routes(server.app.routes)
    assert not unexpected, f"routes outside /api and /ws that are not read-only pages: {unexpected}"
    assert not http - EXPECTED_HTTP.keys(), (
        f"routes without a rule: {sorted(http - EXPECTED_HTTP.keys())}"
    )
    assert not EXPECTED_HTTP.keys() - http, (
        f"rules for routes not served: {sorted(EXPECTED_HTTP.keys() - http)}"
    )
    assert feeds == EXPECTED_FEEDS.keys(), (
        f"feeds served {sorted(feeds)} != rules {sorted(EXPECTED_FEEDS)}"
    )

    fixture = _Fixture(server, iter(_issue_tickets(server, 200)), itertools.count())
    wrong: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        clients = {role: await stack.enter_async_context(_client(server, role)) for role in ROLES}
        for key, allowed in sorted(EXPECTED_HTTP.items(), key=_logout_last):
            for role in ROLES:
                response = await _request(server, clients[role], role, key, fixture)
                _check(wrong, key, role, allowed, response)
    assert not wrong, "\n".join(wrong)


def _logout_last(item: tuple[str, Any]) -> tuple[bool, str]:
    """Signing out ends the role's session, so it comes after every other route."""
    return item[0].endswith("/logout"), item[0]


async def _request(
    server: LiveServer, client: httpx.AsyncClient, role: str, key: str, fixture: _Fixture
) -> httpx.Response:
    method, template = key.split(" ", 1)
    if key == "POST /api/v1/session":  # signing in would replace this client's own session
        async with _client(server, role) as fresh:
            return await fresh.request(method, template, json=fixture.body(key))
    return await client.request(method, fixture.path(template), json=fixture.body(key))


def _check(
    wrong: list[str], key: str, role: str, allowed: frozenset[str], response: httpx.Response
) -> None:
    refusal = SIGNED_ROUTES.get(key) or _expected_refusal(allowed, role)
    if role == ANONYMOUS and key in ANONYMOUS_REFUSALS:
        refusal = ANONYMOUS_REFUSALS[key]
    where = f"{role:>18} {key}: {response.status_code} {response.text[:120]}"
    if refusal is None:
        if response.status_code in (401, 403) or response.status_code >= 500:
            wrong.append(f"should be allowed — {where}")
        return
    json_body = response.headers.get("content-type", "").startswith("application/json")
    body = response.json() if json_body else {}
    if (
        (response.status_code, body.get("code")) != refusal
        or not isinstance(body.get("message"), str)
        or not body["message"]
    ):
        wrong.append(f"should be refused with {refusal} — {where}")


async def _feed_outcome(server: LiveServer, template: str, role: str) -> str:
    """'allowed' or 'closed <code>' for one role opening one feed, per the protocol."""
    ticket_id = _issue_tickets(server, 1)[0]
    path = template.format(branch=BRANCH, counter="c01", ticket_id=ticket_id)
    headers: dict[str, str] = {}
    token: str | None = None
    if role in ("kiosk", "display", "printer"):
        token = server.device_token(role, BRANCH)
    elif role != ANONYMOUS:
        async with _client(server, role) as client:
            headers["Cookie"] = f"rigi_session={client.cookies['rigi_session']}"
    printer_feed = template == "/ws/printers"
    hello: dict[str, Any] = {"type": "hello", "token": token}
    if printer_feed:
        hello["printers"] = [{"id": f"printer-{role}", "kiosks": ["kiosk-1"]}]
    async with asyncio.timeout(WAIT_S):
        async with connect(
            server.ws_url + path, additional_headers=headers, compression=None
        ) as websocket:
            if template != "/ws/tickets/{ticket_id}":
                await websocket.send(_json(hello))
            if printer_feed:
                return await _printer_feed_outcome(server, websocket, f"printer-{role}")
            try:
                first = await websocket.recv()
            except ConnectionClosed as closed:
                return f"closed {closed.rcvd.code if closed.rcvd else None}"
            return "allowed" if '"type"' in str(first) else f"strange first frame {first!r}"


async def _printer_feed_outcome(
    server: LiveServer, websocket: ClientConnection, printer_id: str
) -> str:
    """The printer feed sends nothing until there is a job: allowed means the printer shows up
    as connected; refused means the server closes the socket."""
    async with server.client("manager") as manager:
        while True:
            closed = asyncio.ensure_future(websocket.wait_closed())
            await asyncio.wait([closed], timeout=0.05)
            if closed.done():
                return f"closed {websocket.close_code}"
            closed.cancel()
            printers = (await manager.get(f"{B}/printers")).json()
            if any(p["id"] == printer_id and p["connected"] for p in printers):
                return "allowed"


def _json(message: dict[str, Any]) -> str:
    import json

    return json.dumps(message)


async def test_every_feed_is_opened_or_refused_by_role_as_the_matrix_says(
    sqlite_server: LiveServer,
) -> None:
    server = sqlite_server
    wrong = []
    for template, allowed in sorted(EXPECTED_FEEDS.items()):
        for role in ROLES:
            outcome = await _feed_outcome(server, template, role)
            refusal = _expected_refusal(allowed, role)
            if refusal is None:
                expected = "allowed"
            elif template == "/ws/printers":
                token_less = role == ANONYMOUS or role in SIGNED_IN
                code = PRINTER_HELLO_WITHOUT_TOKEN if token_less else PRINTER_FEED_CLOSE[refusal[0]]
                expected = f"closed {code}"
            else:
                expected = f"closed {FEED_CLOSE[refusal[0]]}"
            if outcome != expected:
                wrong.append(f"{role:>18} {template}: {outcome}, expected {expected}")
    assert not wrong, "\n".join(wrong)


# ---- CSRF, Origin, tokens in URLs --------------------------------------------------------


async def test_a_cross_site_post_with_a_valid_cookie_is_refused(live_server: LiveServer) -> None:
    async with live_server.client("manager") as manager:
        csrf = manager.headers.pop("X-CSRF-Token")
        open_c01 = f"{B}/counters/c01/open"
        attempts = {
            "no header": {},
            "wrong header": {"X-CSRF-Token": "not-the-token"},
            "foreign origin": {"X-CSRF-Token": csrf, "Origin": FOREIGN_ORIGIN},
        }
        for what, headers in attempts.items():
            refused = await manager.post(open_c01, headers=headers)
            assert (refused.status_code, refused.json()["code"]) == (403, "csrf_failed"), what
        counters = (await manager.get(f"{B}/counters")).json()
        assert next(c for c in counters if c["counter_id"] == "c01")["state"] == "closed"

        same_site = await manager.post(
            open_c01, headers={"X-CSRF-Token": csrf, "Origin": live_server.url}
        )
        assert same_site.status_code == 200, same_site.text
        assert (
            await manager.post(f"{B}/counters/c02/open", headers={"X-CSRF-Token": csrf})
        ).status_code == 200


async def test_a_websocket_from_a_foreign_origin_is_refused(live_server: LiveServer) -> None:
    token = live_server.device_token("display")
    board = f"{live_server.ws_url}/ws/branches/{BRANCH}/board"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(board, origin=FOREIGN_ORIGIN):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403
    async with asyncio.timeout(WAIT_S), connect(board, origin=live_server.url) as websocket:  # type: ignore[arg-type]
        await websocket.send(_json({"type": "hello", "token": token}))
        assert '"snapshot"' in str(await websocket.recv())


async def test_a_token_in_the_url_is_refused(live_server: LiveServer) -> None:
    token = live_server.device_token("display")
    async with live_server.client(None) as anonymous:
        for name in ("token", "access_token"):
            refused = await anonymous.get(f"{B}/snapshot?{name}={token}")
            assert (refused.status_code, refused.json()["code"]) == (400, "token_in_url")
        # the same token in the header is fine: only the URL is wrong
        allowed = await anonymous.get(f"{B}/snapshot", headers={"Authorization": f"Bearer {token}"})
        assert allowed.status_code == 200
    with pytest.raises(InvalidStatus) as refused_ws:
        async with connect(f"{live_server.ws_url}/ws/branches/{BRANCH}/board?token={token}"):
            pass
    assert refused_ws.value.response.status_code == 403


# ---- revoking a device -------------------------------------------------------------------


async def test_a_revoked_display_is_disconnected_and_cannot_come_back(
    live_server: LiveServer,
) -> None:
    board = f"{live_server.ws_url}/ws/branches/{BRANCH}/board"
    async with live_server.client("manager") as manager:
        made = await manager.post(f"{B}/devices", json={"role": "display", "name": "Lobby TV 1"})
        assert made.status_code == 201, made.text
        device, token = made.json()["device"], made.json()["token"]
        assert token not in str(await manager.get(f"{B}/devices"))  # shown once, never listed

        async with asyncio.timeout(WAIT_S), connect(board, compression=None) as websocket:
            await websocket.send(_json({"type": "hello", "token": token}))
            assert '"snapshot"' in str(await websocket.recv())
            revoked = await manager.post(f"/api/v1/devices/{device['id']}/revoke")
            assert revoked.status_code == 200 and revoked.json()["revoked_at"]
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await websocket.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403

        async with asyncio.timeout(WAIT_S), connect(board, compression=None) as websocket:
            await websocket.send(_json({"type": "hello", "token": token}))
            with pytest.raises(ConnectionClosed) as again:
                await websocket.recv()
            assert again.value.rcvd is not None and again.value.rcvd.code == 4401

        async with live_server.client(None) as device_client:
            snapshot = await device_client.get(
                f"{B}/snapshot", headers={"Authorization": f"Bearer {token}"}
            )
            assert (snapshot.status_code, snapshot.json()["code"]) == (401, "unauthorized")
        twice = await manager.post(f"/api/v1/devices/{device['id']}/revoke")
        assert (twice.status_code, twice.json()["code"]) == (409, "already_revoked")


# ---- rate limits -------------------------------------------------------------------------

DEVICE_LIMIT = 50  # per hour: a burst never straddles two windows in practice
# Four times the limit, 20 at once: enough that a limiter that let a race through, counted late
# or not at all would pass more than its 50 (it was 1,000: ~45 s a database, the same proof).
BURST = 4 * DEVICE_LIMIT


@pytest.fixture
def limited_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    settings = settings_for(database_url, tmp_path, issue_rate_device=f"{DEVICE_LIMIT}/hour")
    server = LiveServer(settings).start()
    yield server
    server.stop()


async def _burst(client: httpx.AsyncClient, count: int, parallel: int = 20) -> list[httpx.Response]:
    gate = asyncio.Semaphore(parallel)

    async def one() -> httpx.Response:
        async with gate:
            return await client.post(f"{B}/tickets", json={"service_id": "stamp"})

    return await asyncio.gather(*(one() for _ in range(count)))


@pytest.mark.slow
async def test_a_kiosk_bursting_four_times_its_limit_is_cut_at_its_limit(
    limited_server: LiveServer,
) -> None:
    server = limited_server
    async with server.client("kiosk") as kiosk:
        responses = await _burst(kiosk, BURST)
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == DEVICE_LIMIT
    assert statuses.count(429) == BURST - DEVICE_LIMIT
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.json()["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1

    other_token = server.device_token("kiosk", name="kiosk-2")
    async with server.client(None, headers={"Authorization": f"Bearer {other_token}"}) as other:
        assert (await other.post(f"{B}/tickets", json={"service_id": "stamp"})).status_code == 201
    async with server.client("operator") as operator:
        assert (
            await operator.post(f"{B}/tickets", json={"service_id": "stamp"})
        ).status_code == 201


@pytest.mark.redis
async def test_two_servers_sharing_redis_see_one_limit(tmp_path: Path) -> None:
    redis_url = need_service(REDIS_ENV, "Redis")
    settings = settings_for(
        f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}",
        tmp_path,
        bus_url=redis_url,
        issue_rate_device="30/hour",
    )
    first = LiveServer(settings).start()
    try:
        token = first.device_token("kiosk")
        second = LiveServer(settings).start()
        try:
            statuses = []
            headers = {"Authorization": f"Bearer {token}"}
            async with (
                first.client(None, headers=headers) as via_first,
                second.client(None, headers=headers) as via_second,
            ):
                for client in itertools.islice(itertools.cycle((via_first, via_second)), 40):
                    response = await client.post(f"{B}/tickets", json={"service_id": "stamp"})
                    statuses.append(response.status_code)
            assert statuses.count(201) == 30 and statuses.count(429) == 10
            assert statuses[:30] == [201] * 30
        finally:
            second.stop()
    finally:
        first.stop()


# ---- signing in --------------------------------------------------------------------------


@pytest.fixture
def login_server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = settings_for(
        f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}", tmp_path, login_rate="4/hour"
    )
    server = LiveServer(settings).start()
    yield server
    server.stop()


async def test_a_wrong_password_is_refused_without_logging_it(
    login_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    username = login_server.user("operator")
    wrong_password = "hunter2-is-not-it"
    caplog.set_level(logging.INFO)
    async with login_server.client(None) as browser:
        refused = await browser.post(
            "/api/v1/session", json={"username": username, "password": wrong_password}
        )
        assert (refused.status_code, refused.json()["code"]) == (401, "bad_credentials")
        assert "rigi_session" not in refused.cookies
        assert "failed sign-in" in caplog.text and username in caplog.text
        assert wrong_password not in caplog.text

        for _ in range(3):
            await browser.post("/api/v1/session", json={"username": username, "password": "x"})
        blocked = await browser.post(
            "/api/v1/session", json={"username": username, "password": PASSWORD}
        )
        assert (blocked.status_code, blocked.json()["code"]) == (429, "rate_limited")
        assert int(blocked.headers["Retry-After"]) >= 1
    assert PASSWORD not in caplog.text


async def test_a_session_is_an_httponly_lax_cookie_that_logout_ends(
    live_server: LiveServer,
) -> None:
    username = live_server.user("operator")
    async with live_server.client(None) as browser:
        signed_in = await browser.post(
            "/api/v1/session", json={"username": username, "password": PASSWORD}
        )
        assert signed_in.status_code == 200
        cookie = signed_in.headers["set-cookie"]
        assert cookie.startswith("rigi_session=")
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert "httponly" in flags and "samesite=lax" in flags
        csrf = signed_in.json()["csrf_token"]
        old_cookie = browser.cookies["rigi_session"]

        me = await browser.get("/api/v1/session")
        assert me.json()["user"]["username"] == username and me.json()["csrf_token"] == csrf

        logout = await browser.post("/api/v1/session/logout", headers={"X-CSRF-Token": csrf})
        assert logout.status_code == 200

    async with live_server.client(None, cookies={"rigi_session": old_cookie}) as replay:
        after = await replay.get("/api/v1/session")
        assert (after.status_code, after.json()["code"]) == (401, "unauthorized")
        acting = await replay.post(f"{B}/counters/c01/open", headers={"X-CSRF-Token": csrf})
        assert acting.status_code == 401


# ---- start-up and the first admin --------------------------------------------------------


def test_production_refuses_to_start_without_a_secret_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RIGI_SECRET_KEY", raising=False)
    with pytest.raises(SystemExit) as stopped:
        load_settings(env="production", data_dir=tmp_path)
    assert "RIGI_SECRET_KEY" in str(stopped.value)
    assert (
        load_settings(
            env="production", secret_key="kX3v-9qLm_2Rz7Tw8YpNa4Hc6Jd1Ue5F", data_dir=tmp_path
        ).env
        == "production"
    )

    env = _cli_env(tmp_path) | {"RIGI_ENV": "production"}
    env.pop("RIGI_SECRET_KEY", None)
    serve = subprocess.run(
        [sys.executable, "-m", "queue_server", "serve", "--port", "1"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert serve.returncode != 0
    assert "RIGI_SECRET_KEY" in serve.stderr


def _cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIGI_")}
    return env | {
        "RIGI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}",
        "RIGI_DATA_DIR": str(tmp_path),
        "RIGI_CONFIG": str(Path(__file__).parent / "fixtures" / "catalog"),
    }


def _create_admin(tmp_path: Path, name: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "queue_server", "create-admin", name, "--password-stdin"],
        input=password + "\n", env=_cli_env(tmp_path), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


async def test_create_admin_makes_an_admin_who_can_sign_in(tmp_path: Path) -> None:
    short = _create_admin(tmp_path, "tamar", "short")
    assert short.returncode != 0
    assert "at least 10 characters" in short.stderr
    made = _create_admin(tmp_path, "tamar", PASSWORD)
    assert made.returncode == 0, made.stderr
    again = _create_admin(tmp_path, "tamar", PASSWORD)
    assert again.returncode != 0 and "taken" in again.stderr

    settings = Settings(**_cli_settings(tmp_path))
    server = LiveServer(settings).start()
    try:
        async with server.client(None) as browser:
            signed_in = await browser.post(
                "/api/v1/session", json={"username": "tamar", "password": PASSWORD}
            )
            assert signed_in.status_code == 200, signed_in.text
            assert signed_in.json()["user"]["role"] == "admin"
    finally:
        server.stop()


def _cli_settings(tmp_path: Path) -> dict[str, Any]:
    return {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}",
        "data_dir": tmp_path,
        "config": Path(__file__).parent / "fixtures" / "catalog",
    }


# ---- the audit log -----------------------------------------------------------------------


async def test_operator_actions_appear_in_the_managers_audit_log(live_server: LiveServer) -> None:
    counter = f"{B}/counters/c01"
    async with live_server.client("kiosk") as kiosk:
        ticket = (await kiosk.post(f"{B}/tickets", json={"service_id": "id_card"})).json()
    async with live_server.client("operator") as operator:
        for step, body in (("open", None), ("call-next", None), ("start", None),
                           ("finish", {"outcome": "served"})):  # fmt: skip
            response = await operator.post(f"{counter}/{step}", json=body)
            assert response.status_code == 200, response.text
        assert (await operator.get(f"{B}/audit")).status_code == 403
    async with live_server.client("manager") as manager:
        audit = await manager.get(f"{B}/audit")
    assert audit.status_code == 200
    entries = audit.json()
    mine = [
        (e["actor"], e["kind"], e["counter_id"], e["ticket"])
        for e in reversed(entries)
        if e["actor"] == "operator:operator-testhall"
    ]
    assert mine == [
        ("operator:operator-testhall", "counter.opened", "c01", None),
        ("operator:operator-testhall", "ticket.called", "c01", ticket["label"]),
        ("operator:operator-testhall", "ticket.started", "c01", ticket["label"]),
        ("operator:operator-testhall", "ticket.finished", "c01", ticket["label"]),
    ]
    assert all(not e["actor"].startswith(("kiosk:", "anonymous")) for e in entries)
    assert [e["seq"] for e in entries] == sorted((e["seq"] for e in entries), reverse=True)
