"""The administration pages. Like the other pages, one HTML shell with its boot data and a
script; the data comes from the API, which checks who may read what (a manager their branch,
an admin every branch)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from queue_server.web.pages import _language, _localized, _render


async def audit_page(request: Request) -> Response:
    """Who did what, when: filters, pages and a CSV download of `/api/v1/audit`."""
    catalog = request.app.state.rigi.catalog
    branches: list[dict[str, Any]] = [
        {"id": b.id, "name": _localized(b.name)} for b in catalog.branches.values()
    ]
    return _render("audit", _language(request), {"branches": branches})


def admin_routes() -> list[Route]:
    return [Route("/admin/audit", audit_page, name="audit_page")]
