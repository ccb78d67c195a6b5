"""The floor's new parts in real headless Chromium against a real server: the citizen's phone
asks for a rating once the visit is finished, the kiosk says "not served now" instead of a
wait of 0 min, and the managers' live view shows a call a display could not speak. axe-core
finds nothing serious on any of them, in Georgian and in English."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.pages.browser import serious_violations
from tests.support import PASSWORD, LiveServer

pytestmark = pytest.mark.browser

BRANCH = "testhall"
B = f"/api/v1/branches/{BRANCH}"
PHONE = {"width": 390, "height": 844}
KIOSK = {"width": 1080, "height": 1920}
SCREEN = {"width": 1366, "height": 768}
COMMENT = "Quick and friendly."


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests leave screenshots (RIGI_SCREENSHOTS, or a tmp dir)."""
    wanted = os.environ.get("RIGI_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        return Path(wanted)
    return tmp_path_factory.mktemp("screenshots")


def _page(browser: Any, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport, locale="ka-GE")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.js_errors = errors
    return page


@contextlib.contextmanager
def _client(server: LiveServer, role: str) -> Iterator[httpx.Client]:
    """A synchronous client acting as a device (token) or a person (signed in)."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        if role in ("kiosk", "display"):
            client.headers["Authorization"] = f"Bearer {server.device_token(role)}"
        else:
            response = client.post(
                "/api/v1/session", json={"username": server.user(role), "password": PASSWORD}
            )
            response.raise_for_status()
            client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield client


def _finished_ticket(server: LiveServer) -> str:
    with _client(server, "kiosk") as kiosk, _client(server, "operator") as operator:
        ticket = kiosk.post(f"{B}/tickets", json={"service_id": "id_card"}).json()
        operator.post(f"{B}/counters/c02/open").raise_for_status()
        assert operator.post(f"{B}/counters/c02/call-next").json()["id"] == ticket["id"]
        operator.post(f"{B}/counters/c02/start").raise_for_status()
        operator.post(f"{B}/counters/c02/finish", json={"outcome": "served"}).raise_for_status()
    return str(ticket["id"])


def test_the_phone_asks_for_a_rating_once_the_visit_is_finished(
    browser: Any, server: LiveServer, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    ticket_id = _finished_ticket(server)
    for language in ("ka", "en"):
        page = _page(browser, PHONE)
        page.goto(f"{server.url}/t/{ticket_id}?lang={language}")
        expect(page.locator("#feedback legend")).to_be_visible()
        assert page.locator("#feedback-send").is_disabled(), "no rating chosen yet"
        page.screenshot(path=screenshots / f"feedback-{language}.png", full_page=True)
        assert serious_violations(page) == [], language
        page.context.close()

    page = _page(browser, PHONE)
    page.goto(f"{server.url}/t/{ticket_id}?lang=en")
    expect(page.locator("#feedback-hint")).to_contain_text("no names")
    page.locator(".stars label").nth(3).click()  # 4 of 5
    page.fill("#feedback-comment", COMMENT)
    page.click("#feedback-send")
    expect(page.locator("#feedback-thanks")).to_have_text("Thank you for your rating.")
    assert serious_violations(page) == []
    page.reload()
    expect(page.locator("#feedback-thanks")).to_be_visible()
    assert page.js_errors == []
    page.context.close()

    # Another phone (or a cleared browser) is told by the server that the visit is rated.
    other = _page(browser, PHONE)
    other.goto(f"{server.url}/t/{ticket_id}?lang=en")
    other.locator(".stars label").nth(0).click()
    other.click("#feedback-send")
    expect(other.locator("#feedback-thanks")).to_be_visible()
    other.context.close()
    with _client(server, "manager") as manager:
        summary = manager.get(f"{B}/feedback").json()
    assert (summary["ratings"], summary["mean"]) == (1, 4.0)


def test_the_kiosk_says_not_served_now_instead_of_zero_minutes(
    browser: Any, server: LiveServer, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    with _client(server, "operator") as operator:
        operator.post(f"{B}/counters/c02/open").raise_for_status()  # id cards and stamps
    setup = server.device_token("kiosk")
    for language, words in (("ka", "ამჟამად"), ("en", "No open counter serves this now")):
        page = _page(browser, KIOSK)
        page.goto(f"{server.url}/kiosk/{BRANCH}?lang={language}&setup={setup}")
        passport = page.locator("[data-service=passport]").first
        expect(passport.locator(".not-served")).to_be_visible()
        if language == "en":
            expect(passport.locator(".not-served")).to_have_text(words)
        expect(page.locator("[data-service=id_card] .not-served")).to_have_count(0)
        assert serious_violations(page) == [], language
        page.screenshot(path=screenshots / f"kiosk-not-served-{language}.png")
        page.context.close()

    page = _page(browser, KIOSK)
    page.goto(f"{server.url}/kiosk/{BRANCH}?lang=en&setup={setup}")
    page.locator("[data-service=passport]").first.click()
    expect(page.locator("#ticket-number")).to_be_visible()
    expect(page.locator("#wait")).to_have_text("No open counter serves this now")
    assert "0 min" not in page.locator("#wait").inner_text()
    assert serious_violations(page) == []
    assert page.js_errors == []
    page.context.close()


def test_a_redraw_from_the_server_leaves_the_kiosk_search_box_as_the_citizen_left_it(
    browser: Any, server: LiveServer
) -> None:
    """News from the server (here an organisation change; a snapshot, the services served now)
    redraws the kiosk's screen while a citizen may be typing: the search box keeps its focus,
    text and selection, so a keystroke replacing the selected text replaces it. Before, the box
    lost its focus (the keystroke went nowhere) or its selection (added to the old text)."""
    from playwright.sync_api import expect

    page = _page(browser, KIOSK)
    page.goto(f"{server.url}/kiosk/{BRANCH}?setup={server.device_token('kiosk')}")
    page.fill("#search", "registry")
    expect(page.locator("[data-service=stamp]")).to_be_visible()
    page.evaluate("() => { window.typedIn = document.getElementById('search'); typedIn.select(); }")
    with _client(server, "manager") as manager:
        offered = [service["id"] for service in manager.get(B).json()["services"]]
        manager.post(f"{B}/organisation", json={"offers": offered}).raise_for_status()
    page.wait_for_function("() => document.getElementById('search') !== window.typedIn")
    page.keyboard.insert_text("zzz")
    assert page.input_value("#search") == "zzz"
    expect(page.locator(".empty")).to_be_visible()
    assert page.evaluate("() => document.activeElement.id") == "search"
    assert page.js_errors == []
    page.context.close()


def test_the_live_view_alerts_managers_to_a_call_no_display_spoke(
    browser: Any, server: LiveServer, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    def report() -> None:
        """What display_client sends when espeak-ng wrote no audio, on a real connection (the
        synchronous client: Playwright's sync API already runs a loop in this thread)."""
        token = server.device_token("display", name="Lobby TV")
        with connect(f"{server.ws_url}/ws/branches/{BRANCH}/board") as board:
            board.send(json.dumps({"type": "hello", "token": token}))
            board.recv(timeout=10)  # the snapshot
            board.send(json.dumps({
                "type": "report", "code": "speech_failed", "message": "no audio",
                "call": {"letter": "B", "number": 7, "counter_number": 3, "seq": 4},
            }))  # fmt: skip
            while json.loads(board.recv(timeout=10)).get("kind") != "display.unspoken":
                pass

    for language in ("ka", "en"):
        page = _page(browser, SCREEN)
        page.goto(f"{server.url}/live/{BRANCH}?lang={language}")
        page.wait_for_selector("#signin")
        page.fill("#username", server.user("manager"))
        page.fill("#password", PASSWORD)
        page.click("#signin-submit")
        page.wait_for_selector("#signin", state="detached")
        if language == "ka":
            expect(page.locator("#total-waiting")).to_be_visible()
            report()
        alert = page.locator("[data-unspoken=B007]")
        expect(alert).to_be_visible(timeout=15_000)
        if language == "en":
            expect(alert).to_contain_text("display Lobby TV could not speak the call B007")
            expect(alert).to_contain_text("counter 3")
        assert serious_violations(page) == [], language
        page.screenshot(path=screenshots / f"live-unspoken-{language}.png")
        assert page.js_errors == []
        page.context.close()


def test_the_branch_report_shows_the_mean_rating_per_service(
    browser: Any, server: LiveServer, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    for rating in (5, 2):
        ticket_id = _finished_ticket(server)
        httpx.post(
            f"{server.url}/api/v1/tickets/{ticket_id}/feedback",
            json={"rating": rating, "comment": COMMENT},
            timeout=10,
        ).raise_for_status()
    for language in ("ka", "en"):
        page = _page(browser, SCREEN)
        page.goto(f"{server.url}/reports/{BRANCH}?lang={language}")
        page.fill("#username", server.user("manager"))
        page.fill("#password", PASSWORD)
        page.click("#signin-submit")
        rows = page.locator("#ratings tbody tr")
        expect(rows).to_have_count(2)  # id cards, then the total
        assert rows.nth(0).locator("td").all_inner_texts()[1:] == ["2", "3.50"]
        assert rows.nth(1).locator("td").all_inner_texts() == ["2", "3.50"]
        assert COMMENT not in page.content(), "comments are not shown in reports"
        assert serious_violations(page) == [], language
        page.screenshot(path=screenshots / f"reports-ratings-{language}.png", full_page=True)
        assert page.js_errors == []
        page.context.close()
