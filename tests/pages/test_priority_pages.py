"""Priority with the attendant's confirmation, as the citizen and the operator see it (issue 19):
on the demo hall in Georgian, the kiosk says the priority is requested and the attendant must
confirm it; the operator's console grants it from the waiting list and the ticket moves first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from queue_server.settings import SHIPPED_CONFIG
from tests.pages.browser import serious_violations, with_pages
from tests.support import PASSWORD, LiveServer, test_settings

HALL = "tbilisi"
SCREEN = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def hall(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("priority-hall")
    settings = test_settings(
        f"sqlite+aiosqlite:///{data / 'rigi.sqlite3'}",
        data,
        config=SHIPPED_CONFIG,
        booking_branches={HALL: {"priority_confirm": 1}},
    )
    server = with_pages(LiveServer(settings)).start()
    yield server
    server.stop()


def _page(browser: Any) -> Any:
    page = browser.new_context(viewport=SCREEN, locale="ka-GE").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.js_errors = errors
    return page


def test_the_attendant_confirms_a_kiosk_priority_from_the_console(
    browser: Any, hall: LiveServer, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    catalog = hall.rigi.store.catalog
    counter = catalog.branch(HALL).counters[0].id
    service = catalog.service(next(iter(catalog.profile(HALL, counter))))
    walk_in = httpx.post(
        f"{hall.url}/api/v1/branches/{HALL}/tickets",
        json={"service_id": service.id},
        headers={"Authorization": f"Bearer {hall.device_token('kiosk', HALL)}"},
        timeout=10,
    ).json()

    kiosk = _page(browser)
    kiosk.goto(f"{hall.url}/kiosk/{HALL}?setup={hall.device_token('kiosk', HALL)}")
    kiosk.click("#priority")
    kiosk.fill("#search", service.name.ka)
    kiosk.click(f"[data-service={service.id}]")
    expect(kiosk.locator("#priority-requested")).to_have_text(
        "პრიორიტეტი მოთხოვნილია: აჩვენეთ ეს ბილეთი კონსულტანტს, რომელიც მას დაადასტურებს."
    )
    label = kiosk.locator("#ticket-number").inner_text()
    assert serious_violations(kiosk) == []
    kiosk.screenshot(path=tmp_path / "kiosk-priority-requested-ka.png")
    assert kiosk.js_errors == []

    console = _page(browser)
    console.goto(f"{hall.url}/console/{HALL}?counter={counter}")
    console.wait_for_selector("#signin")
    console.fill("#username", hall.user("operator", HALL))
    console.fill("#password", PASSWORD)
    console.click("#signin-submit")
    console.wait_for_selector("#signin", state="detached")
    console.click("#action-open")
    rows = console.locator("#waiting-table tbody tr")
    expect(rows.first).to_have_attribute("data-ticket", walk_in["label"])
    console.click(f"[data-grant='{label}']")
    expect(console.locator("#message")).to_contain_text("პრიორიტეტი მინიჭებულია")
    expect(rows.first).to_have_attribute("data-ticket", label)  # re-ranked by the feed
    expect(console.locator(f"[data-grant='{label}']")).to_have_count(0)
    assert serious_violations(console) == []
    assert console.js_errors == []
    console.click("#action-call-next")
    expect(console.locator("#current-label")).to_have_text(label)
