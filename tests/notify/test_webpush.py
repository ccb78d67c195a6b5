"""Web Push to the phone page: the server signs with VAPID and encrypts with the browser's keys
(pywebpush); a local push service checks the JWT and decrypts, as a browser's would. A
subscription pointing anywhere but a known push service is refused. In Chromium, the phone page
offers it, registers its service worker and says plainly when notifications are not allowed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.notify.helpers import until
from tests.notify.push_service import PushService, vapid_private_key
from tests.pages.browser import serious_violations, with_pages
from tests.support import LiveServer, test_settings

B = "/api/v1/branches/testhall"
SUBJECT = "mailto:ops@example.ge"


@pytest.fixture
def push() -> Iterator[PushService]:
    service = PushService()
    yield service
    service.stop()


@pytest.fixture
def server(tmp_path: Path, push: PushService) -> Iterator[LiveServer]:
    settings = test_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}",
        tmp_path,
        notify_push_url=f"webpush://?subject={SUBJECT}&key={vapid_private_key()}",
        notify_push_hosts=("127.0.0.1",),
    )
    live = with_pages(LiveServer(settings)).start()
    yield live
    live.stop()


async def test_a_phone_hears_near_and_called_by_web_push(
    server: LiveServer, push: PushService
) -> None:
    phone = push.browser("phone-1")
    async with server.client("kiosk") as kiosk, server.client("operator") as operator:
        ticket = (await kiosk.post(f"{B}/tickets", json={"service_id": "stamp"})).json()
        answer = await kiosk.post(
            f"/api/v1/tickets/{ticket['id']}/subscribe",
            json={"push": phone.subscription() | {"expirationTime": None}, "language": "en"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["channel"] == "push"
        # Subscribed with nobody ahead: "near" comes first (a call within the same moment
        # would make it moot, and the outbox then tells only the call).
        await until(lambda: len(push.received) >= 1)
        assert (await operator.post(f"{B}/counters/c04/open")).status_code == 200
        assert (await operator.post(f"{B}/counters/c04/call-next")).status_code == 200
        await until(lambda: len(push.received) >= 2)
        await asyncio.sleep(1.0)
    assert push.refused == []
    label = ticket["label"]
    assert [(p["to"], p["sub"], p["title"], p["body"]) for p in push.received] == [
        ("phone-1", SUBJECT, f"Rigi: ticket {label}",
         f"Ticket {label}: your turn is near, 0 people are ahead of you. "
         "Please come back to the hall. Reply LATE if you need more time."),
        ("phone-1", SUBJECT, f"Rigi: ticket {label}", f"Ticket {label}: please go to counter 4."),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://evil.example.ge/push/1",  # not a push service
        "http://127.0.0.2/push/1",  # plain HTTP off loopback
        "file:///etc/passwd",
    ],
)
async def test_a_subscription_aimed_anywhere_else_is_refused(
    server: LiveServer, push: PushService, endpoint: str
) -> None:
    keys = push.browser("x").subscription()["keys"]
    async with server.client("kiosk") as kiosk:
        ticket = (await kiosk.post(f"{B}/tickets", json={"service_id": "stamp"})).json()
        bad_keys = {"endpoint": f"{push.origin}/push/x", "keys": {"p256dh": "short", "auth": "x"}}
        for body in ({"endpoint": endpoint, "keys": keys}, bad_keys):
            answer = await kiosk.post(
                f"/api/v1/tickets/{ticket['id']}/subscribe", json={"push": body}
            )
            assert (answer.status_code, answer.json()["code"]) == (422, "bad_push_subscription")
    await asyncio.sleep(1.0)
    assert push.received == [] and push.refused == []


@pytest.mark.browser
def test_the_phone_page_offers_push_and_says_when_the_browser_refuses(
    browser: Any, server: LiveServer
) -> None:
    from playwright.sync_api import expect

    ticket = httpx.post(
        f"{server.url}{B}/tickets",
        json={"service_id": "stamp", "language": "ka"},
        headers={"Authorization": f"Bearer {server.device_token('kiosk')}"},
    ).json()
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="ka-GE")
    page = context.new_page()
    page.goto(f"{server.url}/t/{ticket['id']}")
    expect(page.locator("#push-enable")).to_have_text("შეტყობინებები ამ ტელეფონზე (ნომრის გარეშე)")
    assert serious_violations(page) == []
    scope = page.evaluate(
        "navigator.serviceWorker.register('/sw.js', {scope: location.pathname})"
        ".then((r) => r.scope)"
    )
    assert scope == f"{server.url}/t/{ticket['id']}"
    page.click("#push-enable")  # headless Chromium denies notifications unless granted
    expect(page.locator("#push-state")).to_have_text(
        "ბრაუზერმა შეტყობინებების ნება არ მისცა. შეგიძლიათ დატოვოთ ნომერი ან ელფოსტა."
    )
    context.close()
