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


async def people_page(request: Request) -> Response:
    """Add people, change their role and branch, the counters an operator may take, reset a
    password, disable: over `/api/v1/people` and `/api/v1/users`."""
    return _render("people", _language(request), {"branches": _branches_with_counters(request)})


async def devices_page(request: Request) -> Response:
    """A branch's kiosks, displays and printer agents: last seen, health, add (with the setup
    link and its QR code, shown once), revoke."""
    return _render("devices", _language(request), {"branches": _branches_with_counters(request)})


async def branch_page(request: Request) -> Response:
    """A branch as its manager runs it: hours, holidays, services offered, counters and their
    work profiles, screens, over `/api/v1/branches/{id}/organisation`."""
    return _render("branch", _language(request), {"branches": _branches_with_counters(request)})


async def services_page(request: Request) -> Response:
    """Services and agencies for administrators, over `/api/v1/organisation`."""
    return _render("services", _language(request), {})


def _branches_with_counters(request: Request) -> list[dict[str, Any]]:
    catalog = request.app.state.rigi.catalog
    return [
        {
            "id": b.id,
            "name": _localized(b.name),
            "counters": [{"id": c.id, "number": c.number} for c in b.counters],
        }
        for b in catalog.branches.values()
    ]


def admin_routes() -> list[Route]:
    return [
        Route("/admin/audit", audit_page, name="audit_page"),
        Route("/admin/people", people_page, name="people_page"),
        Route("/admin/devices", devices_page, name="devices_page"),
        Route("/admin/branch", branch_page, name="branch_page"),
        Route("/admin/services", services_page, name="services_page"),
    ]
