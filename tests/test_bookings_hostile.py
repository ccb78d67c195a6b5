"""Attacks on bookings, against a real server: a flood from one address and from one number,
guessing the one-time code, a second booking for the same person, hoarding over many days,
no-shows, a slot booked past its capacity. Each is refused with a stable code and changes
nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.support import LiveServer
from tests.test_bookings import (
    PHONE,
    book,
    book_and_confirm,
    booking_server,
    free_slots,
    sent_code,
)


async def test_a_flood_from_one_address_and_from_one_number_is_cut(
    database_url: str, tmp_path: Path
) -> None:
    server, _ = booking_server(
        database_url, tmp_path, booking_rate_address="5/hour", booking_rate_contact="2/hour"
    )
    try:
        async with server.client() as phone:
            slots = [s["slot"] for s in await free_slots(phone)]
            codes = []
            for service in ("id_card", "passport", "stamp"):  # one number, whatever the service
                codes.append((await book(phone, slots[0], PHONE, service)).json().get("code"))
            assert codes == [None, None, "booking_rate_limited"]
            numbers = [f"+99555500{n:04d}" for n in range(3)]
            answers = [await book(phone, slots[10 + n], number) for n, number in enumerate(numbers)]
            limited = answers[-1]
            assert (limited.status_code, limited.json()["code"]) == (429, "booking_rate_limited")
            assert int(limited.headers["retry-after"]) > 0
            sent = server.rigi.notify.channels["sms"].sent
            assert len(sent) == 4  # two for the number, two more numbers: then nothing
    finally:
        server.stop()


async def test_guessing_the_code_locks_the_booking_after_five_attempts(
    database_url: str, tmp_path: Path
) -> None:
    server, _ = booking_server(database_url, tmp_path)
    try:
        async with server.client() as phone:
            slot = (await free_slots(phone))[0]["slot"]
            pending = (await book(phone, slot)).json()
            real = sent_code(server)
            path = f"/api/v1/bookings/{pending['id']}/confirm"
            wrong = f"{(int(real) + 1) % 1_000_000:06d}"
            answers = [await phone.post(path, json={"code": wrong}) for _ in range(5)]
            assert [a.json()["code"] for a in answers] == ["wrong_code"] * 5
            assert answers[-1].json()["details"]["attempts_left"] == 0
            locked = await phone.post(path, json={"code": real})
            assert (locked.status_code, locked.json()["code"]) == (403, "code_locked")
    finally:
        server.stop()


async def test_one_active_booking_per_person_and_service_and_a_limit_over_days(
    database_url: str, tmp_path: Path
) -> None:
    server, _ = booking_server(database_url, tmp_path, booking_max_per_person=2)
    try:
        async with server.client() as phone:
            slots = [s["slot"] for s in await free_slots(phone)]
            await book_and_confirm(server, phone, slots[0])
            spelled_otherwise = await book(phone, slots[5], "555001122")  # same number
            assert (spelled_otherwise.status_code, spelled_otherwise.json()["code"]) == (
                409,
                "booking_exists",
            )
            other_service = await book(phone, slots[6], PHONE, "stamp")
            assert other_service.status_code == 201, other_service.text
            third = await book(phone, slots[12], PHONE, "passport")
            assert (third.status_code, third.json()["code"]) == (409, "booking_limit_reached")
    finally:
        server.stop()


async def test_no_shows_block_booking_for_a_while(database_url: str, tmp_path: Path) -> None:
    server, clock = booking_server(
        database_url, tmp_path, booking_noshow_limit=1, booking_max_per_person=10
    )
    try:
        async with server.client() as phone:
            slots = await free_slots(phone)
            booking = await book_and_confirm(server, phone, slots[0]["slot"])
            clock.now += timedelta(hours=2)  # the slot passed; nobody came
            later = [s["slot"] for s in await free_slots(phone)]
            blocked = await book(phone, later[-1], PHONE)
            assert (blocked.status_code, blocked.json()["code"]) == (403, "booking_blocked")
            async with server.client("kiosk") as kiosk:
                gone = await kiosk.post(
                    "/api/v1/branches/testhall/check-in", json={"code": booking["short_code"]}
                )
            assert gone.status_code == 201 and gone.json()["late"] is True  # still a walk-in
    finally:
        server.stop()


async def test_a_full_slot_a_made_up_time_and_a_forged_token_are_refused(
    database_url: str, tmp_path: Path
) -> None:
    server: LiveServer
    server, _ = booking_server(database_url, tmp_path)
    try:
        async with server.client() as phone, server.client("kiosk") as kiosk:
            slot = (await free_slots(phone))[0]["slot"]
            await book_and_confirm(server, phone, slot)
            full = await book(phone, slot, "+995555999888")
            assert (full.status_code, full.json()["code"]) == (409, "slot_full")
            odd = await book(phone, slot.replace(":00+", ":01+"), "+995555999888")
            assert (odd.status_code, odd.json()["code"]) == (422, "bad_slot")
            forged = await kiosk.post(
                "/api/v1/branches/testhall/check-in", json={"code": "abc.testhall.1.sig"}
            )
            assert (forged.status_code, forged.json()["code"]) == (404, "booking_not_found")
            assert len(server.rigi.notify.channels["sms"].sent) == 1
    finally:
        server.stop()
