"""The administration pages in real headless Chromium: a manager reads their branch's audit
trail, filters it and downloads it as CSV; an operator's console says so when a manager takes
its counter over. axe-core finds no serious or critical violation, in Georgian and English."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.pages.browser import serious_violations
from tests.support import PASSWORD, LiveServer

pytestmark = pytest.mark.browser
B = "/api/v1/branches/testhall"


@contextlib.contextmanager
def _client(server: LiveServer, role: str) -> Iterator[httpx.Client]:
    """A synchronous client signed in as the branch's `role`."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.post(
            "/api/v1/session", json={"username": server.user(role), "password": PASSWORD}
        )
        response.raise_for_status()
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield client


def _sign_in(page: Any, server: LiveServer, role: str) -> None:
    page.wait_for_selector("#signin")
    page.fill("#username", server.user(role))
    page.fill("#password", PASSWORD)
    page.click("#signin-submit")
    page.wait_for_selector("#signin", state="detached")


def test_a_manager_reads_filters_and_downloads_the_audit_trail(
    browser: Any, server: LiveServer
) -> None:
    from playwright.sync_api import expect

    with _client(server, "operator") as operator:
        for step in ("open", "close"):
            operator.post(f"{B}/counters/c01/{step}").raise_for_status()
    page = browser.new_context(locale="ka-GE").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server.url}/admin/audit?lang=en")
    _sign_in(page, server, "manager")
    rows = page.locator("#entries tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("counter.closed")
    expect(rows.first).to_contain_text("operator:operator-testhall")
    assert serious_violations(page) == []

    page.select_option("#filter-kind", "counter")
    page.fill("#filter-person", "nobody")
    page.click("#apply")
    expect(page.locator("#empty")).to_be_visible()
    href = page.locator("#csv").get_attribute("href")
    assert href == "/api/v1/audit.csv?person=nobody&kind=counter"
    page.fill("#filter-person", "operator-testhall")
    page.click("#apply")
    expect(rows).to_have_count(2)
    with page.expect_download() as download:
        page.click("#csv")
    text = Path(download.value.path()).read_text("utf-8-sig")
    assert text.splitlines()[0].startswith("at,branch,actor,role,person")
    assert len(text.splitlines()) == 3

    page.goto(f"{server.url}/admin/audit?lang=ka")
    expect(page.locator("h1")).to_have_text("აუდიტის ჟურნალი")
    expect(rows).to_have_count(2)
    assert serious_violations(page) == []
    assert errors == []


def test_the_console_says_when_a_manager_takes_its_counter_over(
    browser: Any, server: LiveServer
) -> None:
    from playwright.sync_api import expect

    console = browser.new_context(locale="ka-GE").new_page()
    console.goto(f"{server.url}/console/testhall?lang=en")
    _sign_in(console, server, "operator")
    console.select_option("#counter", "c01")
    console.click("#action-open")
    expect(console.locator("#counter-state")).to_have_text("Counter 1: open")
    with _client(server, "manager") as manager:
        manager.post(f"{B}/counters/c01/take-over").raise_for_status()
    expect(console.locator("#error")).to_have_text(
        "manager-testhall has taken over this counter. Choose another counter or ask them."
    )
