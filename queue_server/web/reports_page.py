"""The reports page: a branch's (staff) or the network's (administrators) KPIs with charts,
tables and their CSV / Excel downloads. The page is public like every page; its data comes
from the reports API, which checks who asks. Its texts live in `locales/reports/`, beside the
shared catalogues, in the five languages."""

from __future__ import annotations

import json
from functools import lru_cache

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from queue_server.catalog.models import LANGUAGES
from queue_server.web.pages import LOCALES_DIR, _branch_boot, _language, _render

REPORT_LOCALES = LOCALES_DIR / "reports"


@lru_cache(maxsize=len(LANGUAGES))
def report_messages(language: str) -> dict[str, str]:
    """The report page's own texts in `language`, English filling any gap."""
    texts: dict[str, str] = json.loads((REPORT_LOCALES / f"{language}.json").read_text("utf-8"))
    return texts if language == "en" else report_messages("en") | texts


async def branch_reports_page(request: Request) -> Response:
    """The reports page of a branch."""
    language = _language(request)
    boot = _branch_boot(request, request.path_params["branch"])
    return _render("reports", language, boot | {"report_messages": report_messages(language)})


async def network_reports_page(request: Request) -> Response:
    """The reports page of the whole network (its data is for administrators)."""
    language = _language(request)
    catalog = request.app.state.rigi.catalog
    boot = {
        "branch": None,
        "services": [
            {"id": s.id, "agency": s.agency, "name": {c: s.name.get(c) for c in LANGUAGES}}
            for s in catalog.services.values()
        ],
        "counters": [],
        "report_messages": report_messages(language),
    }
    return _render("reports", language, boot)


def report_page_routes() -> list[Route]:
    return [
        Route("/reports", network_reports_page, name="network_reports_page"),
        Route("/reports/{branch}", branch_reports_page, name="reports_page"),
    ]
