"""The web pages: kiosk, operator console, lobby display, a citizen's ticket, the live floor.

Each page is one HTML shell with its boot data (branch, services, the translation catalogue)
inlined as JSON, plus a JavaScript module and a stylesheet served from `static/`. No CDN and no
build step: a branch on a closed network serves everything itself.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from queue_server.access.device_setup import qr_svg
from queue_server.access.hall_pass import HALL_PASS_QUERY
from queue_server.catalog.models import LANGUAGES
from queue_server.errors import Forbidden, NotFound, RigiError
from queue_server.web.usage import recent_usage
from rigi_protocol.wire import compact_json

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
LOCALES_DIR = WEB_DIR / "locales"
TEMPLATE = WEB_DIR / "templates" / "page.html"
SEARCH_TERMS = WEB_DIR / "search_terms.json"
DEFAULT_LANGUAGE = "ka"
LIVE_VIEW_ROLES = frozenset({"manager", "admin"})
TICKET_ID = re.compile(r"^[0-9a-f]{32}$")
# Pages load only their own scripts, styles and feeds; inline JSON data blocks are not scripts.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self' ws: wss:; media-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
NATIVE_LANGUAGE_NAMES = {
    "ka": "ქართული",
    "en": "English",
    "ru": "Русский",
    "az": "Azərbaycanca",
    "hy": "Հայերեն",
}


@lru_cache(maxsize=len(LANGUAGES))
def messages(language: str) -> dict[str, str]:
    """The translation catalogue of one language, with English filling any gap."""
    catalogue: dict[str, Any] = json.loads((LOCALES_DIR / f"{language}.json").read_text("utf-8"))
    if language != "en":
        catalogue = messages("en") | {k: v for k, v in catalogue.items() if isinstance(v, str)}
    return {k: v for k, v in catalogue.items() if not k.startswith("_")}


@lru_cache(maxsize=1)
def search_terms() -> dict[str, list[str]]:
    """Service id → the extra words citizens type for it (abbreviations, everyday words)."""
    terms: dict[str, Any] = json.loads(SEARCH_TERMS.read_text("utf-8"))
    return {k: v for k, v in terms.items() if not k.startswith("_")}


@lru_cache(maxsize=1)
def _template() -> Template:
    return Template(TEMPLATE.read_text("utf-8"))


def _language(request: Request, fallback: str | None = None) -> str:
    """`?lang=`, else the fallback (a ticket's own language), else the browser's first language
    that we speak, else Georgian."""
    wanted = request.query_params.get("lang") or fallback
    if wanted in LANGUAGES:
        return wanted
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE


def _json_for_html(data: Any) -> str:
    """JSON that cannot end the <script> element it sits in."""
    text = compact_json(data)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _render(page: str, language: str, boot: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    catalogue = messages(language)
    boot = boot | {
        "page": page,
        "lang": language,
        "messages": catalogue,
        "languages": [{"code": c, "name": NATIVE_LANGUAGE_NAMES[c]} for c in LANGUAGES],
    }
    html = _template().substitute(
        lang=language,
        page=page,
        title=_escape(catalogue.get(f"{page}.title", "Rigi")),
        loading=_escape(catalogue.get("common.loading", "…")),
        noscript=_escape(catalogue.get("common.noscript", "")),
        boot=_json_for_html(boot),
    )
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _localized(text: Any) -> dict[str, str]:
    return {language: text.get(language) for language in LANGUAGES}


def _branch_boot(request: Request, branch_id: str) -> dict[str, Any]:
    """What every branch page needs before its first request: names, services, counters."""
    catalog = request.app.state.rigi.catalog
    branch = catalog.branch(branch_id)
    services = catalog.branch_services(branch_id)
    agencies: dict[str, dict[str, str]] = {}
    for service in services:
        if service.agency not in agencies:
            agencies[service.agency] = _localized(catalog.agencies[service.agency].name)
    areas = _service_areas(catalog, branch_id)
    return {
        "branch": {"id": branch.id, "name": _localized(branch.name)},
        "agencies": [{"id": k, "name": v} for k, v in agencies.items()],
        "areas": [{"id": a.id, "name": _localized(a.name)} for a in branch.areas],
        "services": [
            {
                "id": s.id,
                "agency": s.agency,
                "letter": s.letter,
                "target_wait_min": s.target_wait_min,
                "popularity": s.popularity,
                "areas": areas.get(s.id, []),
                "terms": search_terms().get(s.id, []),
                "name": _localized(s.name),
                "documents": [_localized(document) for document in s.documents],
                "online_url": s.online_url,
            }
            for s in services
        ],
        "counters": [{"id": c.id, "number": c.number, "area": c.area} for c in branch.counters],
        "screens": [
            {"id": s.id, "areas": list(s.areas), "services": list(s.services)}
            for s in branch.screens
        ],
    }


def _notify_channels(request: Request) -> list[str]:
    """The channels this server can send on ("sms", "email"): the pages offer only those."""
    notify = getattr(request.app.state.rigi, "notify", None)
    return [c for c in ("sms", "email") if notify is not None and c in notify.channels]


def _push_key(request: Request) -> str | None:
    """The VAPID public key the phone page subscribes to Web Push with (None: no push)."""
    notify = getattr(request.app.state.rigi, "notify", None)
    channel = notify.channels.get("push") if notify is not None else None
    return getattr(channel, "public_key", None)


async def service_worker(request: Request) -> Response:
    """The phone page's service worker, at the root so it may control /t/… pages."""
    return Response(
        (STATIC_DIR / "sw.js").read_bytes(),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache"},
    )


def _service_areas(catalog: Any, branch_id: str) -> dict[str, list[str]]:
    """Service id → the areas whose counters serve it first (with the highest weight), so a
    generalist counter that takes "*" does not pull every service into its area."""
    best: dict[str, float] = {}
    areas: dict[str, list[str]] = {}
    for counter in catalog.branch(branch_id).counters:
        for service_id, weight in catalog.profile(branch_id, counter.id).items():
            if weight > best.get(service_id, 0):
                best[service_id] = weight
                areas[service_id] = [counter.area]
            elif weight == best[service_id] and counter.area not in areas[service_id]:
                areas[service_id].append(counter.area)
    return areas


def _error_page(request: Request, error: RigiError, language: str | None = None) -> Response:
    """A citizen who follows a stale link sees a page in their language, not raw JSON."""
    boot = {"error": {"code": error.code, "status": error.status}}
    return _render("error", language or _language(request), boot, status_code=error.status)


def _may_watch_the_floor(request: Request) -> bool:
    """The live view is for managers (and admins); a signed-in operator is turned away."""
    principal = request.scope.get("rigi.principal")
    role = getattr(getattr(principal, "role", None), "value", None)
    return role is None or role in LIVE_VIEW_ROLES


def _hall_pass(request: Request, branch_id: str) -> dict[str, Any]:
    """Whether this phone came from a hall screen's QR code: "valid" (its tickets count at
    once, and the page sends the pass with them) or the code of the refusal, so the page says
    why and offers "join the queue now" instead (access/hall_pass.py)."""
    rigi = request.app.state.rigi
    token = request.query_params.get(HALL_PASS_QUERY)
    state = rigi.hall_passes.state(token, branch_id)
    if not rigi.settings.remote_tickets:
        state = "phone_tickets_off"
    return {
        "state": state,
        "token": token if state == "valid" else None,
        "remote_minutes": rigi.settings.booking_remote_minutes,
    }


def _branch_page(page: str, *, phone: bool = False):  # type: ignore[no-untyped-def]
    """A branch's page. `phone`: the kiosk page as a citizen's phone takes a ticket from home or
    the hall (no device token; the kiosk itself without its token says it is not set up)."""

    async def handler(request: Request) -> Response:
        branch_id = request.path_params["branch"]
        try:
            boot = _branch_boot(request, branch_id)
        except NotFound as error:
            return _error_page(request, error)
        if page == "kiosk":
            boot["usage"] = await recent_usage(request.app.state.rigi, branch_id)
            boot["phone"] = phone
            if phone:
                boot["hall_pass"] = _hall_pass(request, branch_id)
            boot["notify"] = _notify_channels(request)
        if page == "live" and not _may_watch_the_floor(request):
            boot["forbidden"] = True
            return _render(page, _language(request), boot, status_code=Forbidden.status)
        return _render(page, _language(request), boot)

    handler.__name__ = "phone_page" if phone else f"{page}_page"
    handler.__doc__ = f"The {page} page of a branch."
    return handler


async def ticket_page(request: Request) -> Response:
    """A citizen's own ticket, in the language the ticket was taken in unless asked otherwise."""
    ticket_id = request.path_params["ticket_id"]
    try:
        if not TICKET_ID.match(ticket_id):
            raise NotFound("No such ticket.", code="unknown_ticket")
        ticket = await request.app.state.rigi.store.ticket(ticket_id)
    except NotFound as error:
        return _error_page(request, error)
    boot = _branch_boot(request, ticket["branch"]) | {
        "ticket_id": ticket_id,
        "notify": _notify_channels(request),
        "push_key": _push_key(request),
    }
    return _render("ticket", _language(request, ticket.get("language")), boot)


async def start_page(request: Request) -> Response:
    """`/`: the branches, each with the way to its kiosk, lobby screen, console and live view."""
    catalog = request.app.state.rigi.catalog
    branches = sorted(catalog.branches.values(), key=lambda b: (b.kind != "hall", b.name.get("en")))
    boot = {
        "branches": [
            {
                "id": b.id,
                "kind": b.kind,
                "name": _localized(b.name),
                "municipality": b.municipality,
            }
            for b in branches
        ]
    }
    return _render("start", _language(request), boot)


async def ticket_qr(request: Request) -> Response:
    """A QR code (SVG) that opens the ticket's status page on a phone."""
    ticket_id = request.path_params["ticket_id"]
    if not TICKET_ID.match(ticket_id):
        raise NotFound("No such ticket.", code="unknown_ticket")
    # A phone off the office network must reach it: the public address, not the Host header.
    public_url = request.app.state.rigi.settings.public_url
    if public_url:
        target = f"{public_url.rstrip('/')}/t/{ticket_id}"
    else:
        target = str(request.url_for("ticket_page", ticket_id=ticket_id))
    return Response(
        qr_svg(target).encode(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "private, max-age=86400"},  # a ticket's own: no shared cache
    )


async def locale(request: Request) -> Response:
    """One translation catalogue, for a page that switches language."""
    language = request.path_params["language"]
    if language not in LANGUAGES:
        raise NotFound("No such language.", code="unknown_language")
    return JSONResponse(messages(language), headers={"Cache-Control": "public, max-age=300"})


async def branch_boot(request: Request) -> Response:
    """A branch page's boot data again, for a kiosk told that the organisation changed: it
    redraws its services without a reload."""
    try:
        boot = _branch_boot(request, request.path_params["branch"])
    except RigiError as error:
        return JSONResponse(error.to_dict(), error.status)
    return JSONResponse(boot)


def web_routes() -> list[BaseRoute]:
    """The pages, their static files, translation catalogues and ticket QR codes."""
    return [
        Route("/", start_page, name="start_page"),
        Route("/kiosk/{branch}", _branch_page("kiosk"), name="kiosk_page"),
        Route("/take/{branch}", _branch_page("kiosk", phone=True), name="phone_page"),
        Route("/console/{branch}", _branch_page("console"), name="console_page"),
        Route("/display/{branch}", _branch_page("display"), name="display_page"),
        Route("/live/{branch}", _branch_page("live"), name="live_page"),
        Route("/boot/{branch}.json", branch_boot, name="branch_boot"),
        Route("/t/{ticket_id}", ticket_page, name="ticket_page"),
        Route("/qr/{ticket_id}.svg", ticket_qr, name="ticket_qr"),
        Route("/i18n/{language}.json", locale, name="locale"),
        Route("/sw.js", service_worker, name="service_worker"),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
