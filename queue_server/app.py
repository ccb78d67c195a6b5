"""The ASGI application: one lifespan builds the database, catalog, store, bus and feeds, and
tears them down in reverse order. Nothing is created at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from queue_server.access.accounts import Accounts
from queue_server.access.middleware import AccessMiddleware
from queue_server.access.ratelimit import create_limiter
from queue_server.access.routes import ACCESS_ENDPOINTS
from queue_server.access.sessions import SessionSigner, development_secret
from queue_server.api.announcements import speech
from queue_server.api.http import (
    BodyLimit,
    http_error_handler,
    json_response,
    rigi_error_handler,
    route,
    unexpected_error_handler,
)
from queue_server.api.openapi import openapi_routes
from queue_server.api.routes import ENDPOINTS
from queue_server.catalog.loader import Catalog, load_catalog
from queue_server.errors import RigiError
from queue_server.printing import PRINTING_ENDPOINTS, printing
from queue_server.printing.agents import printer_feed_route
from queue_server.realtime.feeds import feed_routes, realtime
from queue_server.reporting.background import reports
from queue_server.reporting.routes import REPORT_ENDPOINTS
from queue_server.settings import Settings, load_settings
from queue_server.store.database import Database
from queue_server.store.events import Event
from queue_server.store.migrate import migrate
from queue_server.store.queue import Clock, QueueStore, utc_now
from queue_server.web.pages import web_routes
from queue_server.web.reports_page import report_page_routes

log = logging.getLogger("queue_server")

ALL_ENDPOINTS = ENDPOINTS + ACCESS_ENDPOINTS + PRINTING_ENDPOINTS + REPORT_ENDPOINTS


@dataclass
class Rigi:
    """Everything the lifespan builds, reachable from a request as `request.app.state.rigi`."""

    settings: Settings
    database: Database
    catalog: Catalog
    store: QueueStore
    accounts: Accounts
    sessions: SessionSigner
    limiter: Any
    listeners: list[Any] = field(default_factory=list)
    hub: Any = None
    phones: Any = None  # shared reads of followed tickets, set by the realtime lifespan part
    consoles: Any = None  # shared reads of followed counters, likewise
    printing: Any = None  # set by the printing lifespan part
    speech: Any = None  # set by the speech lifespan part
    ready: bool = False

    async def ticket_view(self, ticket_id: str) -> dict[str, Any]:
        """A ticket as its holder sees it, with its print job's status when printing runs."""
        view = await self.store.ticket(ticket_id)
        if self.printing is not None:
            view["print"] = await self.printing.jobs.status(ticket_id)
        return view

    async def ticket_views(self, ticket_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """`ticket_view` for several tickets at once (the phones following a branch)."""
        views = await self.store.tickets(ticket_ids)
        if self.printing is not None:
            printed = await self.printing.jobs.statuses(list(views))
            for ticket_id, view in views.items():
                view["print"] = printed.get(ticket_id)
        return views

    async def publish(self, events: Sequence[Event]) -> None:
        """Tell the feeds after the commit. The database already holds every event, so a
        failure here is logged and clients catch up from the event table."""
        for listener in self.listeners:
            try:
                await listener(events)
            except Exception:
                log.exception("publishing %d events failed", len(events))


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    rigi: Rigi = request.app.state.rigi
    if not rigi.ready:
        return json_response({"code": "not_ready", "message": "Starting up."}, 503)
    async with rigi.database.read() as conn:
        await conn.exec_driver_sql("SELECT 1")
    return json_response({"status": "ready"})


def create_app(settings: Settings | None = None, *, clock: Clock = utc_now) -> Starlette:
    """Build the application; the lifespan connects everything when the server starts."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            catalog = load_catalog(settings.config)
            database = Database(settings.resolved_database_url)
            stack.push_async_callback(database.dispose)
            await migrate(database)
            limiter = create_limiter(settings.bus_url)
            stack.push_async_callback(limiter.close)
            secret = (
                settings.secret_key.get_secret_value()
                if settings.secret_key
                else development_secret(settings.data_dir)
            )
            rigi = Rigi(
                settings,
                database,
                catalog,
                QueueStore(database, catalog, clock),
                Accounts(database, clock),
                SessionSigner(secret),
                limiter,
            )
            app.state.rigi = rigi
            for extension in app.state.extensions:
                await stack.enter_async_context(extension(rigi))
            rigi.ready = True
            log.info("serving %d branches from %s", len(catalog.branches), database.engine.url)
            yield
            rigi.ready = False

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, include_in_schema=False),
        Route("/readyz", readyz, include_in_schema=False),
        *[route(endpoint) for endpoint in ALL_ENDPOINTS],
        *openapi_routes(ALL_ENDPOINTS),
        *feed_routes(),
        printer_feed_route(),
        *web_routes(),
        *report_page_routes(),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(BodyLimit, max_bytes=settings.max_body_bytes),
            Middleware(AccessMiddleware),
        ],
        exception_handlers={
            RigiError: rigi_error_handler,
            HTTPException: http_error_handler,
            Exception: unexpected_error_handler,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    # printing delivers through the hub; reports apply what is published
    app.state.extensions = [realtime, printing, speech, reports]
    return app
