"""The phone booking page: `/book` lists the branches, `/book/{branch}` books a slot there,
confirms it with the one-time code and shows the check-in code and QR; the same page opened
from its link (the booking's token in the fragment, never sent to the server's logs) moves or
cancels the booking. Its data comes from the bookings API, which decides everything."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from queue_server.errors import NotFound
from queue_server.web.pages import _branch_boot, _error_page, _language, _localized, _render


def _booking_rules(request: Request, branch_id: str) -> dict[str, Any]:
    """What the page tells before booking: how far ahead, and the arrival window."""
    rigi = request.app.state.rigi
    settings = rigi.settings
    zone = rigi.catalog.branch(branch_id).timezone
    return {
        "timezone": zone,
        "today": rigi.store.clock().astimezone(ZoneInfo(zone)).date().isoformat(),
        "days_ahead": settings.booking_days_ahead,
        "weekdays": list(settings.booking_weekdays),
        "early_minutes": settings.booking_setting(branch_id, "early_minutes"),
        "late_minutes": settings.booking_setting(branch_id, "late_minutes"),
        "code_minutes": settings.booking_code_minutes,
        "remote_minutes": settings.booking_remote_minutes,
    }


async def book_branches_page(request: Request) -> Response:
    """`/book`: the branches a citizen can book at, halls first."""
    catalog = request.app.state.rigi.catalog
    branches = sorted(catalog.branches.values(), key=lambda b: (b.kind != "hall", b.name.get("en")))
    boot = {
        "branches": [
            {"id": b.id, "kind": b.kind, "name": _localized(b.name), "municipality": b.municipality}
            for b in branches
        ]
    }
    return _render("book", _language(request), boot)


async def book_page(request: Request) -> Response:
    """`/book/{branch}`: service, day, slot, contact, code, then the booking."""
    branch_id = request.path_params["branch"]
    try:
        boot = _branch_boot(request, branch_id)
    except NotFound as error:
        return _error_page(request, error)
    boot["booking"] = _booking_rules(request, branch_id)
    return _render("book", _language(request), boot)


async def room_page(request: Request) -> Response:
    """`/room/{branch}`: a Community Centre's conference room, free times and the request form."""
    branch_id = request.path_params["branch"]
    catalog = request.app.state.rigi.catalog
    try:
        branch = catalog.branch(branch_id)
        if branch.kind != "community_centre":
            raise NotFound("This branch lends no conference room.", code="no_room")
    except NotFound as error:
        return _error_page(request, error)
    boot = {
        "branch": {"id": branch.id, "name": _localized(branch.name)},
        "booking": _booking_rules(request, branch_id),
        # the centre's rooms (None: its one default room, which the calendar names itself)
        "rooms": None
        if branch.rooms is None
        else [
            {"id": r.id, "name": _localized(r.name), "capacity": r.capacity} for r in branch.rooms
        ],
    }
    return _render("room", _language(request), boot)


def booking_page_routes() -> list[Route]:
    return [
        Route("/book", book_branches_page, name="book_branches_page"),
        Route("/book/{branch}", book_page, name="book_page"),
        Route("/room/{branch}", room_page, name="room_page"),
    ]
