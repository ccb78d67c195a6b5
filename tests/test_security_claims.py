"""Who may claim what (issue 19): precedence is granted by a kiosk or staff, never by a phone,
and an Idempotency-Key belongs to the caller who sent it."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.support import LiveServer

B = "/api/v1/branches/testhall"
APPOINTMENT_AT = "2026-11-24T10:00:00+04:00"


async def _floor(server: LiveServer) -> list[Any]:
    """Everything an issued ticket changes: the event sequence and every queue's length."""
    async with server.client("manager") as manager:
        snapshot = (await manager.get(f"{B}/snapshot")).json()
        queues = (await manager.get(f"{B}/queues")).json()
    return [snapshot["seq"], {queue["service_id"]: queue["waiting"] for queue in queues}]


@pytest.mark.parametrize(
    ("claim", "code"),
    [
        ({"priority": "priority"}, "priority_not_allowed"),
        (
            {"priority": "appointment", "appointment_at": APPOINTMENT_AT},
            "appointment_needs_booking",
        ),
        ({"priority": "appointment"}, "appointment_needs_booking"),
        ({"appointment_at": APPOINTMENT_AT}, "appointment_needs_booking"),
    ],
    ids=["priority", "appointment with a time", "appointment", "a time alone"],
)
async def test_a_phone_cannot_jump_the_queue_by_claiming_precedence(
    live_server: LiveServer, claim: dict[str, str], code: str
) -> None:
    async with live_server.client(None) as phone:
        await phone.post(f"{B}/tickets", json={"service_id": "id_card"})  # one waits already
        before = await _floor(live_server)
        refused = await phone.post(f"{B}/tickets", json={"service_id": "id_card"} | claim)
        assert (refused.status_code, refused.json()["code"]) == (403, code), refused.text
        assert refused.json()["message"]
    assert await _floor(live_server) == before


async def test_a_kiosk_grants_priority_and_only_staff_issue_an_appointment(
    live_server: LiveServer,
) -> None:
    appointment = {"service_id": "id_card", "priority": "appointment"}
    async with live_server.client("kiosk") as kiosk:
        granted = await kiosk.post(
            f"{B}/tickets", json={"service_id": "id_card", "priority": "priority"}
        )
        assert (granted.status_code, granted.json()["priority"]) == (201, "priority")
        refused = await kiosk.post(f"{B}/tickets", json=appointment)
        assert (refused.status_code, refused.json()["code"]) == (403, "appointment_needs_booking")
    async with live_server.client("operator") as operator:
        booked = await operator.post(
            f"{B}/tickets", json=appointment | {"appointment_at": APPOINTMENT_AT}
        )
        assert (booked.status_code, booked.json()["priority"]) == (201, "appointment")


async def test_a_guessed_idempotency_key_never_returns_someone_elses_ticket(
    live_server: LiveServer,
) -> None:
    body = {"service_id": "id_card"}
    key = {"Idempotency-Key": "phone-0001"}  # the README's example: easy to guess
    victim_id = {"X-Rigi-Client": secrets.token_urlsafe(16)}  # as the phone page keeps it
    async with live_server.client(None, headers=victim_id) as victim:
        mine = await victim.post(f"{B}/tickets", json=body, headers=key)
        assert mine.status_code == 201
        retried = await victim.post(f"{B}/tickets", json=body, headers=key)
        assert (retried.status_code, retried.json()["id"]) == (200, mine.json()["id"])

    # Strangers replaying the key: one without a client id (from the same address, here), one
    # with a client id of its own, a kiosk and a person. Each gets a fresh ticket of its own,
    # and its own retries still get that one.
    async with (
        live_server.client(None) as stranger,
        live_server.client(None, headers={"X-Rigi-Client": secrets.token_urlsafe(16)}) as other,
        live_server.client("kiosk") as kiosk,
        live_server.client("operator") as operator,
    ):
        for client in (stranger, other, kiosk, operator):
            theirs = await client.post(f"{B}/tickets", json=body, headers=key)
            assert theirs.status_code == 201, theirs.text
            assert theirs.json()["id"] != mine.json()["id"]
            again = await client.post(f"{B}/tickets", json=body, headers=key)
            assert (again.status_code, again.json()["id"]) == (200, theirs.json()["id"])
    # A different request under the victim's key is no conflict for a stranger either: nothing
    # tells them that the key was ever used.
    async with live_server.client(None, headers={"X-Rigi-Client": secrets.token_urlsafe(16)}) as c:
        passport = await c.post(f"{B}/tickets", json={"service_id": "passport"}, headers=key)
        assert passport.status_code == 201, passport.text
