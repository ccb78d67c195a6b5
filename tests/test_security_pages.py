"""The phone page in real Chromium (issue 19): it offers no priority, and it keeps one random
client id that scopes its Idempotency-Keys."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support import LiveServer

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
TICKETS = re.compile(r"/api/v1/branches/testhall/tickets$")


def test_the_phone_page_offers_no_priority_and_keeps_one_client_id(
    browser: Any, server: LiveServer
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport=PHONE, locale="ka-GE")
    phone = context.new_page()
    phone.goto(f"{server.url}/take/testhall?k={server.hall_pass()}")  # scanned in the hall
    expect(phone.locator("[data-service=id_card]")).to_be_visible()
    expect(phone.locator("#priority")).to_have_count(0)

    client_ids = []
    for _ in range(2):
        with phone.expect_request(TICKETS) as sent:
            phone.click("[data-service=id_card]")
        request = sent.value
        assert '"priority":"normal"' in (request.post_data or "")
        client_ids.append(request.headers.get("x-rigi-client"))
        expect(phone.locator("#ticket-number")).to_be_visible()
        phone.click("#done")
    assert client_ids[0] and re.fullmatch(r"[0-9a-f]{32}", client_ids[0])
    assert client_ids[1] == client_ids[0]

    kiosk = browser.new_context(viewport=PHONE).new_page()
    kiosk.goto(f"{server.url}/kiosk/testhall?setup={server.device_token('kiosk')}")
    expect(kiosk.locator("#priority")).to_be_visible()
    context.close()
