"""The reports page in real Chromium: a manager signs in, asks for the week of the hand-built
day, reads its figures, downloads the CSV and the workbook; axe finds nothing serious in
Georgian and English."""

from __future__ import annotations

import asyncio
import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.pages.browser import launch, serious_violations
from tests.support import PASSWORD, LiveServer, test_settings
from tests.test_reports import BRANCH, DAY, Clock, _hand_built_day, _wait_until_projected

SHOTS = os.environ.get("RIGI_SCREENSHOTS")  # a folder to keep screenshots in, when set


@pytest.fixture
def day_server(tmp_path: Path) -> Iterator[tuple[LiveServer, Clock]]:
    clock = Clock()
    settings = test_settings(f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}", tmp_path)
    server = LiveServer(settings, clock=clock).start()
    yield server, clock
    server.stop()


def test_a_manager_reads_last_weeks_report_and_downloads_both_files(
    day_server: tuple[LiveServer, Clock], tmp_path: Path
) -> None:
    from playwright.sync_api import expect  # here: without Chromium, launch() skips the test

    server, clock = day_server
    asyncio.run(_hand_built_day(server, clock))
    _wait_until_projected(server)
    username = server.user("manager")
    for browser in launch():
        for language in ("ka", "en"):
            page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page.goto(f"{server.url}/reports/{BRANCH}?lang={language}")
            page.fill("#username", username)
            page.fill("#password", PASSWORD)
            page.click("#signin-submit")
            # Signed in, the page shows the last seven days (empty) in place of the form: wait
            # for that, or it can land after the week asked for below and be the one read.
            page.wait_for_selector("#signin-submit", state="detached")
            page.fill("#f-from", "2026-02-24")
            page.fill("#f-to", DAY)
            page.click("#show")
            kpis = page.locator("section[aria-labelledby=h-kpis] tbody tr")
            expect(kpis.first.locator("td").nth(1)).to_have_text("6")  # visits
            assert page.locator(".chart canvas").count() == 2
            assert page.locator(".heat").count() == 7  # one hour (09:00) × seven weekdays
            page.wait_for_selector("#fairness-table")  # the last day's fairness ledger, by hour
            assert page.locator("#fairness-table tbody tr").count() >= 1
            if SHOTS:
                page.screenshot(path=f"{SHOTS}/reports-{language}.png", full_page=True)
            assert serious_violations(page) == [], language
            if language == "en":
                with page.expect_download() as csv_download:
                    page.click("section[aria-labelledby=h-services] a.download")
                text = Path(csv_download.value.path()).read_text()
                rows = list(csv.DictReader(io.StringIO(text)))
                assert sorted((r["service_id"], r["visits"]) for r in rows) == [
                    ("id_card", "2"),
                    ("passport", "2"),
                    ("stamp", "2"),
                ]
                with page.expect_download() as workbook_download:
                    page.click("#results > p > a.download")
                assert workbook_download.value.suggested_filename.endswith(".xlsx")
                content = Path(workbook_download.value.path()).read_bytes()
                book = load_workbook(io.BytesIO(content), read_only=True)
                figures = {row[0]: row[1] for row in book["kpis"].iter_rows(values_only=True)}
                assert (figures["visits"], figures["served"], figures["no_show"]) == (6, 2, 1)
            page.close()
