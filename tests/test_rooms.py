"""Conference rooms of the Community Centres, against a real server on SQLite and PostgreSQL
with the shipped organisation: the public calendar shows free and held times but never who
asked; a request needs the declaration, a sensible time and a free room, and is answered by
e-mail; the centre's manager approves or declines it once; a hall lends no room."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from queue_server.settings import SHIPPED_CONFIG
from tests.support import LiveServer
from tests.test_bookings import Clock, booking_server

CENTRE = "cc01-shashiani"
R = f"/api/v1/branches/{CENTRE}/room"
MAIL = "school.director@example.ge"
INSTITUTION = "Shashiani public school"


@pytest.fixture
def centre(database_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, Clock]]:
    server, clock = booking_server(database_url, tmp_path, config=SHIPPED_CONFIG)
    yield server, clock
    server.stop()


def ask(starts: str, ends: str, **changes: Any) -> dict[str, Any]:
    body = {
        "institution": INSTITUTION,
        "purpose": "Parents' meeting about the new school year",
        "starts_at": f"2025-06-02T{starts}:00+04:00",
        "ends_at": f"2025-06-02T{ends}:00+04:00",
        "contact": MAIL,
        "declaration": True,
        "language": "ka",
    }
    return body | changes


def mails(server: LiveServer) -> list[str]:
    return [m.text for m in server.rigi.notify.channels["email"].sent]


async def test_an_institution_asks_for_the_room_and_the_manager_approves_it(
    centre: tuple[LiveServer, Clock],
) -> None:
    server, _ = centre
    async with server.client() as public, server.client("manager", CENTRE) as manager:
        day = await public.get(R, params={"date": "2025-06-02"})
        assert day.status_code == 200, day.text
        assert day.json()["free"] == [
            {"starts_at": "2025-06-02T05:00:00+00:00", "ends_at": "2025-06-02T14:00:00+00:00"}
        ]
        asked = await public.post(R + "/requests", json=ask("10:00", "12:00"))
        assert asked.status_code == 201, asked.text
        assert "მიღებულია" in mails(server)[-1]  # "received", in the requester's Georgian

        day = (await public.get(R, params={"date": "2025-06-02"})).json()
        held = {"starts_at": "2025-06-02T06:00:00+00:00", "ends_at": "2025-06-02T08:00:00+00:00"}
        assert day["held"] == [held | {"status": "pending"}]
        assert INSTITUTION not in str(day) and MAIL not in str(day)
        assert [f["ends_at"][11:16] for f in day["free"]] == ["06:00", "14:00"]

        overlapping = await public.post(R + "/requests", json=ask("11:30", "13:00"))
        assert (overlapping.status_code, overlapping.json()["code"]) == (409, "room_taken")
        other = await public.post(
            R + "/requests", json=ask("14:00", "15:00", institution="Village council")
        )
        assert other.status_code == 201, other.text

        listed = (await manager.get(R + "/requests")).json()
        assert [r["institution"] for r in listed] == [INSTITUTION, "Village council"]
        assert all("contact_secret" not in r and "contact_hash" not in r for r in listed)
        first, second = (r["id"] for r in listed)
        approved = await manager.post(f"{R}/requests/{first}/approve")
        assert approved.status_code == 200, approved.text
        assert approved.json() == approved.json() | {"status": "approved", "notified": True}
        assert "2025-06-02 10:00–12:00" in mails(server)[-1]
        declined = await manager.post(
            f"{R}/requests/{second}/decline", json={"reason": "The hall is being painted."}
        )
        assert declined.json()["status"] == "declined"
        assert "The hall is being painted." in mails(server)[-1]
        again = await manager.post(f"{R}/requests/{second}/approve")
        assert (again.status_code, again.json()["code"]) == (409, "room_decided")
        free = (await public.get(R, params={"date": "2025-06-02"})).json()["free"]
        assert [f["starts_at"][11:16] for f in free] == ["05:00", "08:00"]  # 14:00 is free again
        trail = (await manager.get("/api/v1/audit", params={"kind": "room"})).json()["entries"]
    assert [(e["kind"], e["target"], e["detail"]["reason"]) for e in trail] == [
        ("room.declined", "Village council", "The hall is being painted."),
        ("room.approved", INSTITUTION, None),
    ]  # newest first; the refused second approval left no row
    assert all(e["actor"] == f"manager:manager-{CENTRE}" for e in trail)
    assert MAIL not in str(trail)


BAD_REQUESTS: list[tuple[dict[str, Any], int, str]] = [
    ({"declaration": False}, 422, "declaration_required"),
    ({"starts_at": "2025-06-02T10:15:00+04:00"}, 422, "bad_room_time"),
    ({"ends_at": "2025-06-02T19:00:00+04:00"}, 422, "bad_room_time"),  # after closing
    ({"starts_at": "2025-06-07T10:00:00+04:00",
      "ends_at": "2025-06-07T11:00:00+04:00"}, 422, "bad_room_time"),  # a Saturday
    ({"starts_at": "2025-06-01T10:00:00+04:00",
      "ends_at": "2025-06-01T11:00:00+04:00"}, 422, "bad_room_time"),  # the past
    ({"ends_at": "2025-06-02T18:00:00+04:00",
      "starts_at": "2025-06-02T09:30:00+04:00"}, 422, "bad_room_time"),  # over 8 hours
    ({"contact": "not an address"}, 422, "bad_email"),
    ({"institution": ""}, 422, "validation_failed"),
]  # fmt: skip


async def test_a_bad_request_is_refused_with_a_stable_code_and_nothing_is_held(
    centre: tuple[LiveServer, Clock],
) -> None:
    server, _ = centre
    async with server.client() as public:
        for changes, status, code in BAD_REQUESTS:
            refused = await public.post(R + "/requests", json=ask("10:00", "11:00", **changes))
            assert (refused.status_code, refused.json()["code"]) == (status, code), changes
        day = (await public.get(R, params={"date": "2025-06-02"})).json()
        assert day["held"] == [] and mails(server) == []


async def test_a_hall_lends_no_room_and_only_the_centres_manager_decides(
    centre: tuple[LiveServer, Clock],
) -> None:
    server, _ = centre
    async with server.client() as public:
        hall = await public.get("/api/v1/branches/tbilisi/room", params={"date": "2025-06-02"})
        assert (hall.status_code, hall.json()["code"]) == (404, "no_room")
        asked = await public.post(R + "/requests", json=ask("10:00", "11:00"))
        request_id = asked.json()["id"]
        anonymous = await public.post(f"{R}/requests/{request_id}/approve")
        assert anonymous.status_code == 401
    for role, branch in (("operator", CENTRE), ("manager", "tbilisi")):
        async with server.client(role, branch) as other:
            refused = await other.post(f"{R}/requests/{request_id}/approve")
            assert refused.status_code == 403, (role, branch)
    async with httpx.AsyncClient(base_url=server.url) as public:
        day = (await public.get(R, params={"date": "2025-06-02"})).json()
        assert day["held"][0]["status"] == "pending"
