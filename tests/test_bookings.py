"""Appointments that cannot be gamed, against a real server on SQLite and PostgreSQL: a citizen
books a slot, confirms with the code sent by SMS, checks in at the kiosk inside the arrival
window and is called before the walk-ins; too early is told when to come back, too late gets a
walk-in ticket; a booking checks in once. The calendar keeps half the counters for walk-ins."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from queue_server.domain.calendar import OpeningHours, day_slots
from tests.support import LiveServer, test_settings

BRANCH = "testhall"
B = f"/api/v1/branches/{BRANCH}"
PHONE = "+995 555 00-11-22"
MONDAY = date(2025, 6, 2)
# 08:00 in Tbilisi (UTC+4), an hour before the branch opens
START = datetime(2025, 6, 2, 4, 0, tzinfo=UTC)


class Clock:
    """The server's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def booking_server(database_url: str, tmp_path: Path, **overrides: Any) -> tuple[LiveServer, Clock]:
    clock = Clock(START)
    values: dict[str, Any] = {
        "notify_sms_url": "memory://",
        "notify_email_url": "memory://",
        "booking_rate_address": "1000/hour",
        "booking_rate_contact": "1000/hour",
    }
    settings = test_settings(database_url, tmp_path, **(values | overrides))
    return LiveServer(settings, clock=clock).start(), clock


@pytest.fixture
def booked(database_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, Clock]]:
    server, clock = booking_server(database_url, tmp_path)
    yield server, clock
    server.stop()


def sent_code(server: LiveServer, channel: str = "sms") -> str:
    message = server.rigi.notify.channels[channel].sent[-1]
    found = re.search(r"\b(\d{6})\b", message.text)
    assert found, message.text
    return found.group(1)


async def free_slots(client: httpx.AsyncClient, service: str = "id_card") -> list[dict[str, Any]]:
    response = await client.get(f"{B}/services/{service}/slots", params={"date": str(MONDAY)})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def book(
    client: httpx.AsyncClient, slot: str, contact: str = PHONE, service: str = "id_card"
) -> httpx.Response:
    return await client.post(
        f"{B}/bookings",
        json={"service": service, "slot": slot, "contact": contact, "language": "en"},
    )


async def book_and_confirm(
    server: LiveServer, client: httpx.AsyncClient, slot: str, contact: str = PHONE
) -> dict[str, Any]:
    pending = await book(client, slot, contact)
    assert pending.status_code == 201, pending.text
    channel = "email" if "@" in contact else "sms"
    confirmed = await client.post(
        f"/api/v1/bookings/{pending.json()['id']}/confirm",
        json={"code": sent_code(server, channel)},
    )
    assert confirmed.status_code == 200, confirmed.text
    return confirmed.json()  # type: ignore[no-any-return]


def test_the_calendar_keeps_half_of_the_counters_time_for_walk_ins() -> None:
    hours = OpeningHours(time(9), time(18), frozenset(range(5)))
    two_counters = day_slots(
        MONDAY, hours, "Asia/Tbilisi", counters=2, service_time_min=5, walkin_share=0.5
    )
    assert len(two_counters) == 9 * 12 and {s.capacity for s in two_counters} == {1}
    assert two_counters[0].at == datetime(2025, 6, 2, 5, 0, tzinfo=UTC)  # 09:00 in Tbilisi
    one_counter = day_slots(
        MONDAY, hours, "Asia/Tbilisi", counters=1, service_time_min=5, walkin_share=0.5
    )
    assert sum(s.capacity for s in one_counter) == 9 * 12 // 2  # one booking every other slot
    saturday = MONDAY + timedelta(days=5)
    assert day_slots(saturday, hours, "Asia/Tbilisi", counters=2, service_time_min=5,
                     walkin_share=0.5) == []  # fmt: skip


async def test_a_booked_citizen_checks_in_at_the_kiosk_and_is_called_before_the_walk_ins(
    booked: tuple[LiveServer, Clock],
) -> None:
    server, clock = booked
    async with (
        server.client() as phone,
        server.client("kiosk") as kiosk,
        server.client("operator") as operator,
    ):
        slots = await free_slots(phone)
        assert slots[0]["slot"].startswith("2025-06-02T05:00") and slots[0]["free"] == 1
        slot = slots[6]["slot"]  # 09:30
        pending = await book(phone, slot)
        assert pending.status_code == 201, pending.text
        assert "555001122" not in pending.text  # the contact is never shown back
        confirmed = await phone.post(
            f"/api/v1/bookings/{pending.json()['id']}/confirm", json={"code": sent_code(server)}
        )
        assert confirmed.status_code == 200, confirmed.text
        booking = confirmed.json()
        assert booking["status"] == "confirmed" and len(booking["short_code"]) == 8
        assert slot not in [s["slot"] for s in await free_slots(phone)]  # the slot is taken

        clock.now = datetime.fromisoformat(slot) - timedelta(minutes=40)
        walk_ins = [
            (await kiosk.post(f"{B}/tickets", json={"service_id": "id_card"})).json()["id"]
            for _ in range(3)
        ]
        clock.now = datetime.fromisoformat(slot) - timedelta(minutes=20)
        arrived = await kiosk.post(f"{B}/check-in", json={"code": booking["token"]})
        assert arrived.status_code == 201, arrived.text
        ticket = arrived.json()["ticket"]
        assert arrived.json()["late"] is False and ticket["priority"] == "appointment"

        again = await kiosk.post(f"{B}/check-in", json={"code": booking["short_code"]})
        assert (again.status_code, again.json()["code"]) == (409, "booking_used")

        clock.now = datetime.fromisoformat(slot)
        assert (await operator.post(f"{B}/counters/c01/open")).status_code == 200
        called = await operator.post(f"{B}/counters/c01/call-next")
        assert called.status_code == 200, called.text
        assert called.json()["id"] == ticket["id"] and ticket["id"] not in walk_ins


async def test_too_early_is_told_when_to_come_back_and_too_late_gets_a_walk_in_ticket(
    booked: tuple[LiveServer, Clock],
) -> None:
    server, clock = booked
    async with server.client() as phone, server.client("kiosk") as kiosk:
        slots = await free_slots(phone)
        first = await book_and_confirm(server, phone, slots[24]["slot"])  # 11:00
        second = await book_and_confirm(server, phone, slots[30]["slot"], "citizen@example.ge")
        slot = datetime.fromisoformat(first["slot"])

        clock.now = slot - timedelta(minutes=45)
        early = await kiosk.post(f"{B}/check-in", json={"code": first["short_code"]})
        assert (early.status_code, early.json()["code"]) == (409, "too_early")
        come_back = datetime.fromisoformat(early.json()["details"]["come_back_at"])
        assert come_back == slot - timedelta(minutes=30)

        clock.now = datetime.fromisoformat(second["slot"]) + timedelta(minutes=11)
        late = await kiosk.post(f"{B}/check-in", json={"code": second["short_code"].lower()})
        assert late.status_code == 201, late.text
        assert late.json()["late"] is True and late.json()["ticket"]["priority"] == "normal"
        assert "walk-in" in late.json()["message"]


async def test_a_booking_is_moved_a_limited_number_of_times_and_cancelled_only_by_its_holder(
    booked: tuple[LiveServer, Clock],
) -> None:
    server, _ = booked
    async with server.client() as phone:
        slots = await free_slots(phone)
        booking = await book_and_confirm(server, phone, slots[0]["slot"])
        path = f"/api/v1/bookings/{booking['id']}"
        for index in (1, 2):
            moved = await phone.post(
                path + "/reschedule", json={"token": booking["token"], "slot": slots[index]["slot"]}
            )
            assert moved.status_code == 200, moved.text
        third = await phone.post(
            path + "/reschedule", json={"token": booking["token"], "slot": slots[3]["slot"]}
        )
        assert (third.status_code, third.json()["code"]) == (409, "reschedule_limit")
        forged = await phone.post(path + "/cancel", json={"token": booking["token"] + "x"})
        assert (forged.status_code, forged.json()["code"]) == (403, "bad_booking_token")
        cancelled = await phone.post(path + "/cancel", json={"token": booking["token"]})
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert slots[2]["slot"] in [s["slot"] for s in await free_slots(phone)]
