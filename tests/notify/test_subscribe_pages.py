"""A citizen leaves a number for their ticket, in real headless Chromium against a real server:
on the phone page (/t/{ticket}) at a phone's size, and at the kiosk after the ticket is issued,
typed on the on-screen keypad at the kiosk's size. Georgian first; axe finds nothing serious;
the message goes out on the server's channel; the page keeps no copy of the number."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.pages.browser import serious_violations, with_pages
from tests.support import LiveServer, test_settings

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
KIOSK = {"width": 1080, "height": 1920}
SENT_WITHIN_S = 15
HEADING_KA = "შეტყობინება, როცა რიგი მოგიახლოვდებათ"
DONE_SMS_KA = "მზადაა: SMS-ს მიიღებთ, როცა რიგი მოგიახლოვდებათ და როცა გამოგიძახებენ."
BAD_NUMBER_KA = "მიუთითეთ საქართველოს ნომერი: +995 და ცხრა ციფრი, ან მობილური 5XXXXXXXX."


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = test_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}",
        tmp_path,
        notify_sms_url="memory://",
        notify_email_url="memory://",
    )
    live = with_pages(LiveServer(settings)).start()
    yield live
    live.stop()


def _page(browser: Any, viewport: dict[str, int]) -> Any:
    page = browser.new_context(viewport=viewport, locale="ka-GE").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.js_errors = errors
    return page


def _sent(server: LiveServer, channel: str) -> list[Any]:
    return list(server.rigi.notify.channels[channel].sent)


def _wait_sent(server: LiveServer, channel: str, to: str) -> list[Any]:
    """What the channel sent to `to`, once something was (Playwright owns this thread's loop)."""
    for _ in range(SENT_WITHIN_S * 20):
        found = [m for m in _sent(server, channel) if m.to == to]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"nothing was sent by {channel}")


def test_a_citizen_leaves_a_number_on_the_phone_page(browser: Any, server: LiveServer) -> None:
    from playwright.sync_api import expect

    kiosk = {"Authorization": f"Bearer {server.device_token('kiosk')}"}
    issued = httpx.post(
        f"{server.url}/api/v1/branches/testhall/tickets",
        json={"service_id": "stamp", "language": "ka"},
        headers=kiosk,
    ).json()
    page = _page(browser, PHONE)
    page.goto(f"{server.url}/t/{issued['id']}")
    expect(page.locator("#notify-heading")).to_have_text(HEADING_KA)
    expect(page.locator("#notify-sms")).to_have_attribute("aria-pressed", "true")
    assert serious_violations(page) == []

    page.fill("#notify-contact", "12345")
    page.click("#notify-send")
    expect(page.locator("#notify-error")).to_have_text(BAD_NUMBER_KA)
    expect(page.locator("#notify-contact")).to_be_focused()
    page.fill("#notify-contact", "555 12 34 56")
    page.click("#notify-send")
    expect(page.locator("#notify-done")).to_have_text(DONE_SMS_KA)
    assert "555" not in page.content()
    [near] = _wait_sent(server, "sms", "+995555123456")  # first in line: near at once
    assert near.text.startswith(f"ბილეთი {issued['label']}: თქვენი რიგი ახლოვდება")

    page.reload()  # the page remembers that it subscribed, never the number
    expect(page.locator("#notify-done")).to_have_text(DONE_SMS_KA)
    page.click("#late")
    expect(page.locator("#late-done")).to_be_visible()
    page.click("button[lang=en]")
    expect(page.locator("#notify-heading")).to_have_text("Tell me when my turn is near")
    assert serious_violations(page) == []
    assert page.js_errors == []
    page.context.close()


def test_a_citizen_types_an_email_on_the_phone_page_in_english(
    browser: Any, server: LiveServer
) -> None:
    from playwright.sync_api import expect

    issued = httpx.post(
        f"{server.url}/api/v1/branches/testhall/tickets",
        json={"service_id": "stamp", "language": "en"},
        headers={"Authorization": f"Bearer {server.device_token('kiosk')}"},
    ).json()
    page = _page(browser, PHONE)
    page.goto(f"{server.url}/t/{issued['id']}")
    page.click("#notify-email")
    expect(page.locator("label[for=notify-contact]")).to_have_text("E-mail address")
    page.fill("#notify-contact", "citizen.page@example.ge")
    page.keyboard.press("Enter")
    expect(page.locator("#notify-done")).to_contain_text("you will get an e-mail")
    [near] = _wait_sent(server, "email", "citizen.page@example.ge")
    assert near.subject == f"Rigi: ticket {issued['label']}"
    assert page.js_errors == []
    page.context.close()


def test_a_citizen_types_a_number_on_the_kiosk_keypad(browser: Any, server: LiveServer) -> None:
    from playwright.sync_api import expect

    page = _page(browser, KIOSK)
    page.goto(f"{server.url}/kiosk/testhall?setup={server.device_token('kiosk')}")
    page.click("[data-service=stamp]")
    expect(page.locator("#ticket-number")).to_be_visible()
    label = page.locator("#ticket-number").inner_text()
    page.click("#notify-open")
    expect(page.locator("#notify-keypad")).to_be_visible()
    assert page.get_attribute("#notify-contact", "inputmode") == "none"
    for key in "5991112223":
        page.click(f"#notify-keypad [data-key='{key}']")
    page.click("#notify-erase")  # one digit too many
    expect(page.locator("#notify-contact")).to_have_value("599111222")
    assert serious_violations(page) == []
    page.click("#notify-send")
    expect(page.locator("#notify-done")).to_have_text(DONE_SMS_KA)
    assert "599111222" not in page.content()
    [near] = _wait_sent(server, "sms", "+995599111222")
    assert near.text.startswith(f"ბილეთი {label}:")
    page.click("#done")  # the next citizen finds the kiosk as new
    page.click("[data-service=stamp]")
    expect(page.locator("#notify-open")).to_be_visible()
    assert page.js_errors == []
    page.context.close()
