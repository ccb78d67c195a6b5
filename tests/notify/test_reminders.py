"""The booking reminder against a real server: a citizen who booked for tomorrow with a number
hears "your booking is tomorrow at 09:30" once, in the booking's language, with the code that
checks it in; a cancelled booking and one later in the week hear nothing yet; a moved booking
is reminded of its new slot, never of the old."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.notify.helpers import Mailbox, until
from tests.test_bookings import MONDAY, START, B, book_and_confirm, booking_server, sent_code

TUESDAY = MONDAY + timedelta(days=1)
WEDNESDAY = MONDAY + timedelta(days=2)
GEORGIAN_PHONE = "+995 555 44-33-22"


async def _slots(client: httpx.AsyncClient, day: Any) -> list[dict[str, Any]]:
    response = await client.get(f"{B}/services/id_card/slots", params={"date": str(day)})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _local(slot: dict[str, Any]) -> str:
    """The slot's time on the branch's clock, as the message says it."""
    at = datetime.fromisoformat(slot["slot"]).astimezone(ZoneInfo("Asia/Tbilisi"))
    return at.strftime("%H:%M")


async def test_a_booking_made_with_a_number_is_reminded_the_day_before_once(
    database_url: str, tmp_path: Path
) -> None:
    server, clock = booking_server(database_url, tmp_path)
    try:
        async with server.client() as phone, server.client("manager") as manager:
            tuesday = await _slots(phone, TUESDAY)
            reminded = await book_and_confirm(server, phone, tuesday[6]["slot"])  # 09:30
            cancelled = await book_and_confirm(
                server, phone, tuesday[8]["slot"], "someone@example.ge"
            )
            wednesday = await _slots(phone, WEDNESDAY)
            later = await book_and_confirm(server, phone, wednesday[0]["slot"], "+995555998877")
            pending = await phone.post(
                f"{B}/bookings",
                json={"service": "id_card", "slot": tuesday[10]["slot"],
                      "contact": GEORGIAN_PHONE, "language": "ka"},
            )  # fmt: skip
            georgian = await phone.post(
                f"/api/v1/bookings/{pending.json()['id']}/confirm",
                json={"code": sent_code(server)},
            )
            assert georgian.status_code == 200, georgian.text
            answer = await phone.post(
                f"/api/v1/bookings/{cancelled['id']}/cancel", json={"token": cancelled["token"]}
            )
            assert answer.status_code == 200, answer.text
            sms = server.rigi.notify.channels["sms"]
            before = len(sms.sent)

            # Monday 08:00: Tuesday 09:30 is more than a day away.
            assert server.run(server.rigi.notify.reminders.enqueue_due()) == 0
            clock.now = START + timedelta(hours=2)  # Monday 10:00
            assert server.run(server.rigi.notify.reminders.enqueue_due()) == 2
            await until(lambda: len(sms.sent) >= before + 2)
            assert server.run(server.rigi.notify.reminders.enqueue_due()) == 0
            await asyncio.sleep(1.5)  # a second reminder would have been sent by now
            reminders = sms.sent[before:]
            states = (await manager.get(f"{B}/notify/messages")).json()
    finally:
        server.stop()
    by_number = {m.to: m.text for m in reminders}
    assert by_number == {
        "+995555001122": f"Reminder: your booking is tomorrow at {_local(tuesday[6])}: "
        "ID card, Test Hall. "
        f"Check in at the kiosk with code {reminded['short_code']}.",
        "+995555443322": f"შეხსენება: თქვენი ჯავშანი ხვალ {_local(tuesday[10])}-ზეა: "
        "„პირადობის მოწმობა“, "
        f"სატესტო დარბაზი. კიოსკზე შეიყვანეთ კოდი {georgian.json()['short_code']}.",
    }
    assert later["id"] not in {s["ticket_id"] for s in states}
    assert sorted((s["kind"], s["state"]) for s in states) == [("reminder", "sent")] * 2


async def test_a_moved_booking_is_reminded_of_its_new_slot_and_never_of_the_old_one(
    database_url: str, tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> None:
    """Over real SMTP: a reminder still waiting to be sent when its booking moves is not sent;
    the new slot is reminded once; a booking moved after its reminder went out is reminded
    again of where it moved."""
    box, smtp_port = mailbox
    server, clock = booking_server(
        database_url, tmp_path,
        notify_email_url=f"smtp://127.0.0.1:{smtp_port}?from=rigi@example.ge",
    )  # fmt: skip
    reminders = server.rigi.notify.reminders
    try:
        async with server.client() as phone, server.client("manager") as manager:
            tuesday = await _slots(phone, TUESDAY)
            pending = await phone.post(
                f"{B}/bookings",
                json={"service": "id_card", "slot": tuesday[6]["slot"],
                      "contact": "mover@example.ge", "language": "en"},
            )  # fmt: skip
            assert pending.status_code == 201, pending.text
            booking = (
                await phone.post(
                    f"/api/v1/bookings/{pending.json()['id']}/confirm",
                    json={"code": await asyncio.to_thread(box.code, 1)},
                )
            ).json()
            move = f"/api/v1/bookings/{booking['id']}/reschedule"

            # Monday 10:00: the 09:30 reminder is queued, but the mail server says "later".
            box.refusing = True
            clock.now = START + timedelta(hours=2)
            assert server.run(reminders.enqueue_due()) == 1
            await until(lambda: box.refused >= 1)
            box.refusing = False
            moved = await phone.post(move, json={"token": booking["token"],
                                                 "slot": tuesday[12]["slot"]})  # fmt: skip
            assert moved.status_code == 200, moved.text
            clock.now += timedelta(minutes=1)  # past the retry's backoff: the old one is due
            assert server.run(reminders.enqueue_due()) == 1  # the new slot's
            await until(lambda: len(box.mails) >= 2)
            assert server.run(reminders.enqueue_due()) == 0

            # Moved again after its reminder went out: reminded of the newest slot.
            again = await phone.post(move, json={"token": booking["token"],
                                                 "slot": tuesday[4]["slot"]})  # fmt: skip
            assert again.status_code == 200, again.text
            assert server.run(reminders.enqueue_due()) == 1
            await until(lambda: len(box.mails) >= 3)
            await asyncio.sleep(1.5)  # the old reminder would have been retried by now
            states = (await manager.get(f"{B}/notify/messages")).json()
    finally:
        server.stop()
    code = booking["short_code"]
    assert [text.strip() for text in box.texts()[1:]] == [
        f"Reminder: your booking is tomorrow at {_local(tuesday[n])}: ID card, Test Hall. "
        f"Check in at the kiosk with code {code}."
        for n in (12, 4)
    ]
    assert sorted((s["kind"], s["state"], s["last_error"]) for s in states) == [
        ("reminder", "failed", "the booking was moved; its new slot is reminded"),
        ("reminder", "sent", None),
        ("reminder", "sent", None),
    ]
