"""Real headless Chromium for page tests: the machine's Debian build, never a download."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from queue_server.web.pages import web_routes
from tests.support import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BLOCKING_IMPACTS = ("serious", "critical")


def need_chromium() -> None:
    """Skip without Chromium on a laptop; fail in CI, where it must be installed."""
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing: install Debian's chromium (scripts/system-deps.sh)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def launch() -> Iterator[Any]:
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def with_pages(server: LiveServer) -> LiveServer:
    """Serve the pages too, unless the app already does."""
    names = {getattr(route, "name", None) for route in server.app.router.routes}
    if "kiosk_page" not in names:
        server.app.router.routes.extend(web_routes())
    return server


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(node["target"][0] for node in v["nodes"][:5])
        for v in results.response["violations"]
        if v.get("impact") in BLOCKING_IMPACTS
    ]
