"""Malformed and hostile requests: each gets its stable error code, and nothing changes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.databases import DATABASES, database_for
from tests.support import LiveServer, test_settings

B = "/api/v1/branches/testhall"
C = f"{B}/counters/c01"
JSON = {"Content-Type": "application/json"}
UNKNOWN_TICKET = "0" * 32

# (what, method, path, body: dict → JSON, str/bytes → raw, headers, status, code)
CASES: list[tuple[str, str, str, Any, dict[str, str], int, str]] = [
    ("unknown branch", "POST", "/api/v1/branches/nowhere/tickets", {"service_id": "id_card"},
     {}, 404, "unknown_branch"),
    ("unknown service", "POST", f"{B}/tickets", {"service_id": "visa"}, {}, 404,
     "unknown_service"),
    ("broken JSON", "POST", f"{B}/tickets", '{"service_id": ', JSON, 400, "malformed_json"),
    ("JSON that is not an object", "POST", f"{B}/tickets", '["id_card"]', JSON, 400,
     "malformed_json"),
    ("bytes that are not UTF-8", "POST", f"{B}/tickets", b"\xff\xfe\x00{", JSON, 400,
     "malformed_json"),
    ("JSON nested past any sense", "POST", f"{B}/tickets", "[" * 50_000, JSON, 400,
     "malformed_json"),
    ("missing service", "POST", f"{B}/tickets", {}, {}, 422, "validation_failed"),
    ("unknown field", "POST", f"{B}/tickets", {"service_id": "id_card", "name": "Nino"}, {},
     422, "validation_failed"),
    ("unknown priority", "POST", f"{B}/tickets", {"service_id": "id_card", "priority": "vip"},
     {}, 422, "validation_failed"),
    ("unknown language", "POST", f"{B}/tickets", {"service_id": "id_card", "language": "fr"},
     {}, 422, "validation_failed"),
    ("appointment without a time zone", "POST", f"{B}/tickets",
     {"service_id": "id_card", "priority": "appointment",
      "appointment_at": "2026-11-24T10:00:00"}, {}, 422, "validation_failed"),
    ("SQL in a service id", "POST", f"{B}/tickets", {"service_id": "x' OR '1'='1"}, {}, 422,
     "validation_failed"),
    ("script in a service id", "POST", f"{B}/tickets",
     {"service_id": "<script>alert(1)</script>"}, {}, 422, "validation_failed"),
    ("a body too large", "POST", f"{B}/tickets",
     '{"service_id": "id_card", "x": "' + "a" * 70_000 + '"}', JSON, 413, "payload_too_large"),
    ("an idempotency key too long", "POST", f"{B}/tickets", {"service_id": "id_card"},
     {"Idempotency-Key": "k" * 200}, 400, "bad_idempotency_key"),
    ("unknown ticket", "GET", f"/api/v1/tickets/{UNKNOWN_TICKET}", None, {}, 404,
     "unknown_ticket"),
    ("cancel an unknown ticket", "POST", f"/api/v1/tickets/{UNKNOWN_TICKET}/cancel", None, {},
     404, "unknown_ticket"),
    ("unknown counter", "POST", f"{B}/counters/c99/call-next", None, {}, 404,
     "unknown_counter"),
    ("finish as cancelled", "POST", f"{C}/finish", {"outcome": "cancelled"}, {}, 422,
     "validation_failed"),
    ("pause without a reason", "POST", f"{C}/pause", {"reason": ""}, {}, 422,
     "validation_failed"),
    ("transfer to nowhere", "POST", f"{C}/transfer", {}, {}, 400, "transfer_target"),
    ("call a malformed ticket id", "POST", f"{C}/call", {"ticket_id": "../../etc/passwd"}, {},
     422, "validation_failed"),
    ("call next at a closed counter", "POST", f"{B}/counters/c02/call-next", None, {}, 409,
     "counter_not_open"),
    ("start with nobody called", "POST", f"{C}/start", None, {}, 409, "no_current_ticket"),
    ("a state change by GET", "GET", f"{C}/call-next", None, {}, 405, "method_not_allowed"),
    ("no such path", "GET", "/api/v1/nothing-here", None, {}, 404, "not_found"),
]  # fmt: skip


@pytest.fixture(scope="module", params=DATABASES)
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One server per database for the whole module, not one per case: each case compares the
    state just before and just after its own request, which needs no fresh server. Its clock
    stands still: the state compared holds time-derived figures (a queue's `longest_wait_s`),
    which would tick over between the two reads of a slow run and fail the test for a change no
    request made. Every case signs in, so sign-ins are not limited here."""
    folder = tmp_path_factory.mktemp("bad_input")
    settings = test_settings(
        database_for(request.param, folder), folder, login_rate="100000/minute"
    )
    frozen = datetime.now(UTC)
    server = LiveServer(settings, clock=lambda: frozen).start()
    yield server
    server.stop()


async def state(client: httpx.AsyncClient) -> list[Any]:
    """Everything a bad request could have changed: the event sequence, board, queues,
    counters."""
    snapshot = (await client.get(f"{B}/snapshot")).json()
    queues = (await client.get(f"{B}/queues")).json()
    counters = (await client.get(f"{B}/counters")).json()
    return [snapshot, queues, counters]


async def send(client: httpx.AsyncClient, method: str, path: str, body: Any, headers: dict):
    if isinstance(body, dict):
        return await client.request(method, path, json=body, headers=headers)
    return await client.request(method, path, content=body, headers=headers)


@pytest.mark.parametrize(
    ("what", "method", "path", "body", "headers", "status", "code"),
    CASES,
    ids=[case[0] for case in CASES],
)
async def test_bad_request_gets_its_code_and_changes_nothing(
    live_server: LiveServer, what, method, path, body, headers, status, code
) -> None:
    # As an admin, whom no permission stops: what is refused here is the input itself.
    async with live_server.client("admin") as client:
        await client.post(f"{C}/open")
        await client.post(f"{B}/tickets", json={"service_id": "id_card"})
        before = await state(client)
        response = await send(client, method, path, body, headers)
        assert response.status_code == status, response.text
        error = response.json()
        assert error["code"] == code
        assert error["message"] and "Traceback" not in response.text
        assert await state(client) == before
