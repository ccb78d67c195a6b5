"""A centre's manager sees, on the node's live view, that the link to central is down and how
many events wait to be sent, in Georgian first; the page stays accessible (real Chromium)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.pages.browser import serious_violations, with_pages
from tests.support import LiveServer, free_port, test_settings
from tests.test_pages import _issue, _page, _sign_in


def test_the_node_live_view_says_the_link_is_down_and_what_waits(
    browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    settings = test_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'node.sqlite3'}", tmp_path,
        node_central_url=f"http://127.0.0.1:{free_port()}",  # nobody answers: the link is down
        node_token="rigi_unused", node_branch="testhall",
    )  # fmt: skip
    node = with_pages(LiveServer(settings)).start()
    try:
        for _ in range(3):
            _issue(node)
        live = _page(browser)
        live.goto(f"{node.url}/live/testhall")
        _sign_in(live, node, "manager")
        link = live.locator("#node-link")
        expect(link).to_contain_text("ცენტრთან კავშირი არ არის")
        expect(link).to_contain_text("ცენტრი მუშაობას აგრძელებს")
        waiting = node.rigi.node.status(node.rigi.store.clock())["waiting_events"]
        assert waiting >= 3  # the tickets, and the devices and people made for the test
        expect(link).to_contain_text(str(waiting))
        live.click("button[lang=en]")
        expect(link).to_contain_text("No link to central since")
        assert serious_violations(live) == []
        assert live.js_errors == []
    finally:
        node.stop()
