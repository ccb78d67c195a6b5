"""`/metrics` in the Prometheus text format, and who may scrape it.

Access: a bearer token (`RIGI_METRICS_TOKEN`) or a client-address allowlist
(`RIGI_METRICS_ALLOW`, addresses or networks); either one admits a scraper. With neither
configured the page does not exist in production (404) and answers only loopback clients in
development. With `PROMETHEUS_MULTIPROC_DIR` set, every process of the host writes its values
there and a scrape of any one of them reports the sum (`MultiProcessCollector`).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from queue_server.errors import Forbidden, NotFound, RigiError, Unauthorized
from queue_server.responses import error_response
from queue_server.settings import Settings

METRICS_PATH = "/metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


async def serve_metrics(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer a scrape, or refuse it with a coded error."""
    settings = scope["app"].state.settings
    try:
        _admit(scope, settings)
    except RigiError as error:
        await error_response(error)(scope, receive, send)
        return
    if scope["method"] not in ("GET", "HEAD"):
        wrong_method = RigiError("Scrape with GET.", code="method_not_allowed")
        wrong_method.status = 405
        await error_response(wrong_method)(scope, receive, send)
        return
    # Rendering reads every process's files in multi-process mode: off the event loop.
    body = await asyncio.to_thread(render)
    await Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})(scope, receive, send)


def render() -> bytes:
    """The text exposition of this process, or of all processes sharing the multiproc dir."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def _admit(scope: Scope, settings: Settings) -> None:
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    networks = settings.metrics_networks
    address = _client_address(scope)
    if token is None and not networks:
        if settings.env == "development" and address is not None and address.is_loopback:
            return
        raise NotFound("No such resource.", code="not_found")
    if networks and address is not None and any(address in net for net in networks):
        return
    if token is not None:
        sent = Headers(scope=scope).get("authorization", "")
        scheme, _, credentials = sent.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), token.encode()
        ):
            return
        raise Unauthorized("Scraping needs the metrics token.", code="metrics_unauthorized")
    raise Forbidden("This address may not scrape metrics.", code="metrics_forbidden")


def _client_address(scope: Scope) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    client = scope.get("client")
    if not client:
        return None
    try:
        return ipaddress.ip_address(client[0])
    except ValueError:
        return None
