"""Citizens told by SMS and e-mail: a real SMTP server (aiosmtpd), the local SMS gateway, a real
server on a free port. Stories: a subscribed ticket hears near, called and finished once each in
its language while 50 others are served; bad input is refused with stable codes and sends
nothing; "late" works once; no log line holds a number or an address."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.notify.helpers import INBOUND_TOKEN, Gateway, Mailbox, until
from tests.support import LiveServer, test_settings

PHONE = "+995 555 12-34-56"
PHONE_NORMAL = "+995555123456"
EMAIL = "citizen.test@example.ge"
OTHERS_BEFORE = 30
OTHERS_AFTER = 20
COUNTER = "/api/v1/branches/testhall/counters/c01"


@pytest.fixture
def notifying(
    database_url: str, tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> Iterator[tuple[LiveServer, Gateway, Mailbox]]:
    box, smtp_port = mailbox
    gateway = Gateway()
    settings = test_settings(
        database_url,
        tmp_path,
        notify_sms_url=gateway.sms_url,
        notify_email_url=f"smtp://127.0.0.1:{smtp_port}?from=rigi@example.ge",
        notify_inbound_token=INBOUND_TOKEN,
        notify_recipient_rate="1000/minute",
        notify_subscribe_rate="3/hour",
    )
    server = LiveServer(settings).start()
    gateway.app.state.gateway.server_url = server.url
    yield server, gateway, box
    server.stop()
    gateway.stop()


async def _issue(client: httpx.AsyncClient, language: str = "ka") -> dict[str, Any]:
    response = await client.post(
        "/api/v1/branches/testhall/tickets", json={"service_id": "stamp", "language": language}
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def _serve_next(client: httpx.AsyncClient) -> dict[str, Any]:
    called = (await client.post(COUNTER + "/call-next")).json()
    assert (await client.post(COUNTER + "/start")).status_code == 200
    assert (await client.post(COUNTER + "/finish", json={"outcome": "served"})).status_code == 200
    return called  # type: ignore[no-any-return]


def _mail_text(mail: Any) -> tuple[str, str]:
    subject = str(make_header(decode_header(mail["Subject"])))
    return subject, mail.get_payload(decode=True).decode()


async def test_a_citizen_hears_near_called_finished_once_each_in_their_language(
    notifying: tuple[LiveServer, Gateway, Mailbox], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server, gateway, box = notifying
    async with server.client("kiosk") as kiosk, server.client("operator") as operator:
        for _ in range(OTHERS_BEFORE):
            await _issue(kiosk)
        by_sms = await _issue(kiosk, "ka")
        by_mail = await _issue(kiosk, "en")
        for _ in range(OTHERS_AFTER):
            await _issue(kiosk)
        async with server.client() as phone:
            answer = await phone.post(
                f"/api/v1/tickets/{by_sms['id']}/subscribe", json={"phone": PHONE}
            )
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"ticket_id": by_sms["id"], "channel": "sms", "language": "ka"}
            answer = await phone.post(
                f"/api/v1/tickets/{by_mail['id']}/subscribe", json={"email": EMAIL}
            )
            assert answer.status_code == 200, answer.text
        assert (await operator.post(COUNTER + "/open")).status_code == 200
        # Serve until two are left before them, and let the outbox (which runs behind the
        # counter, never in its way) tell them before going on: on a loaded machine it could
        # otherwise lag until they were called, when "near" is too late to send.
        served = [await _serve_next(operator) for _ in range(OTHERS_BEFORE - 2)]
        await until(lambda: len(gateway.sent) >= 1 and len(box.mails) >= 1, what="'near'")
        served += [await _serve_next(operator) for _ in range(2 + 2 + OTHERS_AFTER)]
    assert {by_sms["id"], by_mail["id"]} <= {t["id"] for t in served}

    await until(lambda: len(gateway.sent) >= 3 and len(box.mails) >= 3)
    await asyncio.sleep(1.5)  # anything doubled would have arrived by now
    assert [m["to"] for m in gateway.sent] == [PHONE_NORMAL] * 3
    label = by_sms["label"]
    # The outbox runs behind the counter (never in its way): by the time it looks, one or two
    # more may have been called than the threshold of 3.
    ahead = int(re.search(r"წინ (\d+)", gateway.sent[0]["text"]).group(1))  # type: ignore[union-attr]
    assert 1 <= ahead <= 3
    assert [m["text"] for m in gateway.sent] == [
        f"ბილეთი {label}: თქვენი რიგი ახლოვდება, თქვენ წინ {ahead} ადამიანია. "
        "გთხოვთ, დაბრუნდეთ დარბაზში. დაგვიანებისთვის უპასუხეთ „late“.",
        f"ბილეთი {label}: მობრძანდით 1 სარკმელთან.",
        f"ბილეთი {label}: ვიზიტი დასრულდა. გმადლობთ! შეაფასეთ მომსახურება.",
    ]
    mails = [_mail_text(m) for m in box.mails]
    assert [m["To"] for m in box.mails] == [EMAIL] * 3
    label = by_mail["label"]
    ahead = int(re.search(r"near, (\d+) people", mails[0][1]).group(1))  # type: ignore[union-attr]
    assert 1 <= ahead <= 3
    assert mails[0][0] == f"Rigi: ticket {label}"
    assert [body.strip() for _, body in mails] == [
        f"Ticket {label}: your turn is near, {ahead} people are ahead of you. "
        "Please come back to the hall. Reply LATE if you need more time.",
        f"Ticket {label}: please go to counter 1.",
        f"Ticket {label}: your visit is finished. Thank you! Please rate the service.",
    ]
    async with server.client("operator") as operator:
        states = (await operator.get("/api/v1/branches/testhall/notify/messages")).json()
    assert sorted((s["channel"], s["kind"], s["state"]) for s in states) == sorted(
        (channel, kind, "sent")
        for channel in ("sms", "email")
        for kind in ("near", "called", "finished")
    )
    # Every log line of the server and its libraries; the test's own mail server ("mail.log",
    # standing in for the operator's) is not ours and logs recipients by design.
    logged = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if not r.name.startswith("mail.log")
    )
    assert "queue_server" in logged or "aiosqlite" in logged or "asyncpg" in logged
    for secret in (PHONE_NORMAL, PHONE, "555123456", EMAIL, "citizen.test"):
        assert secret not in logged


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"phone": "+1 202 555 0100"}, "bad_phone_number"),
        ({"phone": "12345"}, "bad_phone_number"),
        ({"phone": "+99555512345"}, "bad_phone_number"),
        ({"email": "not-an-address"}, "bad_email"),
        ({"email": "a@b"}, "bad_email"),
        ({"email": "two@@example.ge"}, "bad_email"),
        ({}, "bad_contact"),
        ({"phone": "555123456", "email": "x@example.ge"}, "bad_contact"),
    ],
)
async def test_a_bad_contact_is_refused_with_a_stable_code_and_nothing_is_sent(
    notifying: tuple[LiveServer, Gateway, Mailbox], body: dict[str, str], code: str
) -> None:
    server, gateway, box = notifying
    async with server.client("kiosk") as kiosk:
        ticket = await _issue(kiosk)
        answer = await kiosk.post(f"/api/v1/tickets/{ticket['id']}/subscribe", json=body)
        assert answer.status_code == 422
        assert answer.json()["code"] == code
        for value in body.values():
            assert value not in answer.text
    await asyncio.sleep(1.2)
    assert gateway.sent == [] and box.mails == []


async def test_a_flood_of_subscriptions_from_one_number_is_limited(
    notifying: tuple[LiveServer, Gateway, Mailbox],
) -> None:
    server, _, _ = notifying
    async with server.client("kiosk") as kiosk:
        codes = []
        for _ in range(5):
            ticket = await _issue(kiosk)
            answer = await kiosk.post(
                f"/api/v1/tickets/{ticket['id']}/subscribe", json={"phone": "599000111"}
            )
            codes.append(answer.json().get("code") if answer.status_code != 200 else "ok")
    assert codes == ["ok", "ok", "ok", "subscribe_limited", "subscribe_limited"]


async def test_late_moves_a_ticket_back_once_by_tap_and_by_sms_then_refuses(
    notifying: tuple[LiveServer, Gateway, Mailbox],
) -> None:
    server, gateway, _ = notifying
    async with server.client("kiosk") as kiosk, server.client() as phone:
        tapped = await _issue(kiosk)
        texted = await _issue(kiosk)
        behind = await _issue(kiosk)
        first = await phone.post(f"/api/v1/tickets/{tapped['id']}/late")
        assert first.status_code == 200, first.text
        again = await phone.post(f"/api/v1/tickets/{tapped['id']}/late")
        assert again.status_code == 409
        assert again.json()["code"] == "late_already_used"

        await phone.post(f"/api/v1/tickets/{texted['id']}/subscribe", json={"phone": PHONE})
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as operator:
            reply = await operator.post("/reply", json={"from": PHONE_NORMAL, "text": "Late"})
            assert reply.status_code == 200, reply.text
            assert reply.json() == {"action": "late", "ticket": texted["label"]}
            reply = await operator.post("/reply", json={"from": PHONE_NORMAL, "text": "опаздываю"})
            assert reply.json()["code"] == "late_already_used"
        forged = await phone.post(
            "/api/v1/notify/sms-inbound",
            json={"from": PHONE_NORMAL, "text": "cancel"},
            headers={"X-Rigi-Signature": "0" * 64},
        )
        assert forged.status_code == 401
        assert forged.json()["code"] == "bad_signature"
        assert (await phone.get(f"/api/v1/tickets/{texted['id']}")).json()["status"] == "waiting"
    # Both moved back ten minutes, so the ticket issued behind them is served first.
    async with server.client("operator") as operator:
        await operator.post(COUNTER + "/open")
        order = [(await _serve_next(operator))["id"] for _ in range(3)]
    assert order[0] == behind["id"]
