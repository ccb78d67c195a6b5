"""The ASGI application: one lifespan builds the database, catalog, store, bus and feeds, and
tears them down in reverse order. Nothing is created at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from queue_server.access.accounts import Accounts
from queue_server.access.edge import EdgeMiddleware
from queue_server.access.hall_pass import HallPasses
from queue_server.access.middleware import AccessMiddleware
from queue_server.access.ratelimit import MemoryLimiter, RedisLimiter, create_limiter
from queue_server.access.sessions import SessionSigner, development_secret
from queue_server.api.access_routes import ACCESS_ENDPOINTS
from queue_server.api.announcements import SpeechWorker, speech
from queue_server.api.audit import AUDIT_ENDPOINTS, audit_pruning
from queue_server.api.hall_pass import HALL_PASS_ENDPOINTS
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
from queue_server.bookings.ledger import LEDGER_ENDPOINTS
from queue_server.bookings.rooms import ROOM_ENDPOINTS
from queue_server.bookings.routes import BOOKING_ENDPOINTS
from queue_server.bookings.service import Bookings, bookings_part
from queue_server.catalog.loader import Catalog
from queue_server.errors import RigiError
from queue_server.notify.routes import NOTIFY_ENDPOINTS
from queue_server.notify.service import Notifications, notifications
from queue_server.ops.middleware import OpsMiddleware
from queue_server.ops.observe import observing
from queue_server.ops.timeline import timeline
from queue_server.organisation.live import Organisation, load_organisation, organisation_part
from queue_server.organisation.routes import ORGANISATION_ENDPOINTS
from queue_server.printing import PRINTING_ENDPOINTS, PrintService, printing, request_print
from queue_server.printing.agents import printer_feed_route
from queue_server.printing.jobs import print_statuses
from queue_server.realtime.feeds import feed_routes, realtime
from queue_server.realtime.hub import Hub
from queue_server.realtime.national import NationalFloor, national_view
from queue_server.realtime.nudges import Nudges
from queue_server.realtime.shared_reads import SharedReads
from queue_server.replication.routes import NODES_PATH, REPLICATION_ENDPOINTS
from queue_server.replication.shipper import Shipper, node_replication
from queue_server.reporting.background import reports
from queue_server.reporting.process import CONNECTIONS as PROJECTOR_CONNECTIONS
from queue_server.reporting.routes import REPORT_ENDPOINTS
from queue_server.settings import Settings, load_settings
from queue_server.store.database import Database
from queue_server.store.events import Event
from queue_server.store.migrate import migrate
from queue_server.store.queue import Clock, QueueStore, utc_now
from queue_server.web.admin_pages import admin_routes
from queue_server.web.booking_page import booking_page_routes
from queue_server.web.national_page import national_page_routes
from queue_server.web.pages import web_routes
from queue_server.web.reports_page import report_page_routes

log = logging.getLogger("queue_server")

ALL_ENDPOINTS = (
    ENDPOINTS
    + ACCESS_ENDPOINTS
    + PRINTING_ENDPOINTS
    + AUDIT_ENDPOINTS
    + NOTIFY_ENDPOINTS
    + REPORT_ENDPOINTS
    + BOOKING_ENDPOINTS
    + ORGANISATION_ENDPOINTS
    + REPLICATION_ENDPOINTS
    + LEDGER_ENDPOINTS
    + ROOM_ENDPOINTS
    + HALL_PASS_ENDPOINTS
)


@dataclass
class Rigi:
    """Everything the lifespan builds, reachable from a request as `request.app.state.rigi`."""

    settings: Settings
    database: Database
    catalog: Catalog
    store: QueueStore
    accounts: Accounts
    sessions: SessionSigner
    limiter: MemoryLimiter | RedisLimiter
    organisation: Organisation
    hall_passes: HallPasses
    hub: Hub | None = None  # set by the realtime lifespan part
    phones: SharedReads | None = None  # shared reads of followed tickets, likewise
    consoles: SharedReads | None = None  # shared reads of followed counters, likewise
    national: NationalFloor | None = None  # every branch's floor, set by `national_view`
    nudges: Nudges = field(default_factory=Nudges)  # phones whose wait forecast moved
    printing: PrintService | None = None  # set by the printing lifespan part
    speech: SpeechWorker | None = None  # set by the speech lifespan part
    notify: Notifications | None = None  # set by the notifications lifespan part
    bookings: Bookings | None = None  # set by the bookings lifespan part
    node: Shipper | None = None  # set in branch-node mode by the replication lifespan part
    ready: bool = False

    async def ticket_view(self, ticket_id: str) -> dict[str, Any]:
        """A ticket as its holder sees it, with its print job's status when printing runs."""
        view = await self.store.ticket(ticket_id)
        if self.printing is not None:
            view["print"] = await self.printing.jobs.status(ticket_id)
        return view

    async def ticket_views(self, ticket_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """`ticket_view` for several tickets at once (the phones following a branch)."""
        if self.printing is None:
            return await self.store.tickets(ticket_ids)

        def with_print(conn: Connection, views: dict[str, dict[str, Any]]) -> None:
            printed = print_statuses(conn, list(views))
            for ticket_id, view in views.items():
                view["print"] = printed.get(ticket_id)

        return await self.store.tickets(ticket_ids, also=with_print)

    async def print_ticket(
        self, ticket_view: dict[str, Any], kiosk_id: str
    ) -> dict[str, Any] | None:
        """Print a ticket issued at a kiosk (the issue route's hook into printing); None when
        printing does not run in this app."""
        if self.printing is None:
            return None
        return await request_print(self, ticket_view, kiosk_id)

    async def publish(self, events: Sequence[Event]) -> None:
        """Tell the feeds of events again (transactions publish their own after the commit;
        the hub drops what it has already seen)."""
        await self.database.publish(events)


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready for traffic: started, the wait forecast's compiled runs loaded, the database
    answering. Until then 503 `not_ready` (the compile of a fresh install takes a core for a
    minute or more: requests sent meanwhile would wait behind it)."""
    rigi: Rigi = request.app.state.rigi
    if not rigi.ready:
        return json_response({"code": "not_ready", "message": "Starting up."}, 503)
    if not rigi.store.forecasts.warmed:
        return json_response(
            {"code": "not_ready", "message": "Starting up: preparing the wait forecast."}, 503
        )
    async with rigi.database.read() as conn:
        await conn.exec_driver_sql("SELECT 1")
    return json_response({"status": "ready"})


def create_app(settings: Settings | None = None, *, clock: Clock = utc_now) -> Starlette:
    """Build the application; the lifespan connects everything when the server starts."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            database = Database(
                settings.resolved_database_url,
                settings.database_connections,
                wait_s=settings.database_wait_s,
            )
            stack.push_async_callback(database.dispose)
            await migrate(database)
            await database.check_budget(
                PROJECTOR_CONNECTIONS if reports in app.state.extensions else 0
            )
            catalog = await load_organisation(database, settings.config, clock)
            limiter = create_limiter(settings.bus_url, settings.bus_channel_prefix)
            stack.push_async_callback(limiter.close)
            secret = (
                settings.secret_key.get_secret_value()
                if settings.secret_key
                else development_secret(settings.data_dir)
            )
            queue = QueueStore(
                database,
                catalog,
                clock,
                forecast_runs=settings.forecast_runs,
                guard=settings.dispatch_guard,
            )
            stack.push_async_callback(queue.forecasts.close)  # wait forecasts in flight
            queue.forecasts.warm_up()
            rigi = Rigi(
                settings,
                database,
                catalog,
                queue,
                Accounts(database, clock),
                SessionSigner(secret),
                limiter,
                Organisation(database, catalog, clock),
                HallPasses(
                    # the booking key when set: central and its nodes honour the same passes
                    settings.booking_key.get_secret_value() if settings.booking_key else secret,
                    settings.hall_pass_minutes,
                    clock,
                ),
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
        *(openapi_routes(ALL_ENDPOINTS) if settings.docs_enabled else []),
        *feed_routes(),
        printer_feed_route(),
        *admin_routes(),
        *web_routes(),
        *report_page_routes(),
        *national_page_routes(),
        *booking_page_routes(),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                EdgeMiddleware,
                trusted_proxies=settings.trusted_networks,
                hsts=settings.env == "production",
                max_header_bytes=settings.max_header_bytes,
                ws_per_address=settings.ws_per_address,
            ),
            Middleware(OpsMiddleware),  # request id, timing, /metrics
            Middleware(
                BodyLimit,
                max_bytes=settings.max_body_bytes,
                timeout_s=settings.body_timeout_s,
                large=(NODES_PATH, settings.node_max_body_bytes),
            ),
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
    # printing delivers through the hub; reports apply what is published; observing counts
    # events after the hub published them
    app.state.extensions = [
        realtime,
        organisation_part,
        national_view,
        printing,
        speech,
        audit_pruning,
        notifications,
        reports,
        bookings_part,
        node_replication,
        observing,
        timeline,  # last, so that its commit listener is told first
    ]
    return app
