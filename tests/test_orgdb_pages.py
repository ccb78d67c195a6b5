"""In real headless Chromium: a kiosk that is already open shows a service its branch manager
has just enabled, without a reload (issue #14), and keeps the page it had."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support import PASSWORD, LiveServer

pytestmark = pytest.mark.browser

BRANCH = "testhall"
B = f"/api/v1/branches/{BRANCH}"
KIOSK = {"width": 1080, "height": 1920}


def _manager(server: LiveServer) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=10)
    response = client.post(
        "/api/v1/session", json={"username": server.user("manager"), "password": PASSWORD}
    )
    response.raise_for_status()
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


def test_the_open_kiosk_shows_a_service_the_manager_just_enabled(
    browser: Any, server: LiveServer
) -> None:
    from playwright.sync_api import expect

    manager = _manager(server)
    try:
        manager.post(f"{B}/organisation", json={"offers": ["stamp"]}).raise_for_status()
        setup = server.device_token("kiosk")
        context = browser.new_context(viewport=KIOSK, locale="ka-GE")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{server.url}/kiosk/{BRANCH}?lang=en&setup={setup}")
        expect(page.locator("[data-service=stamp]").first).to_be_visible()
        expect(page.locator("[data-service=id_card]")).to_have_count(0)
        page.evaluate("window.sameDocument = true")  # gone if the page reloads

        response = manager.post(f"{B}/organisation", json={"offers": ["stamp", "id_card"]})
        response.raise_for_status()
        expect(page.locator("[data-service=id_card]").first).to_be_visible(timeout=10_000)
        assert page.evaluate("window.sameDocument") is True
        assert errors == []
        context.close()
    finally:
        manager.close()


def test_a_lobby_screen_shows_the_services_its_manager_chose_for_it(
    browser: Any, server: LiveServer
) -> None:
    from playwright.sync_api import expect

    manager = _manager(server)
    try:
        screens = [{"id": "s1", "name": "By the stamps", "services": ["stamp"]}]
        manager.post(f"{B}/organisation", json={"screens": screens}).raise_for_status()
        for service in ("stamp", "passport"):
            manager.post(f"{B}/tickets", json={"service_id": service}).raise_for_status()
        setup = server.device_token("display")
        context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="ka-GE")
        page = context.new_page()
        page.goto(f"{server.url}/display/{BRANCH}?lang=en&setup={setup}&screen=s1")
        expect(page.locator(".waiting-list [data-service=stamp] .count")).to_have_text("1")
        expect(page.locator(".waiting-list [data-service=passport]")).to_have_count(0)
        screens[0]["services"] = ["stamp", "passport"]  # the open screen follows the edit
        manager.post(f"{B}/organisation", json={"screens": screens}).raise_for_status()
        expect(page.locator(".waiting-list [data-service=passport] .count")).to_have_text("1")
        context.close()
    finally:
        manager.close()


def test_the_kiosk_shows_what_to_bring_and_the_online_link_with_the_ticket(
    browser: Any, server: LiveServer
) -> None:
    from playwright.sync_api import expect

    admin = httpx.Client(base_url=server.url, timeout=10)
    try:
        response = admin.post(
            "/api/v1/session", json={"username": server.user("admin"), "password": PASSWORD}
        )
        response.raise_for_status()
        admin.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        stamp = {
            "agency": "napr", "letter": "S", "target_wait_min": 10, "service_time_min": 3,
            "category": "quick", "name": {"ka": "ამონაწერი", "en": "Registry extract"},
            "documents": [{"ka": "პირადობის მოწმობა", "en": "Your ID card"}],
            "online_url": "https://napr.gov.ge",
        }  # fmt: skip
        admin.post("/api/v1/services/stamp", json=stamp).raise_for_status()
        context = browser.new_context(viewport=KIOSK, locale="ka-GE")
        page = context.new_page()
        page.goto(f"{server.url}/kiosk/{BRANCH}?lang=en&setup={server.device_token('kiosk')}")
        page.locator("[data-service=stamp]").first.click()
        expect(page.locator("#ticket-number")).to_be_visible()
        expect(page.locator("#documents li")).to_have_text(["Your ID card"])
        expect(page.locator("#online")).to_contain_text("https://napr.gov.ge")
        context.close()
    finally:
        admin.close()


def test_an_open_console_offers_a_counter_the_manager_just_added(
    browser: Any, server: LiveServer
) -> None:
    from playwright.sync_api import expect

    manager = _manager(server)
    try:
        console = browser.new_page(locale="ka-GE")
        errors: list[str] = []
        console.on("pageerror", lambda error: errors.append(str(error)))
        console.goto(f"{server.url}/console/{BRANCH}?lang=en")
        console.fill("#username", server.user("operator"))
        console.fill("#password", PASSWORD)
        console.click("#signin-submit")
        console.select_option("#counter", "c01")  # its counter feed is what tells the console
        expect(console.locator("#counter-state")).to_contain_text("Counter 1")
        expect(console.locator("#counter option[value=c99]")).to_have_count(0)
        console.evaluate("window.sameDocument = true")  # gone if the page reloads

        counters = manager.get(f"{B}/organisation").json()["branch"]["counters"]
        added = {"id": "c99", "number": 99, "area": counters[0]["area"], "serves": {"*": 1}}
        response = manager.post(f"{B}/organisation", json={"counters": [*counters, added]})
        response.raise_for_status()
        expect(console.locator("#counter option[value=c99]")).to_have_count(1, timeout=10_000)
        assert console.evaluate("window.sameDocument") is True
        assert console.locator("#counter").input_value() == "c01"
        assert errors == []
    finally:
        manager.close()
