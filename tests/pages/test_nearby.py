""" "Where can I go now?" on the shipped organisation (86 branches): from the Shashiani Community
Centre, the other Kakheti centres offering ID cards, with the wait a walk-in would have there
now — through the API, and on the phone page in real headless Chromium at a phone's size, in
Georgian, axe clean."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from queue_server.catalog.regions import region_of, regions_by_municipality
from queue_server.settings import SHIPPED_CONFIG
from tests.pages.browser import serious_violations, with_pages
from tests.pages.test_demo_hall import staff
from tests.support import LiveServer, test_settings

HERE = "cc01-shashiani"  # Gurjaani, Kakheti
BUSY = "cc17-kachreti"  # Gurjaani too: one counter open, people waiting
FREE = "cc13-kvareltskali"  # Akhmeta, Kakheti: one counter open, nobody waiting
SERVICE = "id_card"
WAITING_AT_BUSY = 5
PHONE = {"width": 390, "height": 844}
HEADING_KA = "სად შემიძლია წავიდე ახლა?"
NO_WAIT_KA = "ახლა რიგი არ არის"
NOT_SERVED_KA = "ამჟამად ამ მომსახურებას ღია სარკმელი არ ემსახურება"


@pytest.fixture(scope="module")
def centres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("nearby")
    settings = test_settings(
        f"sqlite+aiosqlite:///{data / 'rigi.sqlite3'}", data, config=SHIPPED_CONFIG
    )
    live = with_pages(LiveServer(settings)).start()
    kiosk = {"Authorization": f"Bearer {live.device_token('kiosk', BUSY)}"}
    with httpx.Client(base_url=live.url, timeout=30) as client:
        for number in range(WAITING_AT_BUSY + 1):
            client.post(
                f"/api/v1/branches/{BUSY}/tickets",
                json={"service_id": SERVICE, "language": "ka"},
                headers=kiosk | {"Idempotency-Key": f"nearby-{number}"},
            ).raise_for_status()
    for branch, call in ((BUSY, True), (FREE, False)):
        with staff(live, "operator", branch) as operator:
            operator.post(f"/api/v1/branches/{branch}/counters/c01/open").raise_for_status()
            if call:
                operator.post(f"/api/v1/branches/{branch}/counters/c01/call-next")
    yield live
    live.stop()


def _nearby(live: LiveServer, branch: str, service: str) -> httpx.Response:
    return httpx.get(f"{live.url}/api/v1/branches/{branch}/services/{service}/nearby", timeout=30)


def test_the_other_centres_of_the_region_are_listed_shortest_wait_first(
    centres: LiveServer,
) -> None:
    answer = _nearby(centres, HERE, SERVICE)
    assert answer.status_code == 200, answer.text
    listed = answer.json()["branches"]
    catalog = centres.rigi.catalog
    regions = regions_by_municipality(SHIPPED_CONFIG)
    kakheti = {
        b.id
        for b in catalog.branches.values()
        if region_of(b, regions) == "Kakheti" and b.id != HERE and catalog.serves(b.id, SERVICE)
    }
    assert {b["id"] for b in listed} == kakheti and len(listed) == 12
    free, busy, *closed = listed
    assert free["id"] == FREE and free["served_now"] and free["people_ahead"] == 0
    assert free["wait_minutes"] == 0
    assert busy["id"] == BUSY and busy["served_now"] and busy["same_municipality"]
    assert busy["people_ahead"] == WAITING_AT_BUSY
    promised = busy["wait_range"]  # the forecast of a newcomer, one counter serving five ahead
    assert promised is not None and 5 <= promised["median_min"] <= promised["p90_min"]
    assert all(not b["served_now"] and not b["same_municipality"] for b in closed)


def test_from_the_tbilisi_hall_the_city_centre_is_offered_and_bad_requests_are_refused(
    centres: LiveServer,
) -> None:
    (gldani,) = _nearby(centres, "tbilisi", SERVICE).json()["branches"]
    assert gldani["id"] == "cc46-gldani" and gldani["same_municipality"]
    assert not gldani["served_now"] and gldani["wait_range"] is None  # no counter open there
    municipal_only = next(
        s.id for s in centres.rigi.catalog.branch_services("tbilisi")
        if not centres.rigi.catalog.serves(HERE, s.id)
    )  # fmt: skip
    for branch, service, code in (
        (HERE, "no_such_service", "unknown_service"),
        (HERE, municipal_only, "service_not_offered"),
        ("no-such-branch", SERVICE, "unknown_branch"),
    ):
        refused = _nearby(centres, branch, service)
        assert refused.status_code == 404 and refused.json()["code"] == code


@pytest.mark.browser
def test_a_citizen_on_the_phone_sees_where_else_to_go_in_georgian(
    browser: Any, centres: LiveServer
) -> None:
    from playwright.sync_api import expect

    page = browser.new_context(viewport=PHONE, locale="ka-GE").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{centres.url}/take/{HERE}?k={centres.hall_pass(HERE)}")  # scanned in the hall
    page.click("#all-services")
    page.click(f'#all [data-service="{SERVICE}"]')
    expect(page.locator("#nearby-heading")).to_have_text(HEADING_KA)
    page.click("#nearby-open")
    items = page.locator("#nearby-list li")
    expect(items).to_have_count(12)
    expect(items.nth(0)).to_have_attribute("data-branch", FREE)
    expect(items.nth(0).locator(".nearby-wait")).to_have_text(NO_WAIT_KA)
    expect(items.nth(1)).to_have_attribute("data-branch", BUSY)
    expect(items.nth(1).locator(".nearby-wait")).to_contain_text("დაახლ.")
    expect(items.nth(1).locator(".nearby-name")).to_have_text("საზოგადოებრივი ცენტრი კაჭრეთში")
    expect(items.nth(11).locator(".nearby-wait")).to_have_text(NOT_SERVED_KA)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.evaluate("document.documentElement.lang") == "ka"
    assert serious_violations(page) == []
    assert errors == []


@pytest.mark.browser
def test_a_citizen_following_a_kiosk_ticket_on_the_phone_sees_where_else_to_go(
    browser: Any, centres: LiveServer
) -> None:
    from playwright.sync_api import expect

    kiosk = {"Authorization": f"Bearer {centres.device_token('kiosk', HERE)}"}
    issued = httpx.post(
        f"{centres.url}/api/v1/branches/{HERE}/tickets",
        json={"service_id": SERVICE, "language": "ka"},
        headers=kiosk,
        timeout=30,
    ).json()
    page = browser.new_context(viewport=PHONE, locale="ka-GE").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{centres.url}/t/{issued['id']}")
    expect(page.locator("#nearby-heading")).to_have_text(HEADING_KA)
    page.click("#nearby-open")
    expect(page.locator("#nearby-list li")).to_have_count(12)
    expect(page.locator("#nearby-list li").nth(1)).to_have_attribute("data-branch", BUSY)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert serious_violations(page) == []
    assert errors == []
