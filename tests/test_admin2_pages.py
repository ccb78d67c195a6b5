"""The people and devices pages in real headless Chromium: a manager adds an operator, limits
the counters they may take, resets their password and disables them; creates a kiosk and sets
it up from the link the page shows (with its QR code); a person whose password was reset must
choose a new one on the page first. axe-core finds no serious or critical violation, in
Georgian and English."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.pages.browser import serious_violations
from tests.support import PASSWORD, LiveServer

pytestmark = pytest.mark.browser
NEW_OPERATOR = "tamar"
NEW_PASSWORD = "violet harbour tractor 91"


def _sign_in(page: Any, username: str, password: str = PASSWORD) -> None:
    page.wait_for_selector("#signin")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#signin-submit")
    page.wait_for_selector("#signin", state="detached")


def _page(browser: Any) -> tuple[Any, list[str]]:
    page = browser.new_context(locale="ka-GE").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page, errors


def test_a_manager_adds_limits_resets_and_disables_an_operator(
    browser: Any, server: LiveServer
) -> None:
    from playwright.sync_api import expect

    page, errors = _page(browser)
    page.goto(f"{server.url}/admin/people?lang=en")
    _sign_in(page, server.user("manager"))
    expect(page.locator("h1")).to_have_text("People")
    page.fill("#new-username", NEW_OPERATOR)
    page.fill("#new-password", PASSWORD)
    page.click("#add-submit")
    expect(page.locator("#notice")).to_have_text(f"{NEW_OPERATOR} was added.")
    row = page.locator(f'tr[data-username="{NEW_OPERATOR}"]')
    expect(row).to_contain_text("Operator")
    expect(row).to_contain_text("Any counter of the branch")
    assert serious_violations(page) == []

    row.locator("summary").click()
    row.get_by_label("Counter 2").check()
    row.locator('[data-action="save-counters"]').click()
    expect(page.locator("#notice")).to_have_text(f"{NEW_OPERATOR}'s counters were saved.")
    expect(row).to_contain_text("Counters: c02")

    row.locator('[data-action="reset"]').click()
    expect(page.locator("#notice")).to_contain_text(f"One-time password for {NEW_OPERATOR}: ")
    one_time = re.search(r": (\S+) —", page.locator("#notice").inner_text())
    assert one_time is not None
    expect(row).to_contain_text("Must choose a new password")

    # the operator signs in with it: the page asks for a new password before anything else
    operator, operator_errors = _page(browser)
    operator.goto(f"{server.url}/admin/devices?lang=en")
    _sign_in(operator, NEW_OPERATOR, one_time.group(1))
    operator.wait_for_selector("#choose-password")
    assert serious_violations(operator) == []
    operator.fill("#old-password", one_time.group(1))
    operator.fill("#chosen-password", NEW_PASSWORD)
    operator.click("#choose-password-submit")
    expect(operator.locator("#choose-password")).to_have_count(0)
    expect(operator.locator("#error")).to_be_visible()  # an operator may not manage devices
    assert operator_errors == []

    page.reload()
    expect(row).to_contain_text("Active")
    row.locator('[data-action="disable"]').click()
    expect(page.locator("#notice")).to_have_text(
        f"{NEW_OPERATOR} was disabled; all their sessions have ended."
    )
    expect(row).to_contain_text("Disabled")

    page.goto(f"{server.url}/admin/people?lang=ka")
    expect(page.locator("h1")).to_have_text("თანამშრომლები")
    expect(page.locator(f'tr[data-username="{NEW_OPERATOR}"]')).to_contain_text("გათიშული")
    assert serious_violations(page) == []
    assert errors == []


def test_a_manager_creates_a_kiosk_and_sets_it_up_from_the_link(
    browser: Any, server: LiveServer
) -> None:
    from playwright.sync_api import expect

    page, errors = _page(browser)
    page.goto(f"{server.url}/admin/devices?lang=en")
    _sign_in(page, server.user("manager"))
    expect(page.locator("#empty")).to_have_text("This branch has no devices yet.")
    assert serious_violations(page) == []
    page.select_option("#device-role", "kiosk")
    page.fill("#device-name", "Entrance kiosk")
    page.click("#device-submit")
    expect(page.locator("#created-title")).to_have_text("Entrance kiosk was created")
    qr = page.locator("#setup-qr")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.naturalWidth") > 0
    link = page.locator("#setup-link").get_attribute("href")
    assert link is not None and "/kiosk/testhall?setup=rigi_" in link
    row = page.locator('tr[data-name="Entrance kiosk"]')
    expect(row).to_contain_text("Not yet")
    assert serious_violations(page) == []

    kiosk, kiosk_errors = _page(browser)
    kiosk.goto(link)
    expect(kiosk).to_have_url(re.compile(r"/kiosk/testhall$"))  # the token left the address
    kiosk.wait_for_selector(".service, button", timeout=20_000)
    assert kiosk.evaluate("Object.keys(localStorage).some(k => k.startsWith('rigi.device-token'))")
    page.click("#created-done")
    page.reload()
    expect(row).not_to_contain_text("Not yet")  # the kiosk was seen

    page.goto(f"{server.url}/admin/devices?lang=ka")
    expect(page.locator("h1")).to_have_text("მოწყობილობები")
    row.locator('[data-action="revoke"]').click()
    expect(row).to_contain_text("გაუქმებულია")
    assert serious_violations(page) == []
    assert errors == []
    assert kiosk_errors == []
