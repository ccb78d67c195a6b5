"""Remote tickets ("join the queue now") against a real server on SQLite and PostgreSQL: a
citizen joins today's queue from home with a one-time code, holds nobody back until activated at
the kiosk, and then waits from when they joined, with no priority; a place is kept only for the
branch's remote window, after which it is a no-show that counts towards the booking block; one
active place per person and service; nothing can be moved; a closed branch takes no one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import LiveServer
from tests.test_bookings import PHONE, START, B, Clock, booking_server, sent_code

OPEN = START + timedelta(hours=2)  # 10:00 in Tbilisi, a Monday


@pytest.fixture
def remote(database_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, Clock]]:
    server, clock = booking_server(database_url, tmp_path)
    clock.now = OPEN
    yield server, clock
    server.stop()


async def join(
    server: LiveServer, client: httpx.AsyncClient, contact: str = PHONE, service: str = "id_card"
) -> dict[str, Any]:
    pending = await client.post(
        f"{B}/remote", json={"service": service, "contact": contact, "language": "ka"}
    )
    assert pending.status_code == 201, pending.text
    assert pending.json()["kind"] == "remote"
    channel = "email" if "@" in contact else "sms"
    confirmed = await client.post(
        f"/api/v1/bookings/{pending.json()['id']}/confirm",
        json={"code": sent_code(server, channel)},
    )
    assert confirmed.status_code == 200, confirmed.text
    return confirmed.json()  # type: ignore[no-any-return]


async def test_a_remote_ticket_holds_nobody_back_and_on_arrival_waits_from_when_it_joined(
    remote: tuple[LiveServer, Clock],
) -> None:
    server, clock = remote
    async with (
        server.client() as phone,
        server.client("kiosk") as kiosk,
        server.client("operator") as operator,
    ):
        place = await join(server, phone)
        assert place["kind"] == "remote" and place["status"] == "confirmed"
        assert datetime.fromisoformat(place["activate_by"]) == OPEN + timedelta(minutes=60)

        # Walk-ins come while the remote citizen travels; their wait ignores the remote place.
        walk_ins = []
        for minutes in (10, 20, 30):
            clock.now = OPEN + timedelta(minutes=minutes)
            ticket = (await kiosk.post(f"{B}/tickets", json={"service_id": "id_card"})).json()
            walk_ins.append(ticket)
        assert [t["people_ahead"] for t in walk_ins] == [0, 1, 2]

        # Not yet activated: the counter calls the walk-in who came first.
        assert (await operator.post(f"{B}/counters/c01/open")).status_code == 200
        first = await operator.post(f"{B}/counters/c01/call-next")
        assert first.json()["id"] == walk_ins[0]["id"]

        # Activated 40 minutes after joining: a normal ticket that has waited since 10:00.
        clock.now = OPEN + timedelta(minutes=40)
        arrived = await kiosk.post(f"{B}/check-in", json={"code": place["short_code"]})
        assert arrived.status_code == 201, arrived.text
        ticket = arrived.json()["ticket"]
        assert arrived.json()["kind"] == "remote" and ticket["priority"] == "normal"
        again = await kiosk.post(f"{B}/check-in", json={"code": place["token"]})
        assert (again.status_code, again.json()["code"]) == (409, "booking_used")

        await operator.post(f"{B}/counters/c01/no-show")
        called = await operator.post(f"{B}/counters/c01/call-next")
        assert called.json()["id"] == ticket["id"]  # ahead of the walk-ins of 10:20 and 10:30

    # The manager's fairness ledger says so: one remote ticket called ahead of walk-ins in the
    # 10 o'clock hour, the walk-in of 10:10 called after 20 minutes against its target.
    async with server.client("manager") as manager:
        hour = await ledger_hour(manager, called=2)
    assert hour["ahead_of_walk_ins"] == {"appointment": 0, "remote": 1, "priority": 0}
    assert hour["called"]["walk_in"] == 1 and hour["longest_walk_in_wait_s"] == 20 * 60


async def ledger_hour(manager: httpx.AsyncClient, called: int) -> dict[str, Any]:
    """The ledger's first hour once the report facts hold `called` calls (they follow events)."""
    for _ in range(100):
        answer = await manager.get(f"{B}/fairness", params={"date": "2025-06-02"})
        assert answer.status_code == 200, answer.text
        hours = answer.json()["hours"]
        if hours and sum(hours[0]["called"].values()) >= called:
            return hours[0]  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(answer.text)


async def test_a_place_is_kept_only_for_the_window_then_counts_as_a_no_show(
    remote: tuple[LiveServer, Clock],
) -> None:
    server, clock = remote
    async with server.client() as phone, server.client("kiosk") as kiosk:
        place = await join(server, phone)
        twice = await phone.post(
            f"{B}/remote", json={"service": "id_card", "contact": PHONE, "language": "ka"}
        )
        assert (twice.status_code, twice.json()["code"]) == (409, "booking_exists")
        moved = await phone.post(
            f"/api/v1/bookings/{place['id']}/reschedule",
            json={"token": place["token"], "slot": (OPEN + timedelta(hours=1)).isoformat()},
        )
        assert (moved.status_code, moved.json()["code"]) == (409, "not_movable")
        asks = {"service": "passport", "contact": PHONE, "language": "ka", "priority": "priority"}
        claimed = await phone.post(f"{B}/remote", json=asks)
        assert claimed.status_code == 422  # no priority can be asked for

        clock.now = OPEN + timedelta(minutes=61)
        late = await kiosk.post(f"{B}/check-in", json={"code": place["short_code"]})
        assert (late.status_code, late.json()["code"]) == (409, "remote_expired")

        # A second place not taken up either: two no-shows block the person for a while.
        second = await join(server, phone, service="passport")
        clock.now += timedelta(minutes=61)
        blocked = await phone.post(
            f"{B}/remote", json={"service": "id_card", "contact": PHONE, "language": "ka"}
        )
        assert (blocked.status_code, blocked.json()["code"]) == (403, "booking_blocked")
        assert second["status"] == "confirmed"


async def test_a_closed_branch_takes_no_remote_ticket(remote: tuple[LiveServer, Clock]) -> None:
    server, clock = remote
    async with server.client() as phone:
        for closed in (START, START + timedelta(days=5, hours=2)):  # 08:00; Saturday 10:00
            clock.now = closed
            refused = await phone.post(
                f"{B}/remote", json={"service": "id_card", "contact": PHONE, "language": "ka"}
            )
            assert (refused.status_code, refused.json()["code"]) == (409, "branch_closed")
        assert server.rigi.notify.channels["sms"].sent == []


async def test_places_hoarded_over_many_numbers_from_one_address_are_refused(
    database_url: str, tmp_path: Path
) -> None:
    server, clock = booking_server(database_url, tmp_path, booking_rate_address="3/hour")
    clock.now = OPEN
    try:
        async with server.client() as phone:
            answers = [
                await phone.post(
                    f"{B}/remote",
                    json={"service": "id_card", "contact": f"+995 555 00-00-{n:02d}"},
                )
                for n in range(5)
            ]
        assert [a.status_code for a in answers] == [201, 201, 201, 429, 429]
        assert answers[-1].json()["code"] == "booking_rate_limited"
        assert len(server.rigi.notify.channels["sms"].sent) == 3  # nothing sent when refused
    finally:
        server.stop()
