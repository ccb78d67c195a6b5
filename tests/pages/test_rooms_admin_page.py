"""A Community Centre's manager sets up its conference rooms on the branch page, in Georgian,
and a citizen's phone then picks one of them on the room page, with its seats; both pages pass
axe (issue 19)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from queue_server.settings import SHIPPED_CONFIG
from tests.pages.browser import serious_violations, with_pages
from tests.pages.test_demo_hall import open_page
from tests.support import PASSWORD, LiveServer, test_settings

pytestmark = pytest.mark.browser
CENTRE = "cc01-shashiani"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def centre(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("rooms-centre")
    settings = test_settings(
        f"sqlite+aiosqlite:///{data / 'rigi.sqlite3'}",
        data,
        config=SHIPPED_CONFIG,
        notify_email_url="memory://",
    )
    live = with_pages(LiveServer(settings)).start()
    yield live
    live.stop()


def _fill_room(page: Any, index: int, values: dict[str, str]) -> None:
    row = page.locator("#rooms-form fieldset.room-config").nth(index)
    for name, value in values.items():
        row.locator(f"input[name={name}]").fill(value)


def test_a_manager_sets_up_two_rooms_and_a_phone_picks_one(
    browser: Any, centre: LiveServer, shots: Path
) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, DESKTOP)
    page.goto(f"{centre.url}/admin/branch")
    page.wait_for_selector("#signin")
    page.fill("#username", centre.user("manager", CENTRE))
    page.fill("#password", PASSWORD)
    page.click("#signin-submit")
    expect(page.locator("#rooms-default")).to_be_visible()  # one room, as before
    page.click("#add-room")
    page.click("#add-room")
    _fill_room(page, 0, {"room-id": "main", "room-name-ka": "დიდი დარბაზი",
                         "room-name-en": "Main hall", "room-capacity": "40"})  # fmt: skip
    _fill_room(page, 1, {"room-id": "small", "room-name-ka": "პატარა ოთახი",
                         "room-name-en": "Small room", "room-capacity": "8",
                         "room-opens": "10:00", "room-closes": "13:00"})  # fmt: skip
    page.locator("#rooms-form fieldset.room-config").nth(1).locator(
        "input[name=room-day][value=mon]"
    ).check()
    page.click("#save-rooms")
    page.wait_for_selector("#saved[data-what=rooms]")
    rooms = centre.rigi.catalog.branch(CENTRE).rooms
    assert [(r.id, r.capacity, r.name.ka) for r in rooms] == [
        ("main", 40, "დიდი დარბაზი"), ("small", 8, "პატარა ოთახი"),
    ]  # fmt: skip
    assert rooms[0].hours == {} and list(rooms[1].hours) == ["mon"]
    assert serious_violations(page) == []
    page.screenshot(path=shots / "admin-rooms-ka.png", full_page=True)
    assert page.js_errors == []
    page.context.close()

    phone = open_page(browser, PHONE)
    phone.goto(f"{centre.url}/room/{CENTRE}")
    choice = phone.locator("#room-choice")
    expect(choice.locator("option")).to_have_count(2)
    choice.select_option("small")
    phone.locator("[data-day]").first.click()
    expect(phone.locator("#room-seats")).to_have_text("8 ადგილი")
    assert serious_violations(phone) == []
    phone.screenshot(path=shots / "room-choice-ka.png", full_page=True)
    assert phone.js_errors == []
    phone.context.close()
