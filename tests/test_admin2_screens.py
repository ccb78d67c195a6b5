"""The people and devices pages on the demo hall (the shipped config/: Tbilisi, 33 counters) at
a manager's desktop size, with a dozen operators and a few devices, in Georgian and English:
nothing overflows sideways and axe-core finds no serious or critical violation. With
RIGI_SCREENSHOTS=docs/screenshots the screenshots for docs/admin.md are saved there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from queue_server.access.principal import Role
from queue_server.settings import SHIPPED_CONFIG
from tests.pages.browser import serious_violations, with_pages
from tests.support import PASSWORD, LiveServer, test_settings

pytestmark = pytest.mark.browser
BRANCH = "tbilisi"
DESKTOP = {"width": 1366, "height": 768}
OPERATORS = ("nino", "giorgi", "tamar", "levan", "ana", "davit", "mariam", "irakli", "salome",
             "luka", "elene", "sandro")  # fmt: skip
DEVICES = ((Role.KIOSK, "Kiosk by the entrance"), (Role.KIOSK, "Kiosk, 2nd floor"),
           (Role.DISPLAY, "Lobby TV 1"), (Role.DISPLAY, "Lobby TV 2"),
           (Role.PRINTER, "Printer PC, entrance"))  # fmt: skip


@pytest.fixture(scope="module")
def hall(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("admin-hall")
    settings = test_settings(
        f"sqlite+aiosqlite:///{data / 'rigi.sqlite3'}", data, config=SHIPPED_CONFIG
    )
    live = with_pages(LiveServer(settings)).start()
    live.user("manager", BRANCH)
    for name in OPERATORS:
        live.user("operator", BRANCH, name)
    for role, name in DEVICES:
        live.run(live.rigi.accounts.create_device(BRANCH, role, name, by="manager:demo"))
    yield live
    live.stop()


def _signed_in(browser: Any, hall: LiveServer, path: str) -> Any:
    page = browser.new_context(viewport=DESKTOP, locale="ka-GE").new_page()
    page.goto(f"{hall.url}{path}")
    page.wait_for_selector("#signin")
    page.fill("#username", f"manager-{BRANCH}")
    page.fill("#password", PASSWORD)
    page.click("#signin-submit")
    page.wait_for_selector("#signin", state="detached")
    return page


@pytest.mark.parametrize("language", ["ka", "en"])
def test_the_people_page_on_the_demo_hall(
    browser: Any, hall: LiveServer, shots: Path, language: str
) -> None:
    page = _signed_in(browser, hall, f"/admin/people?lang={language}")
    page.wait_for_selector("#people tbody tr")
    assert page.locator("#people tbody tr").count() == len(OPERATORS) + 1  # and the manager
    first = page.locator(f'tr[data-username="{OPERATORS[0]}"]')
    first.locator("summary").click()
    assert first.locator("input[type=checkbox]").count() == 33
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    assert serious_violations(page) == []
    page.screenshot(path=shots / f"admin-people-{language}.png", full_page=True)


@pytest.mark.parametrize("language", ["ka", "en"])
def test_the_devices_page_on_the_demo_hall(
    browser: Any, hall: LiveServer, shots: Path, language: str
) -> None:
    page = _signed_in(browser, hall, f"/admin/devices?lang={language}")
    page.wait_for_selector("#devices tbody tr")
    assert page.locator("#devices tbody tr").count() >= len(DEVICES)
    page.select_option("#device-role", "kiosk")
    page.fill("#device-name", f"Kiosk by the lifts ({language})")
    page.click("#device-submit")
    page.wait_for_selector("#setup-qr")
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    assert serious_violations(page) == []
    page.screenshot(path=shots / f"admin-devices-{language}.png", full_page=True)


@pytest.mark.parametrize("language", ["ru", "az", "hy"])
@pytest.mark.parametrize(
    ("path", "filled"),
    [("people", "#people tbody tr"), ("devices", "#devices tbody tr"), ("audit", "#entries")],
)
def test_the_admin_pages_in_the_other_three_languages(
    browser: Any, hall: LiveServer, language: str, path: str, filled: str
) -> None:
    page = _signed_in(browser, hall, f"/admin/{path}?lang={language}")
    page.wait_for_selector(filled)
    assert page.evaluate("document.documentElement.lang") == language
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    assert serious_violations(page) == []
    page.context.close()
