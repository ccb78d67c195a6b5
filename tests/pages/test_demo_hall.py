"""The pages on the real demo hall (the shipped config/: Tbilisi, 59 services, 33 counters) with
hundreds of people waiting, at the sizes of the devices they run on, in Georgian first."""

from __future__ import annotations

import collections
import contextlib
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from queue_server.settings import SHIPPED_CONFIG
from tests.pages.browser import launch, serious_violations, with_pages
from tests.support import PASSWORD, LiveServer, test_settings

pytestmark = pytest.mark.browser

BRANCH = "tbilisi"
WAITING_TICKETS = 220
CALLED_TICKETS = 12
TV = {"width": 1920, "height": 1080}
KIOSK = {"width": 1080, "height": 1920}
CONSOLE = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
# A 1080p TV read from 5 m: letters at least 3 % of the screen's height.
READABLE_AT_5M_PX = 32
LIVE_VIEW_MAX_PX = 2_600  # 1366 px wide, 56 services waiting, 33 counters


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch()


class DemoHall(LiveServer):
    """The demo hall's server, knowing how many tickets of each service it was given."""

    issued: collections.Counter[str]


@pytest.fixture(scope="module")
def hall(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoHall]:
    """The demo hall with WAITING_TICKETS people waiting over most of its services, a few
    counters open and CALLED_TICKETS calls made."""
    data = tmp_path_factory.mktemp("demo-hall")
    settings = test_settings(
        f"sqlite+aiosqlite:///{data / 'rigi.sqlite3'}", data, config=SHIPPED_CONFIG
    )
    live = DemoHall(settings)
    with_pages(live).start()
    services = [s for s in live.rigi.catalog.branch_services(BRANCH)]
    weights = [1 + s.popularity for s in services]
    chosen = random.Random(21).choices(
        services, weights=weights, k=WAITING_TICKETS + CALLED_TICKETS
    )
    kiosk = {"Authorization": f"Bearer {live.device_token('kiosk', BRANCH)}"}
    with httpx.Client(base_url=live.url, timeout=30) as client:
        for number, service in enumerate(chosen):
            client.post(
                f"/api/v1/branches/{BRANCH}/tickets",
                json={"service_id": service.id, "language": "ka"},
                headers=kiosk | {"Idempotency-Key": f"demo-{number}"},
            ).raise_for_status()
    with staff(live, "operator") as client:
        counters = [c.id for c in live.rigi.catalog.branch(BRANCH).counters]
        for counter in counters[:CALLED_TICKETS]:
            client.post(f"/api/v1/branches/{BRANCH}/counters/{counter}/open").raise_for_status()
            client.post(f"/api/v1/branches/{BRANCH}/counters/{counter}/call-next")
    live.issued = collections.Counter(s.id for s in chosen)
    yield live
    live.stop()


@contextlib.contextmanager
def staff(live: LiveServer, role: str, branch: str = BRANCH) -> Iterator[httpx.Client]:
    """A signed-in client of `role` at the demo hall (or another branch)."""
    with httpx.Client(base_url=live.url, timeout=30) as client:
        response = client.post(
            "/api/v1/session", json={"username": live.user(role, branch), "password": PASSWORD}
        )
        response.raise_for_status()
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield client


def open_page(browser: Any, viewport: dict[str, int], language: str = "ka") -> Any:
    context = browser.new_context(viewport=viewport, locale=f"{language}-GE")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.js_errors = errors
    return page


def sign_in(page: Any, live: LiveServer, role: str) -> None:
    page.wait_for_selector("#signin")
    page.fill("#username", live.user(role, BRANCH))
    page.fill("#password", PASSWORD)
    page.click("#signin-submit")
    page.wait_for_selector("#signin", state="detached")


def waiting_counts(live: LiveServer) -> dict[str, int]:
    with staff(live, "manager") as client:
        queues = client.get(f"/api/v1/branches/{BRANCH}/queues").json()
    return {q["service_id"]: q["waiting"] for q in queues if q["waiting"]}


def document_height(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollHeight"))


def action_bottoms(page: Any, actions: Iterable[str]) -> dict[str, float | None]:
    """Where each action button ends, read in one go: the console redraws itself on every feed
    message, so measuring button by button can catch one between two renders."""
    return dict(
        page.evaluate(
            """ids => ids.map(id => {
                const box = document.getElementById(`action-${id}`)?.getBoundingClientRect();
                return [id, box && box.height ? box.bottom : null];
            })""",
            list(actions),
        )
    )


@pytest.mark.parametrize("language", ["ka", "en"])
def test_the_lobby_display_fits_a_1080p_tv_with_hundreds_waiting(
    browser: Any, hall: DemoHall, shots: Path, language: str
) -> None:
    from playwright.sync_api import expect

    waiting = waiting_counts(hall)
    assert sum(waiting.values()) >= 200 and len(waiting) > 30
    display = open_page(browser, TV, language)
    token = hall.device_token("display", BRANCH)
    display.goto(f"{hall.url}/display/{BRANCH}?lang={language}&setup={token}")
    expect(display.locator("#connection.live")).to_be_visible()
    expect(display.locator(".big-calls .call")).to_have_count(3)
    expect(display.locator("#hall-pass")).to_be_visible()  # the phones' code, under the calls
    display.screenshot(path=shots / f"display-hall-{language}.png")

    assert document_height(display) <= TV["height"]
    rows = display.locator("#waiting-list li")
    assert rows.count() == len(waiting), "one row per service with people waiting, no others"
    # The rows that do not fit rotate in pages; every waiting service shows on some page.
    pages = int(display.locator("#waiting-list").get_attribute("data-pages"))
    assert pages > 1
    seen: dict[str, int] = {}
    for _ in range(pages):
        for row in display.locator("#waiting-list li:not([hidden])").all():
            box = row.bounding_box()
            assert box is not None and box["y"] + box["height"] <= TV["height"]
            seen[row.get_attribute("data-service")] = int(row.locator(".count").inner_text())
        display.evaluate("window.rigiDisplay.turnPage()")
        assert document_height(display) <= TV["height"]
    assert seen == waiting
    # The calls stay on top, and everything is big enough to read across the hall.
    calls_bottom = display.locator(".now").bounding_box()
    lower_top = display.locator(".lower").bounding_box()
    assert calls_bottom["y"] + calls_bottom["height"] <= lower_top["y"] + 1
    smallest = display.evaluate(
        """() => Math.min(...[...document.querySelectorAll(
            '.waiting-list li:not([hidden]) .name, .call .label, .bar h1')]
            .map(e => parseFloat(getComputedStyle(e).fontSize)))"""
    )
    assert smallest >= READABLE_AT_5M_PX
    assert serious_violations(display) == []
    assert display.js_errors == []
    display.context.close()


def test_a_lobby_screen_can_show_only_its_own_areas(browser: Any, hall: DemoHall) -> None:
    from playwright.sync_api import expect

    catalog = hall.rigi.catalog
    bank_counters = [c.id for c in catalog.branch(BRANCH).counters if c.area == "bank"]
    bank_services = {s for c in bank_counters for s in catalog.profile(BRANCH, c)}
    waiting = {s: n for s, n in waiting_counts(hall).items() if s in bank_services}
    display = open_page(browser, TV)
    token = hall.device_token("display", BRANCH)
    display.goto(f"{hall.url}/display/{BRANCH}?area=bank&setup={token}")
    expect(display.locator("#connection.live")).to_be_visible()
    expect(display.locator("#waiting-list li").first).to_be_visible()  # the snapshot drawn
    shown = display.locator("#waiting-list li").evaluate_all("ls => ls.map(l => l.dataset.service)")
    assert set(shown) == set(waiting) and waiting
    expect(display.locator("#waiting-total")).to_contain_text(str(sum(waiting.values())))
    display.context.close()


MAIN_ACTIONS = ("call-next", "recall", "start", "finish", "no-show", "open", "pause", "close")


def test_the_console_fits_1366x768_and_enables_only_what_is_valid(
    browser: Any, hall: DemoHall, shots: Path
) -> None:
    from playwright.sync_api import expect

    console = open_page(browser, CONSOLE)
    console.goto(f"{hall.url}/console/{BRANCH}?counter=l01")
    sign_in(console, hall, "operator")
    expect(console.locator("#current-label")).to_be_visible()  # l01 called a ticket
    console.screenshot(path=shots / "console-hall-ka.png")
    bottoms = action_bottoms(console, MAIN_ACTIONS)
    assert all(b is not None and b <= CONSOLE["height"] for b in bottoms.values()), bottoms
    assert document_height(console) <= CONSOLE["height"] + 60  # only the shortcuts' summary below

    def enabled() -> set[str]:
        buttons = console.locator(".action:not([disabled])").all()
        return {b.get_attribute("id").removeprefix("action-") for b in buttons}

    assert enabled() == {"recall", "start", "no-show", "recycle", "pause"}
    console.click("#action-start")
    expect(console.locator("#action-finish")).to_be_enabled()
    assert enabled() == {"finish", "transfer", "pause"}
    console.click("#action-finish")
    expect(console.locator("#current-label")).to_have_count(0)
    assert enabled() == {"call-next", "call", "pause", "close"}
    console.click("#action-close")
    expect(console.locator("#action-open")).to_be_enabled()
    assert enabled() == {"open"}
    # A key for an action that is not valid now explains itself instead of failing on the server.
    console.keyboard.press("n")
    expect(console.locator("#error")).to_contain_text("ახლა შეუძლებელია")
    assert serious_violations(console) == []
    assert console.js_errors == []
    console.context.close()


@pytest.mark.parametrize("language", ["en", "ru", "az", "hy"])
def test_the_console_fits_1366x768_in_every_language(
    browser: Any, hall: DemoHall, language: str
) -> None:
    from playwright.sync_api import expect

    console = open_page(browser, CONSOLE, language)
    console.goto(f"{hall.url}/console/{BRANCH}?counter=q02&lang={language}")
    sign_in(console, hall, "operator")
    expect(console.locator("#counter-state")).to_be_visible()
    bottoms = action_bottoms(console, MAIN_ACTIONS)
    assert all(b is not None and b <= CONSOLE["height"] for b in bottoms.values()), bottoms
    assert serious_violations(console) == []
    console.context.close()


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("pirado", "id_card"),  # Georgian typed in Latin letters
        ("pasport", "passport"),
        ("паспорт", "passport"),  # Russian
        ("ID", "id_card"),  # a synonym, not everything with "id" inside
        ("pasprot", "passport"),  # two letters swapped
        ("sexsiyyet vesiqesi", "id_card"),  # Azerbaijani without its diacritics
        ("propiska", "address_registration"),  # an everyday word
        ("удостоверение", "id_card"),
        ("apostili", "apostille"),
    ],
)
def test_kiosk_search_finds_the_right_service_first(
    browser: Any, hall: DemoHall, query: str, first: str
) -> None:
    from playwright.sync_api import expect

    kiosk = open_page(browser, KIOSK)
    kiosk.goto(f"{hall.url}/kiosk/{BRANCH}?setup={hall.device_token('kiosk', BRANCH)}")
    kiosk.fill("#search", query)
    expect(kiosk.locator("#results .service").first).to_have_attribute("data-service", first)
    if query == "ID":
        assert kiosk.locator("#results .service").count() <= 4, "whole words only"
    assert kiosk.js_errors == []
    kiosk.context.close()


def test_kiosk_shows_the_most_used_services_first_on_one_screen(
    browser: Any, hall: DemoHall, shots: Path
) -> None:
    from playwright.sync_api import expect

    kiosk = open_page(browser, KIOSK)
    kiosk.goto(f"{hall.url}/kiosk/{BRANCH}?setup={hall.device_token('kiosk', BRANCH)}")
    tiles = kiosk.locator("#most-used .service")
    expect(tiles).to_have_count(18)
    kiosk.screenshot(path=shots / "kiosk-hall-ka.png")
    assert document_height(kiosk) <= KIOSK["height"]
    shown = [tile.get_attribute("data-service") for tile in tiles.all()]
    top_counts = sorted(hall.issued.values(), reverse=True)[: len(shown)]
    assert [hall.issued[service] for service in shown] == top_counts  # ties in any order
    # Everything else is one touch away, A to Z, and the on-screen keyboard types Georgian.
    kiosk.click("#all-services")
    expect(kiosk.locator("#all .service")).to_have_count(59)
    kiosk.click("#all-services")
    kiosk.click("#keyboard-toggle")
    for letter in "პასპ":
        kiosk.click(f"#keyboard [data-key='{letter}']")
    expect(kiosk.locator("#search")).to_have_value("პასპ")
    expect(kiosk.locator("#results .service").first).to_have_attribute("data-service", "passport")
    kiosk.click("#keyboard [data-layout=cyrillic]")
    kiosk.click("#key-clear")
    expect(kiosk.locator("#keyboard [data-key='ж']")).to_be_visible()
    kiosk.screenshot(path=shots / "kiosk-keyboard-ka.png")
    assert serious_violations(kiosk) == []
    assert kiosk.js_errors == []
    kiosk.context.close()


def test_the_live_view_shows_a_manager_the_floor_by_area_with_totals_and_names(
    browser: Any, hall: DemoHall, shots: Path
) -> None:
    from playwright.sync_api import expect

    waiting = waiting_counts(hall)
    live = open_page(browser, {"width": 1366, "height": 768})
    live.goto(f"{hall.url}/live/{BRANCH}")
    sign_in(live, hall, "manager")
    expect(live.locator("#total-waiting")).to_have_text(str(sum(waiting.values())))
    live.screenshot(path=shots / "live-hall-ka.png")
    rows = live.locator("#queues tbody tr")
    assert rows.count() == len(waiting), "rows only for services with people waiting"
    areas = live.locator("#queues table").evaluate_all("ts => ts.map(t => t.dataset.area)")
    assert len(areas) > 1 and len(set(areas)) == len(areas), "one table per area"
    operators = live.locator("#counters .operator").all_inner_texts()
    assert "operator-tbilisi" in operators and not any(":" in name for name in operators)
    with staff(hall, "manager") as client:
        counters = client.get(f"/api/v1/branches/{BRANCH}/counters").json()
    opened = sum(1 for c in counters if c["state"] == "open")
    expect(live.locator("#total-open")).to_have_text(f"{opened} / {len(counters)}")
    # Was one 4,760 px table of all 59 queues; now one compact row per queue with people waiting.
    assert document_height(live) < LIVE_VIEW_MAX_PX
    assert serious_violations(live) == []
    assert live.js_errors == []
    live.context.close()


def test_an_operator_is_turned_away_from_the_live_view(browser: Any, hall: DemoHall) -> None:
    from playwright.sync_api import expect

    live = open_page(browser, {"width": 1366, "height": 768})
    live.goto(f"{hall.url}/live/{BRANCH}")
    sign_in(live, hall, "operator")
    expect(live.locator("#managers-only")).to_be_visible()
    expect(live.locator("#queues")).to_have_count(0)
    answer = live.reload()
    assert answer.status == 403
    expect(live.locator("#managers-only")).to_be_visible()
    assert live.js_errors == []
    live.context.close()


def test_a_citizens_phone_and_the_start_page_on_the_demo_hall(
    browser: Any, hall: DemoHall, shots: Path
) -> None:
    from playwright.sync_api import expect

    kiosk = {"Authorization": f"Bearer {hall.device_token('kiosk', BRANCH)}"}
    ticket = httpx.post(
        f"{hall.url}/api/v1/branches/{BRANCH}/tickets",
        json={"service_id": "passport", "language": "ka"},
        headers=kiosk,
        timeout=30,
    ).json()
    phone = open_page(browser, PHONE)
    phone.goto(f"{hall.url}/t/{ticket['id']}")
    expect(phone.locator("#ticket-number")).to_have_text(ticket["label"])
    expect(phone.locator("#people-ahead")).to_have_text(str(ticket["people_ahead"]))
    phone.screenshot(path=shots / "ticket-hall-ka.png")
    assert serious_violations(phone) == []
    start = open_page(browser, CONSOLE)
    start.goto(f"{hall.url}/")
    expect(start.locator(".branch-item")).to_have_count(86)
    start.fill("#branch-search", "შაშიან")
    expect(start.locator(".branch-item")).to_have_count(1)
    start.fill("#branch-search", "")
    start.screenshot(path=shots / "start-ka.png")
    assert serious_violations(start) == []
    assert phone.js_errors == [] and start.js_errors == []
    phone.context.close()
    start.context.close()
