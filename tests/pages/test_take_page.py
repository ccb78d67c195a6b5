"""The phone's ticket in the hall, in real Chromium on the demo hall in Georgian (issue 19): the
lobby display and the kiosk show the rotating QR code; a phone that opens it takes a ticket that
counts at once; a phone with an old code, or none, is told why and offered "join the queue now",
whose place counts only once checked in at the kiosk."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from queue_server.settings import SHIPPED_CONFIG
from tests.pages.browser import serious_violations, with_pages
from tests.pages.test_demo_hall import open_page
from tests.support import LiveServer, test_settings

pytestmark = pytest.mark.browser
HALL = "tbilisi"
PHONE = {"width": 390, "height": 844}
TV = {"width": 1920, "height": 1080}
KIOSK = {"width": 1080, "height": 1920}
EXPIRED_KA = "ეს QR კოდი მას შემდეგ შეიცვალა"


@pytest.fixture(scope="module")
def hall(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("take-hall")
    settings = test_settings(
        f"sqlite+aiosqlite:///{data / 'rigi.sqlite3'}", data, config=SHIPPED_CONFIG
    )
    server = with_pages(LiveServer(settings)).start()
    yield server
    server.stop()


def _waiting(hall: LiveServer) -> int:
    return sum(q["waiting"] for q in hall.run(hall.rigi.store.queues(HALL)))


def _most_used(hall: LiveServer) -> str:
    services = hall.rigi.catalog.branch_services(HALL)
    return str(max(services, key=lambda s: s.popularity or 0).id)


def test_a_phone_that_scans_the_lobby_code_takes_a_ticket_that_counts(
    browser: Any, hall: LiveServer, shots: Path
) -> None:
    from playwright.sync_api import expect

    display = open_page(browser, TV)
    display.goto(f"{hall.url}/display/{HALL}?setup={hall.device_token('display', HALL)}")
    code = display.locator("#hall-pass")
    expect(code).to_be_visible()
    expect(code.locator("figcaption")).to_contain_text("დაასკანერეთ")
    shown = code.get_attribute("data-pass")
    assert shown == hall.hall_pass(HALL)
    assert code.locator("img").evaluate("i => i.naturalWidth > 0 && i.src.startsWith('data:')")
    assert serious_violations(display) == []
    display.screenshot(path=shots / "display-hall-pass-ka.png")

    kiosk = open_page(browser, KIOSK)
    kiosk.goto(f"{hall.url}/kiosk/{HALL}?setup={hall.device_token('kiosk', HALL)}")
    expect(kiosk.locator("#hall-pass")).to_be_visible()
    assert kiosk.locator("#hall-pass").get_attribute("data-pass") == shown

    phone = open_page(browser, PHONE)
    phone.goto(f"{hall.url}/take/{HALL}?k={shown}")
    expect(phone.locator("#join-notice")).to_have_count(0)
    expect(phone.locator("#hall-pass")).to_have_count(0)  # a phone shows no pass of its own
    phone.click(f"[data-service={_most_used(hall)}]")
    expect(phone.locator("#ticket-number")).to_be_visible()
    assert phone.locator("#people-ahead").inner_text() == "0"
    assert serious_violations(phone) == []
    phone.screenshot(path=shots / "take-ticket-ka.png", full_page=True)
    for page in (display, kiosk, phone):
        assert page.js_errors == []
        page.context.close()


def test_a_code_replayed_from_home_offers_to_join_the_queue_instead(
    browser: Any, hall: LiveServer, shots: Path
) -> None:
    from playwright.sync_api import expect

    passes = hall.rigi.hall_passes
    photo = passes.current(HALL, hall.rigi.store.clock() - timedelta(seconds=2 * passes.period_s))
    waiting_before = _waiting(hall)
    phone = open_page(browser, PHONE)
    phone.goto(f"{hall.url}/take/{HALL}?k={photo.token}")
    notice = phone.locator("#join-notice")
    expect(notice).to_be_visible()
    expect(phone.locator("#pass-reason")).to_contain_text(EXPIRED_KA)
    expect(notice).to_contain_text("დარბაზში ხართ?")
    assert serious_violations(phone) == []
    phone.screenshot(path=shots / "take-expired-ka.png")

    service = _most_used(hall)
    with phone.expect_navigation():
        phone.click(f"[data-service={service}]")
    address = urlparse(phone.url)
    assert address.path == f"/book/{HALL}"
    assert parse_qs(address.query) == {"service": [service], "join": ["1"], "lang": ["ka"]}
    expect(phone.locator("#contact")).to_be_visible()
    expect(phone.locator(".chosen")).to_contain_text("რიგში ჩადგომა ახლავე")
    assert serious_violations(phone) == []
    phone.screenshot(path=shots / "take-join-instead-ka.png")
    assert _waiting(hall) == waiting_before  # nothing was issued from home
    assert phone.js_errors == []

    bare = open_page(browser, PHONE)
    bare.goto(f"{hall.url}/take/{HALL}")
    expect(bare.locator("#join-notice")).to_be_visible()
    expect(bare.locator("#pass-reason")).to_have_count(0)  # no code at all: nothing went wrong
    assert bare.js_errors == []
    phone.context.close()
    bare.context.close()
