"""The branch page and the services page on the demo hall (the shipped config/: Tbilisi, 33
counters, 59 services) at a manager's desktop size, in Georgian and English: a manager changes a
counter's work profile and the branch's hours in the page, a refused edit names its field, and
axe-core finds no serious or critical violation. With RIGI_SCREENSHOTS=docs/screenshots the
screenshots for docs/admin.md are saved there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from queue_server.settings import SHIPPED_CONFIG
from tests.pages.browser import serious_violations, with_pages
from tests.support import PASSWORD, LiveServer, test_settings

pytestmark = pytest.mark.browser
BRANCH = "tbilisi"
DESKTOP = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def hall(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("orgdb-hall")
    settings = test_settings(
        f"sqlite+aiosqlite:///{data / 'rigi.sqlite3'}", data, config=SHIPPED_CONFIG
    )
    live = with_pages(LiveServer(settings)).start()
    live.user("manager", BRANCH)
    live.user("admin", BRANCH)
    yield live
    live.stop()


def _signed_in(browser: Any, hall: LiveServer, path: str, username: str) -> Any:
    page = browser.new_context(viewport=DESKTOP, locale="ka-GE").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.js_errors = errors
    page.goto(f"{hall.url}{path}")
    page.wait_for_selector("#signin")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#signin-submit")
    page.wait_for_selector("#signin", state="detached")
    return page


def test_a_manager_changes_a_work_profile_and_the_hours_in_the_branch_page(
    browser: Any, hall: LiveServer
) -> None:
    page = _signed_in(browser, hall, "/admin/branch?lang=en", f"manager-{BRANCH}")
    page.wait_for_selector("#counters tbody tr")
    assert page.locator("#counters tbody tr").count() == 33

    page.fill("#profile-q02", "passport: 3, psda: 1")
    page.locator('tr[data-counter="q02"] [data-action=save-profile]').click()
    page.wait_for_selector("#saved[data-what=profile]")
    assert hall.rigi.catalog.counter(BRANCH, "q02").serves == {"passport": 3.0, "psda": 1.0}

    page.fill("#mon-opens", "09:00")
    page.fill("#mon-closes", "13:00")
    page.fill("#mon-opens2", "14:00")
    page.fill("#mon-closes2", "18:00")
    page.fill("#holidays", "2027-01-01\n2027-01-07")
    page.click("#save-hours")
    page.wait_for_selector("#saved[data-what=hours]")
    branch = hall.rigi.catalog.branch(BRANCH)
    assert [(p.opens, p.closes) for p in branch.hours["mon"]] == [
        ("09:00", "13:00"), ("14:00", "18:00"),
    ]  # fmt: skip
    assert [d.isoformat() for d in branch.holidays] == ["2027-01-01", "2027-01-07"]

    version = hall.rigi.catalog.version
    page.fill("#tue-opens", "09:00")
    page.fill("#tue-closes", "13:00")
    page.fill("#tue-opens2", "12:00")
    page.fill("#tue-closes2", "18:00")
    page.click("#save-hours")
    page.wait_for_selector("#error-fields")
    assert "branches.tbilisi.hours.tue" in page.locator("#error-fields").inner_text()
    assert hall.rigi.catalog.version == version
    assert page.js_errors == []
    page.context.close()


@pytest.mark.parametrize("language", ["ka", "en"])
def test_the_branch_page_on_the_demo_hall(
    browser: Any, hall: LiveServer, shots: Path, language: str
) -> None:
    page = _signed_in(browser, hall, f"/admin/branch?lang={language}", f"manager-{BRANCH}")
    page.wait_for_selector("#counters tbody tr")
    assert page.locator("#offers-form input[name=offer]").count() == 59
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    assert serious_violations(page) == []
    page.screenshot(path=shots / f"admin-branch-{language}.png")
    assert page.js_errors == []
    page.context.close()


@pytest.mark.parametrize("language", ["ka", "en"])
def test_the_services_page_on_the_demo_hall(
    browser: Any, hall: LiveServer, shots: Path, language: str
) -> None:
    page = _signed_in(browser, hall, f"/admin/services?lang={language}", "admin-tbilisi")
    page.wait_for_selector("#services tbody tr")
    assert page.locator("#services tbody tr").count() == 59
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    assert serious_violations(page) == []
    page.screenshot(path=shots / f"admin-services-{language}.png")
    assert page.js_errors == []
    page.context.close()


@pytest.mark.parametrize("language", ["ru", "az", "hy"])
@pytest.mark.parametrize(
    ("path", "user", "filled"),
    [
        ("/admin/branch", "manager", "#counters tbody tr"),
        ("/admin/services", "admin", "#services tbody tr"),
        ("/national", "admin", "tr.branch-row"),
        ("/book", None, "[data-branch]"),
        ("/room/cc01-shashiani", None, "[data-day]"),
    ],
)
def test_the_newest_pages_in_the_other_three_languages(
    browser: Any, hall: LiveServer, language: str, path: str, user: str | None, filled: str
) -> None:
    # ka and en are checked with each page's own test; here axe, the page's language and the
    # width in Russian, Azerbaijani and Armenian (the staff pages at a desk, the citizens' on a
    # phone)
    glue = "&" if "?" in path else "?"
    if user is None:
        page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
        page.goto(f"{hall.url}{path}{glue}lang={language}")
        width = 390
    else:
        page = _signed_in(browser, hall, f"{path}{glue}lang={language}", f"{user}-{BRANCH}")
        width = DESKTOP["width"] if path != "/national" else 10_000  # a wall screen's page
    page.wait_for_selector(filled)
    assert page.evaluate("document.documentElement.lang") == language
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert serious_violations(page) == []
    page.context.close()
